from psycopg2.errors import ExclusionViolation

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..models.crm_lead import LOST_REASON_REQUIRED_PARAM
from .common import FunnelCase, day


@tagged("post_install", "-at_install")
class TestStageHistory(FunnelCase):
    def test_create_records_the_stage_the_deal_got(self):
        deal = self.new_deal(day(0))
        self.assertEqual(self.stays(deal), [("A", day(0), None, None, "open", None)])
        self.assertEqual(deal.stage_history_count, 1)

    def test_create_with_computed_stage(self):
        # No stage given: Odoo computes the team's first unfolded stage.
        with self.at(day(0)):
            deal = self.env["crm.lead"].create(
                {"name": "Computed", "type": "opportunity", "team_id": self.team.id}
            )
        self.assertEqual(deal.stage_id, self.stage_a)
        self.assertEqual(self.stays(deal), [("A", day(0), None, None, "open", None)])

    def test_forward_skip_back_and_durations(self):
        deal = self.new_deal(day(0))
        self.move(deal, self.stage_b, day(1))
        self.move(deal, self.stage_a, day(3))
        self.move(deal, self.stage_c, day(4, hours=6))
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "forward", None),
                ("B", day(1), day(3), 2.0, "back", None),
                ("A", day(3), day(4, hours=6), 1.25, "forward", None),
                ("C", day(4, hours=6), None, None, "open", None),
            ],
        )

    def test_same_stage_write_changes_nothing(self):
        deal = self.new_deal(day(0))
        self.move(deal, self.stage_a, day(2))
        with self.at(day(3)):
            deal.write({"stage_id": self.stage_a.id, "expected_revenue": 10})
        self.assertEqual(self.stays(deal), [("A", day(0), None, None, "open", None)])

    def test_lost_with_reason_through_wizard_then_restore(self):
        deal = self.new_deal(day(0))
        self.move(deal, self.stage_b, day(2))
        self.lose(deal, self.reason_price, day(5))
        self.assertFalse(deal.active)
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(2), 2.0, "forward", None),
                ("B", day(2), day(5), 3.0, "lost", "Price"),
            ],
        )
        with self.at(day(7)):
            deal.action_unarchive()
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(2), 2.0, "forward", None),
                ("B", day(2), day(5), 3.0, "lost", "Price"),
                ("B", day(7), None, None, "open", None),
            ],
        )

    def test_reason_written_later_lands_on_the_lost_stay(self):
        deal = self.new_deal(day(0))
        with self.at(day(1)):
            deal.action_archive()
        with self.at(day(2)):
            deal.write({"lost_reason_id": self.reason_no_answer.id})
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "lost", "No answer"),
            ],
        )

    def test_stage_change_of_a_lost_deal_is_not_a_stay(self):
        deal = self.new_deal(day(0))
        self.lose(deal, self.reason_price, day(1))
        self.move(deal, self.stage_c, day(2))
        self.assertEqual(self.stays(deal), [("A", day(0), day(1), 1.0, "lost", "Price")])

    def test_won_ends_the_stay_and_enters_the_won_stage(self):
        deal = self.new_deal(day(0))
        with self.at(day(4)):
            deal.action_set_won()
        self.assertEqual(deal.stage_id, self.stage_won)
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(4), 4.0, "forward", None),
                ("Won", day(4), None, None, "open", None),
            ],
        )

    def test_won_from_lost(self):
        deal = self.new_deal(day(0))
        self.lose(deal, self.reason_price, day(1))
        with self.at(day(3)):
            deal.action_set_won()
        self.assertTrue(deal.active)
        # Restored and moved in one transaction: one new stay, where it ended up.
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "lost", "Price"),
                ("Won", day(3), None, None, "open", None),
            ],
        )

    def test_one_transaction_records_its_outcome(self):
        deal = self.new_deal(day(0))
        with self.at(day(1)):
            deal.write({"stage_id": self.stage_b.id})
            deal.write({"stage_id": self.stage_c.id})
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "forward", None),
                ("C", day(1), None, None, "open", None),
            ],
        )

    def test_reading_stays_before_commit_sees_the_writes(self):
        deal = self.new_deal(day(0))
        with self.at(day(2)):
            deal.write({"stage_id": self.stage_b.id})
            self.assertEqual(deal.stage_history_count, 2)
            self.assertEqual(self.stays(deal)[-1], ("B", day(2), None, None, "open", None))
            funnel = self.env["sales.funnel.report"].search([("lead_id", "=", deal.id)])
            self.assertEqual(funnel.mapped("state"), ["passed", "open"])

    def test_multi_record_write_uses_each_deal_own_stage(self):
        deal_a = self.new_deal(day(0), name="from A")
        deal_b = self.new_deal(day(0), stage=self.stage_b, name="from B")
        deal_c = self.new_deal(day(0), stage=self.stage_c, name="from C")
        with self.at(day(2)):
            (deal_a | deal_b | deal_c).write({"stage_id": self.stage_b.id})
        self.assertEqual(
            self.stays(deal_a),
            [
                ("A", day(0), day(2), 2.0, "forward", None),
                ("B", day(2), None, None, "open", None),
            ],
        )
        self.assertEqual(self.stays(deal_b), [("B", day(0), None, None, "open", None)])
        self.assertEqual(
            self.stays(deal_c),
            [
                ("C", day(0), day(2), 2.0, "back", None),
                ("B", day(2), None, None, "open", None),
            ],
        )

    def test_import_and_untracked_writes_are_recorded(self):
        Lead = self.env["crm.lead"].with_context(tracking_disable=True, mail_notrack=True)
        with self.at(day(0)):
            result = Lead.load(
                ["name", "type", "team_id/.id", "stage_id/.id"],
                [["Imported", "opportunity", str(self.team.id), str(self.stage_b.id)]],
            )
        self.assertFalse(result["messages"])
        deal = Lead.browse(result["ids"])
        with self.at(day(1)):
            deal.write({"stage_id": self.stage_c.id})
        self.assertEqual(
            self.stays(deal),
            [
                ("B", day(0), day(1), 1.0, "forward", None),
                ("C", day(1), None, None, "open", None),
            ],
        )

    def test_merge_keeps_the_surviving_deal_history(self):
        first = self.new_deal(day(0), name="First", expected_revenue=10)
        second = self.new_deal(day(1), stage=self.stage_c, name="Second", expected_revenue=5)
        with self.at(day(2)):
            merged = (first | second)._merge_opportunity(auto_unlink=True, max_length=None)
        # Odoo keeps the most advanced deal (stage C) and takes the other's data into it.
        self.assertEqual(merged, second)
        self.assertFalse(first.exists())
        self.assertEqual(self.stays(merged), [("C", day(1), None, None, "open", None)])
        self.assertFalse(self.env["crm.lead.stage.history"].search([("lead_id", "=", first.id)]))

    def test_deleting_a_visited_stage_removes_its_stays(self):
        deal = self.new_deal(day(0))
        self.move(deal, self.stage_b, day(1))
        self.move(deal, self.stage_c, day(2))
        self.stage_b.unlink()
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "forward", None),
                ("C", day(2), None, None, "open", None),
            ],
        )

    def test_deleting_a_deal_removes_its_stays(self):
        deal = self.new_deal(day(0))
        deal_id = deal.id
        deal.with_user(self.manager).unlink()  # deleting deals is for sales managers
        self.assertFalse(
            self.env["crm.lead.stage.history"].search_count([("lead_id", "=", deal_id)])
        )

    def test_one_open_stay_per_deal_is_enforced_by_the_database(self):
        deal = self.new_deal(day(0))
        with (
            self.assertRaises(ExclusionViolation),
            mute_logger("odoo.sql_db"),
            self.cr.savepoint(),
        ):
            self.env.cr.execute(
                "INSERT INTO crm_lead_stage_history (lead_id, stage_id, date_in, outcome)"
                " VALUES (%s, %s, now(), 'open')",
                (deal.id, self.stage_b.id),
            )

    def test_recording_is_a_constant_number_of_queries(self):
        few = self.env["crm.lead"].browse(
            [self.new_deal(day(0), name=f"few {i}").id for i in range(2)]
        )
        many = self.env["crm.lead"].browse(
            [self.new_deal(day(0), name=f"many {i}").id for i in range(30)]
        )

        def move_and_assign(deals):
            for deal in deals:  # one write per deal, as lead assignment does
                deal.write({"stage_id": self.stage_b.id, "user_id": self.manager.id})

        self.assert_recording_queries_constant(move_and_assign, few, many, day(1))
        History = self.env["crm.lead.stage.history"]
        self.assertEqual(History.search_count([("lead_id", "in", many.ids)]), 60)
        # more deals than are planned as a few: the same rows as a rewrite gives
        recorded = self.funnel_rows(few | many)
        # the salesperson's change took the deals out of the team: B alone, their stage
        self.assertNotEqual(many[0].team_id, self.team)
        self.assertEqual(self.axis(many[0]), [("B", "open")])
        self.assertEqual(len(recorded), 32)
        self.env["sales.funnel.fact"]._refresh((few | many).ids)
        self.assertEqual(self.funnel_rows(few | many), recorded)


@tagged("post_install", "-at_install")
class TestLostReasonRequired(FunnelCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the setting as the addon installs it, before this class turns it on
        cls.installed_setting = (
            cls.env["res.config.settings"].create({}).funnel_lost_reason_required
        )
        cls.env["ir.config_parameter"].sudo().set_param(LOST_REASON_REQUIRED_PARAM, True)

    def test_wizard_without_reason_fails_and_changes_nothing(self):
        deal = self.new_deal(day(0))
        with self.assertRaisesRegex(UserError, "A loss reason is required to mark a deal as lost"):
            self.lose(deal.with_user(self.salesman), None, day(1))
        self.assertTrue(deal.active)
        self.assertEqual(self.stays(deal), [("A", day(0), None, None, "open", None)])

    def test_archive_without_reason_fails(self):
        deal = self.new_deal(day(0))
        with self.assertRaisesRegex(UserError, "A loss reason is required"):
            deal.with_user(self.salesman).action_archive()
        self.assertTrue(deal.active)

    def test_losing_with_a_reason_records_it(self):
        deal = self.new_deal(day(0))
        self.lose(deal.with_user(self.salesman), self.reason_price, day(1))
        self.assertEqual(self.stays(deal), [("A", day(0), day(1), 1.0, "lost", "Price")])

    def test_setting_off_by_default(self):
        self.assertFalse(self.installed_setting)
        # back to the setting as installed (False removes the parameter)
        self.env["ir.config_parameter"].sudo().set_param(
            LOST_REASON_REQUIRED_PARAM, self.installed_setting
        )
        deal = self.new_deal(day(0))
        self.lose(deal, None, day(1))
        self.assertEqual(self.stays(deal), [("A", day(0), day(1), 1.0, "lost", None)])


@tagged("post_install", "-at_install")
class TestStageHistoryAccess(FunnelCase):
    def test_salesman_sees_own_and_unassigned_deals_only(self):
        own = self.new_deal(day(0), name="own")
        lost_own = self.new_deal(day(0), name="own lost")
        self.lose(lost_own, self.reason_price, day(1))
        unassigned = self.new_deal(day(0), name="nobody's")
        unassigned.user_id = False
        other = self.new_deal(day(0), name="other's", user=self.other_salesman)
        History = self.env["crm.lead.stage.history"].with_user(self.salesman)
        seen = History.search([]).lead_id
        self.assertEqual(seen, own | lost_own | unassigned)
        self.assertNotIn(other, seen)

    def test_nobody_writes_stays_by_hand(self):
        deal = self.new_deal(day(0))
        stay = self.env["crm.lead.stage.history"].search([("lead_id", "=", deal.id)])
        for user in (self.salesman, self.manager):
            with self.assertRaises(AccessError):
                stay.with_user(user).write({"duration_days": 3})
            with self.assertRaises(AccessError):
                stay.with_user(user).unlink()
            with self.assertRaises(AccessError):
                self.env["crm.lead.stage.history"].with_user(user).create(
                    {
                        "lead_id": deal.id,
                        "stage_id": self.stage_b.id,
                        "date_in": day(1),
                    }
                )


@tagged("post_install", "-at_install")
class TestLossReasonStaysWithItsLoss(FunnelCase):
    def test_losing_again_without_reason_keeps_the_earlier_reason(self):
        deal = self.new_deal(day(0))
        self.lose(deal, self.reason_price, day(1))
        with self.at(day(2)):
            deal.action_unarchive()
        with self.at(day(3)):
            deal.action_archive()
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "lost", "Price"),
                ("A", day(2), day(3), 1.0, "lost", None),
            ],
        )


@tagged("post_install", "-at_install")
class TestClockSetBack(FunnelCase):
    def test_a_clock_going_back_is_clamped(self):
        deal = self.new_deal(day(5))
        self.move(deal, self.stage_b, day(2))
        self.move(deal, self.stage_c, day(6))
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(5), day(5), 0.0, "forward", None),
                ("B", day(5), day(6), 1.0, "forward", None),
                ("C", day(6), None, None, "open", None),
            ],
        )
