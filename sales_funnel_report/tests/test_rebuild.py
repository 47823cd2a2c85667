import random
from collections import Counter
from datetime import timedelta
from functools import partial
from unittest.mock import patch

import psycopg2

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import FunnelCase, day


@tagged("post_install", "-at_install")
class TestRebuildFromTracking(FunnelCase):
    """The history rebuilt from the chatter equals the one recorded live."""

    def step(self, when, action):
        """``action`` as a transaction at ``when``: its tracking is written when it
        commits (``at`` flushes it on leaving the block, still at ``when``)."""
        with self.at(when):
            return action()

    def tracked_deal(self, when, name):
        deal = self.new_deal(when, name=name)
        self.step(when, lambda: None)
        return deal

    def all_stays(self, deals):
        return {deal.name: self.stays(deal) for deal in deals}

    def funnel(self, deals):
        return [
            (*keys, round(days or 0, 6), visits)
            for *keys, days, visits in self.env["sales.funnel.report"]._read_group(
                [("lead_id", "in", deals.ids)],
                ["lead_id", "stage_id", "state"],
                ["duration_days:sum", "visit_count:sum"],
            )
        ]

    def rebuild(self):
        with self.at(day(400)):
            return self.env["sales.funnel.rebuild"]._run()

    maxDiff = None

    def test_random_walk_rebuilds_to_the_microsecond(self):
        rng = random.Random(20250303)
        stages = self.stage_a | self.stage_b | self.stage_c | self.stage_won
        reasons = self.reason_price | self.reason_no_answer
        deals = self.env["crm.lead"]
        for index in range(8):
            deal = self.tracked_deal(day(index, hours=index), f"walk {index}")
            deals |= deal
        for tick in range(1, 120):
            deal = deals[rng.randrange(len(deals))]
            when = day(10 + tick, hours=rng.randrange(8)).replace(microsecond=rng.randrange(10**6))
            choice = rng.random()
            if not deal.active:
                action = deal.action_unarchive if choice < 0.5 else deal.action_set_won
            elif choice < 0.6:
                action = partial(deal.write, {"stage_id": stages[rng.randrange(len(stages))].id})
            elif choice < 0.8:
                action = partial(
                    self.env["crm.lead.lost"]
                    .create(
                        {
                            "lead_ids": [(6, 0, deal.ids)],
                            "lost_reason_id": reasons[rng.randrange(len(reasons))].id,
                        }
                    )
                    .action_lost_reason_apply
                )
            elif choice < 0.9:
                action = deal.action_set_won
            else:
                action = deal.action_archive
            self.step(when, action)
        live = self.all_stays(deals)
        self.assertGreater(sum(len(stays) for stays in live.values()), 60)
        self.assertTrue(
            {"forward", "back", "lost", "open"}
            <= {stay[4] for stays in live.values() for stay in stays}
        )
        funnel_live = self.funnel(deals)
        counts = self.rebuild()
        self.assertEqual(self.all_stays(deals), live)
        self.assertEqual(counts["untracked_losses"], 0)
        self.assertEqual(counts["untracked_moves"], 0)
        self.assertEqual(self.funnel(deals), funnel_live)
        # Idempotent.
        self.rebuild()
        self.assertEqual(self.all_stays(deals), live)

    def test_random_walk_with_merges_imports_and_clock_changes(self):
        """Merges, deals imported lost and a clock set back give the same history
        live and rebuilt."""
        rng = random.Random(20261130)
        stages = self.stage_a | self.stage_b | self.stage_c | self.stage_won
        deals = self.env["crm.lead"]
        for index in range(10):
            deals |= self.tracked_deal(day(index, hours=index), f"walk {index}")
        merged = imported = clock_back = 0
        when = day(12)
        for tick in range(1, 160):
            when += timedelta(hours=rng.randrange(1, 30), microseconds=rng.randrange(10**6))
            choice = rng.random()
            if choice < 0.06:
                # an administrator's clock set back two hours for this transaction
                at, clock_back = when - timedelta(hours=2), clock_back + 1
            else:
                at = when
            deal = deals[rng.randrange(len(deals))]
            if choice < 0.12 and len(deals.filtered("active")) > 3:
                pair = deals.filtered("active")[rng.randrange(3) :][:2]
                self.step(at, pair.merge_opportunity)
                deals = deals.exists()
                merged += 1
            elif choice < 0.18:
                stage = stages[rng.randrange(len(stages))]

                def load(tick=tick, stage=stage):
                    result = self.env["crm.lead"].load(
                        [
                            "name",
                            "type",
                            "team_id/.id",
                            "stage_id/.id",
                            "active",
                            "lost_reason_id/.id",
                        ],
                        [
                            [
                                f"imported lost {tick}",
                                "opportunity",
                                str(self.team.id),
                                str(stage.id),
                                "False",
                                str(self.reason_price.id),
                            ]
                        ],
                    )
                    self.assertFalse(result["messages"])
                    return result["ids"]

                deals |= self.env["crm.lead"].browse(self.step(at, load))
                imported += 1
            elif not deal.active:
                self.step(at, deal.action_unarchive if choice < 0.6 else deal.action_set_won)
            elif choice < 0.65:
                self.step(
                    at, partial(deal.write, {"stage_id": stages[rng.randrange(len(stages))].id})
                )
            elif choice < 0.85:
                self.step(
                    at,
                    self.env["crm.lead.lost"]
                    .create(
                        {
                            "lead_ids": [(6, 0, deal.ids)],
                            "lost_reason_id": self.reason_price.id,
                        }
                    )
                    .action_lost_reason_apply,
                )
            else:
                self.step(at, deal.action_set_won)
        self.assertEqual((merged, imported, clock_back), (20, 15, 14))
        live = self.all_stays(deals)
        funnel_live = self.funnel(deals)
        self.rebuild()
        self.assertEqual(self.all_stays(deals), live)
        self.assertEqual(self.funnel(deals), funnel_live)

    def test_a_deal_imported_lost_has_no_stay_live_nor_rebuilt(self):
        def load():
            return self.env["crm.lead"].load(
                ["name", "type", "team_id/.id", "stage_id/.id", "active"],
                [
                    [
                        "imported lost",
                        "opportunity",
                        str(self.team.id),
                        str(self.stage_b.id),
                        "False",
                    ]
                ],
            )["ids"]

        deal = self.env["crm.lead"].browse(self.step(day(0), load))
        self.assertEqual(self.stays(deal), [])
        self.rebuild()
        self.assertEqual(self.stays(deal), [])
        # restored, it enters its stage then, live and rebuilt alike
        self.step(day(2), deal.action_unarchive)
        self.assertEqual(self.stays(deal), [("B", day(2), None, None, "open", None)])
        self.rebuild()
        self.assertEqual(self.stays(deal), [("B", day(2), None, None, "open", None)])

    def test_a_merged_deal_keeps_its_own_stays(self):
        master = self.tracked_deal(day(0), "master")
        self.step(day(1), lambda: master.write({"stage_id": self.stage_b.id}))
        other = self.tracked_deal(day(0, hours=1), "merged away")
        self.step(day(2), lambda: other.write({"stage_id": self.stage_c.id}))
        self.step(day(3), lambda: other.write({"stage_id": self.stage_b.id}))
        master.probability = other.probability = 50  # the older deal stays the master
        self.step(day(4), (master | other).merge_opportunity)
        self.assertFalse(other.exists())
        expected = [
            ("A", day(0), day(1), 1.0, "forward", None),
            ("B", day(1), None, None, "open", None),
        ]
        self.assertEqual(self.stays(master), expected)
        tracked = (
            self.env["mail.tracking.value"]
            .sudo()
            .search_count(
                [
                    ("mail_message_id.model", "=", "crm.lead"),
                    ("mail_message_id.res_id", "=", master.id),
                    ("field_id.name", "=", "stage_id"),
                ]
            )
        )
        self.assertEqual(tracked, 3, "Odoo moved the merged deal's tracking here")
        self.rebuild()
        self.assertEqual(self.stays(master), expected)

    def test_deals_without_tracking_are_rebuilt_from_their_dates(self):
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        with self.at(day(0)):
            open_deal = Lead.create(
                {
                    "name": "imported open",
                    "type": "opportunity",
                    "team_id": self.team.id,
                    "stage_id": self.stage_b.id,
                }
            )
            lost_deal = Lead.create(
                {
                    "name": "imported lost",
                    "type": "opportunity",
                    "team_id": self.team.id,
                    "stage_id": self.stage_c.id,
                }
            )
        with self.at(day(3)):
            lost_deal.write({"active": False, "lost_reason_id": self.reason_price.id})
        self.assertEqual(lost_deal.date_closed, day(3))
        counts = self.rebuild()
        self.assertEqual(self.stays(open_deal), [("B", day(0), None, None, "open", None)])
        self.assertEqual(self.stays(lost_deal), [("C", day(0), day(3), 3.0, "lost", "Price")])
        self.assertEqual(counts["untracked_losses"], 1)

    def test_bad_tracking_rows_are_counted_not_fatal(self):
        deal = self.tracked_deal(day(0), "bad rows")
        self.step(day(1), lambda: deal.write({"stage_id": self.stage_b.id}))
        self.step(day(2), lambda: deal.write({"stage_id": self.stage_c.id}))
        gone = self.tracked_deal(day(0), "deleted deal")
        self.step(day(1), lambda: gone.write({"stage_id": self.stage_b.id}))
        gone_id = gone.id
        cr = self.env.cr
        # Keep the deleted deal's tracking (as a database restored in pieces would).
        cr.execute(
            "UPDATE mail_message SET res_id = %s WHERE model = 'crm.lead' AND res_id = %s",
            (gone_id + 100000, gone_id),
        )
        gone.with_user(self.manager).unlink()  # deleting deals is for sales managers
        tracking = (
            self.env["mail.tracking.value"]
            .sudo()
            .search(
                [
                    ("mail_message_id.res_id", "=", deal.id),
                    ("mail_message_id.model", "=", "crm.lead"),
                ],
                order="id",
            )
        )
        self.assertEqual(len(tracking), 2)
        # A duplicated row, and the second move written with a time before the first.
        cr.execute(
            """INSERT INTO mail_tracking_value
                   (field_id, old_value_integer, new_value_integer, mail_message_id, create_date)
               SELECT field_id, old_value_integer, new_value_integer, mail_message_id, create_date
                 FROM mail_tracking_value WHERE id = %s""",
            (tracking[0].id,),
        )
        cr.execute(
            "UPDATE mail_tracking_value SET create_date = %s WHERE id = %s",
            (day(0, hours=12), tracking[1].id),
        )
        counts = self.rebuild()
        self.assertEqual(counts["tracking_of_deleted_deals"], 1)
        self.assertEqual(counts["duplicated_tracking_rows"], 1)
        self.assertEqual(counts["clamped_timestamps"], 1)
        # Clamped to the first move's time, the second move stays a transaction of
        # its own, as live recording saw it: a stay in B that lasted no time.
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "forward", None),
                ("B", day(1), day(1), 0.0, "forward", None),
                ("C", day(1), None, None, "open", None),
            ],
        )

    def stay_rows(self, deals):
        """Every stay of ``deals`` with its id, as stored: (id, deal, stage, in,
        out, days, outcome, reason)."""
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT id, lead_id, stage_id, date_in, date_out, duration_days, outcome,
                      lost_reason_id
                 FROM crm_lead_stage_history WHERE lead_id = ANY(%s) ORDER BY id""",
            [deals.ids],
        )
        return self.env.cr.fetchall()

    def test_a_batch_rewrites_only_the_stays_that_differ(self):
        """A background batch of the rebuild leaves a stay already as replayed
        where it is (same id), replaces one that differs, puts back one that is
        missing, and counts equal stays as often as they occur."""
        walked = self.tracked_deal(day(0), "walked")
        for when, stage in ((1, self.stage_b), (3, self.stage_c), (4, self.stage_b)):
            self.step(day(when), partial(walked.write, {"stage_id": stage.id}))
        lost = self.tracked_deal(day(0), "lost")
        self.step(day(2), partial(lost.write, {"stage_id": self.stage_b.id}))
        self.lose(lost, self.reason_price, day(5))
        # moved back and forth while the clock was set back: the moves are clamped
        # to the first one's time, which makes two equal stays in B
        twice = self.tracked_deal(day(0), "twice")
        for when, stage in (
            (day(6), self.stage_b),
            (day(5, hours=1), self.stage_a),
            (day(5, hours=2), self.stage_b),
            (day(5, hours=3), self.stage_a),
        ):
            self.step(when, partial(twice.write, {"stage_id": stage.id}))
        deals = walked | lost | twice
        live = self.stay_rows(deals)
        self.assertEqual(len(live), 11)
        b_in_no_time = [row for row in live if row[1] == twice.id and row[2] == self.stage_b.id]
        self.assertEqual(len(b_in_no_time), 2)
        self.assertEqual(b_in_no_time[0][3:], b_in_no_time[1][3:])

        with self.at(day(400)):
            counts = self.env["sales.funnel.rebuild"]._run(deals.ids)
        self.assertEqual(
            (counts["stays_rebuilt"], counts["stays_replaced"], counts["stays_written"]),
            (11, 0, 0),
        )
        self.assertEqual(self.stay_rows(deals), live)

        # a stay changed behind Odoo's back, one deleted, one duplicated
        changed, deleted, duplicated = live[1], live[5], live[8]
        self.env.cr.execute(
            """UPDATE crm_lead_stage_history
                  SET date_out = date_out + interval '1 hour', duration_days = 9
                WHERE id = %s""",
            [changed[0]],
        )
        self.env.cr.execute("DELETE FROM crm_lead_stage_history WHERE id = %s", [deleted[0]])
        self.env.cr.execute(
            """INSERT INTO crm_lead_stage_history (lead_id, stage_id, date_in, date_out,
                   duration_days, outcome, lost_reason_id, user_id, team_id, company_id)
               SELECT lead_id, stage_id, date_in, date_out, duration_days, outcome,
                      lost_reason_id, user_id, team_id, company_id
                 FROM crm_lead_stage_history WHERE id = %s""",
            [duplicated[0]],
        )
        self.env.invalidate_all()
        with self.at(day(400)):
            counts = self.env["sales.funnel.rebuild"]._run(deals.ids)
        self.assertEqual(
            (counts["stays_rebuilt"], counts["stays_replaced"], counts["stays_written"]),
            (11, 2, 2),
        )
        after = self.stay_rows(deals)
        kept = [row for row in live if row not in (changed, deleted)]
        # the 9 stays that were right keep their rows; the 2 wrong ones are new rows
        self.assertEqual([row for row in after if row[0] <= live[-1][0]], kept)
        self.assertEqual(Counter(row[1:] for row in after), Counter(row[1:] for row in live))
        self.assertEqual(len({row[0] for row in after} - {row[0] for row in live}), 2)

    def test_stays_in_deleted_stages_are_dropped(self):
        deal = self.tracked_deal(day(0), "deleted stage")
        self.step(day(1), lambda: deal.write({"stage_id": self.stage_b.id}))
        self.step(day(2), lambda: deal.write({"stage_id": self.stage_c.id}))
        self.stage_b.unlink()
        counts = self.rebuild()
        self.assertEqual(counts["stays_in_deleted_stages"], 1)
        self.assertEqual(
            self.stays(deal),
            [
                ("A", day(0), day(1), 1.0, "forward", None),
                ("C", day(2), None, None, "open", None),
            ],
        )

    def test_settings_action_rebuilds_and_a_failed_rebuild_loses_nothing(self):
        deal = self.tracked_deal(day(0), "settings")
        self.step(day(2), lambda: deal.write({"stage_id": self.stage_b.id}))
        expected = self.stays(deal)
        admin = self.env.ref("base.user_admin")
        with self.at(day(400)):
            action = (
                self.env["res.config.settings"]
                .with_user(admin)
                .create({})
                .action_rebuild_stage_history()
            )
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(self.stays(deal), expected)
        Replay = type(self.env["sales.funnel.replay"])
        with (
            patch.object(Replay, "_reconcile_with_deals", side_effect=RuntimeError("boom")),
            self.assertRaises(RuntimeError),
            self.env.cr.savepoint(),
        ):
            self.env["sales.funnel.rebuild"]._run()
        self.env.invalidate_all()
        self.assertEqual(self.stays(deal), expected)

    def test_full_rebuild_puts_back_every_key_and_index(self):
        """The bulk load over every deal drops the tables' keys and indexes and
        raises ``work_mem``; afterwards all are as they were, and the keys
        still refuse what they refused before."""

        def schema():
            self.env.cr.execute(
                """
                SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                  FROM pg_constraint
                 WHERE conrelid IN ('crm_lead_stage_history'::regclass,
                                    'sales_funnel_fact'::regclass)
                 UNION ALL
                SELECT tablename, indexname, indexdef
                  FROM pg_indexes
                 WHERE tablename IN ('crm_lead_stage_history', 'sales_funnel_fact')
                 ORDER BY 1, 2, 3
                """
            )
            return self.env.cr.fetchall()

        deal = self.tracked_deal(day(1), "bulk")
        self.step(day(2), lambda: deal.write({"stage_id": self.stage_b.id}))
        stays = self.stays(deal)
        self.assertEqual(len(stays), 2)
        before = schema()
        self.env.cr.execute("SHOW work_mem")
        work_mem = self.env.cr.fetchone()
        self.assertIn(
            ("crm_lead_stage_history", "crm_lead_stage_history_one_open_stay"),
            [row[:2] for row in before],
        )
        self.assertIn(
            ("sales_funnel_fact", "sales_funnel_fact_lead_step_uniq"), [row[:2] for row in before]
        )
        self.rebuild()
        self.assertEqual(self.stays(deal), stays)
        self.assertEqual(schema(), before)
        self.env.cr.execute("SHOW work_mem")
        self.assertEqual(self.env.cr.fetchone(), work_mem)
        self.env.cr.execute(
            "SELECT lead_id, stage_id, date_in FROM crm_lead_stage_history"
            " WHERE lead_id = %s AND date_out IS NULL",
            [deal.id],
        )
        lead_id, stage_id, date_in = self.env.cr.fetchone()
        self.assertEqual(stage_id, self.stage_b.id)
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.ExclusionViolation):
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    "INSERT INTO crm_lead_stage_history (lead_id, stage_id, date_in, outcome)"
                    " VALUES (%s, %s, %s, 'open')",
                    [lead_id, self.stage_a.id, date_in],
                )
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.ForeignKeyViolation):
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    "INSERT INTO crm_lead_stage_history"
                    " (lead_id, stage_id, date_in, date_out, outcome)"
                    " VALUES (%s, %s, %s, %s, 'forward')",
                    [lead_id, 2**31 - 1, date_in, date_in],
                )
