from psycopg2 import errors

from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from .common import day
from .fulfilment_common import FulfilmentCase


@tagged("post_install", "-at_install")
class TestFunnelRowsRewrite(FulfilmentCase):
    """How recording rewrites a deal's funnel rows: only the rows that change,
    in as few statements as possible, and the copies of deleted salespeople,
    teams and companies emptied as a foreign key would, in the funnel rows and
    in the stays."""

    def by_stays(self, deal, fname):
        """The deal's stays counted by ``fname``, as the stage history groups them."""
        groups = self.env["crm.lead.stage.history"].web_read_group(
            [("lead_id", "=", deal.id)], ["__count"], [fname]
        )["groups"]
        return [(g[fname], g[f"{fname}_count"]) for g in groups]

    def stored(self, deal):
        """The deal's pipeline rows by stage name: (row id, physical place, outcome).
        A row rewritten in place keeps its id and moves; one left alone keeps both."""
        self.flush_tracking()
        names = {stage.id: stage.name for stage in self.env["crm.stage"].search([])}
        self.env.cr.execute(
            """SELECT stage_id, id, ctid::text,
                      CASE WHEN is_passed THEN 'passed' WHEN is_open THEN 'open'
                           WHEN is_lost THEN 'lost' ELSE 'won' END
                 FROM sales_funnel_fact WHERE lead_id = %s AND NOT is_fulfilment""",
            [deal.id],
        )
        return {
            names[stage_id]: (row_id, place, state)
            for stage_id, row_id, place, state in self.env.cr.fetchall()
        }

    def test_a_move_writes_only_the_rows_that_change(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_b, day(1))
        at_b = self.stored(deal)
        self.assertEqual(
            {stage: state for stage, (_id, _place, state) in at_b.items()},
            {"A": "passed", "B": "open"},
        )
        self.move(deal, self.stage_c, day(3))
        at_c = self.stored(deal)
        self.assertEqual(at_c["A"], at_b["A"], "A did not change: neither rewritten nor moved")
        self.assertEqual(at_c["B"][0], at_b["B"][0], "B is the same row...")
        self.assertNotEqual(at_c["B"][1], at_b["B"][1], "...updated in place")
        self.assertEqual(at_c["B"][2], "passed")
        self.assertEqual(at_c["C"][2], "open")
        self.assertNotIn(at_c["C"][0], {row_id for row_id, _place, _state in at_b.values()})

        # back to A: B and C are no longer reached, their rows go; A's is the same row
        self.move(deal, self.stage_a, day(4))
        at_a = self.stored(deal)
        self.assertEqual(list(at_a), ["A"])
        self.assertEqual(at_a["A"][0], at_b["A"][0])
        self.assertEqual(at_a["A"][2], "open")

    def test_a_stage_write_is_recorded_in_one_round_trip(self):
        # the stays and the funnel rows without milestones, in one savepoint (should
        # they lose a race with a batch); a deal with an order confirmed once has
        # its rows written again, with its milestones, in a second round trip
        plain = self.deal(day(0), name="Plain")
        ordered = self.deal(day(0), name="Ordered")
        order = self.order(ordered, day(1))
        self.invoice(order, day(2))
        for deal, round_trips in ((plain, 1), (ordered, 2)):
            self.assertEqual(
                self.queries_to_record(
                    lambda d=deal: d.write({"stage_id": self.stage_b.id}), day(3)
                ),
                round_trips,
            )
        self.assertEqual(
            self.steps(plain),
            [("A", "passed", False, 3.0, day(0)), ("B", "open", False, None, day(3))],
        )
        # the deal with an order kept its fulfilment rows
        self.assertEqual(
            self.steps(ordered),
            [
                ("A", "passed", False, 3.0, day(0)),
                ("B", "passed", False, 0.0, day(3)),
                ("C", "passed", True, None, day(1)),
                ("Won", "passed", True, None, day(1)),
                ("Order", "passed", False, 1.0, day(1)),
                # won at its position: a deal with an order is won (the default setting)
                ("Invoiced", "won", False, None, day(2).replace(hour=0)),
            ],
        )

    def test_recording_leaves_the_planner_as_it_was(self):
        """A few deals' recording is planned without hash and merge joins; the
        rest of the transaction is not."""
        deal = self.deal(day(0), name="Plain")
        self.queries_to_record(lambda: deal.write({"stage_id": self.stage_b.id}), day(1))
        for setting in ("enable_hashjoin", "enable_mergejoin"):
            self.env.cr.execute(f"SHOW {setting}")
            self.assertEqual(self.env.cr.fetchone()[0], "on", setting)

    def test_recording_leaves_no_savepoint_open(self):
        """Each recording statement has its savepoint; none is left open, or the
        rest of the transaction would run nested in it."""
        deal = self.deal(day(0), name="Plain")
        changes = [
            # stays and funnel rows
            lambda: deal.write({"stage_id": self.stage_b.id}),
            # funnel rows only
            lambda: deal.write({"expected_revenue": 1234.0}),
        ]
        for change in changes:
            self.queries_to_record(change, day(1))
            with (
                self.assertRaises(errors.InvalidSavepointSpecification) as caught,
                mute_logger("odoo.sql_db"),
                self.env.cr.savepoint(),
            ):
                self.env.cr.execute("RELEASE SAVEPOINT sales_funnel_race")
            # raised by this release, not by the test's own savepoint a release of
            # an open one would have taken along
            self.assertIn('savepoint "sales_funnel_race" does not exist', str(caught.exception))
        self.assertEqual(
            [(stay[0], stay[4]) for stay in self.stays(deal)], [("A", "forward"), ("B", "open")]
        )

    def test_a_deleted_salesperson_leaves_the_rows_unassigned(self):
        seller = new_test_user(
            self.env, login="funnel_leaving", groups="sales_team.group_sale_salesman"
        )
        deal = self.new_deal(day(0), user=seller)
        self.move(deal, self.stage_b, day(1))
        self.assertEqual(self.by_stays(deal, "user_id"), [((seller.id, seller.display_name), 2)])
        seller.unlink()
        groups = self.env["sales.funnel.report"].web_read_group(
            [("lead_id", "=", deal.id)], ["lead_count"], ["user_id"]
        )["groups"]
        self.assertEqual([(g["user_id"], g["lead_count"]) for g in groups], [(False, 1)])
        self.assertEqual(self.by_stays(deal, "user_id"), [(False, 2)])

    def test_a_deleted_team_leaves_the_rows_without_team_at_once(self):
        deal = self.new_deal(day(0))
        self.move(deal, self.stage_b, day(1))
        # its stages stay, shared by all teams now
        self.team.unlink()
        # before the background job rewrites the deal's rows: no deleted team in them
        Report = self.env["sales.funnel.report"]
        groups = Report.web_read_group([("lead_id", "=", deal.id)], ["lead_count"], ["team_id"])
        self.assertEqual([(g["team_id"], g["lead_count"]) for g in groups["groups"]], [(False, 1)])
        self.assertEqual(self.by_stays(deal, "team_id"), [(False, 2)])
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("A", "passed"), ("B", "open")])

    def test_a_deleted_company_leaves_the_rows_without_company(self):
        company = self.env["res.company"].create({"name": "Closed branch"})
        deal = self.new_deal(day(0), user=self.env.user, company_id=company.id, team_id=False)
        self.assertEqual(self.by_stays(deal, "company_id"), [((company.id, "Closed branch"), 1)])
        company.unlink()
        self.env.cr.execute(
            "SELECT count(*), count(company_id) FROM sales_funnel_fact WHERE lead_id = %s",
            [deal.id],
        )
        self.assertEqual(self.env.cr.fetchone(), (1, 0))
        self.assertEqual(self.by_stays(deal, "company_id"), [(False, 1)])
