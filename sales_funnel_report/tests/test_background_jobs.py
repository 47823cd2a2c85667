from unittest.mock import patch

from psycopg2 import errors

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from ..models import bulk_load, sales_funnel_job
from ..models.lost_race import execute_racing
from .common import FunnelCase, day


@tagged("post_install", "-at_install")
class TestPipelineChangesQueueJobs(FunnelCase):
    """Changing the pipeline queues one background job; the job brings the funnel
    rows of exactly the deals concerned in line with the new pipeline."""

    def setUp(self):
        super().setUp()
        self.Job = self.env["sales.funnel.job"].sudo()
        self.team2 = self.env["crm.team"].create({"name": "Second pipeline"})
        self.stage_x = self.env["crm.stage"].create(
            {"name": "X", "sequence": 1, "team_id": self.team2.id}
        )
        self.run_funnel_jobs()  # the stage just created queued its own job

    def deals_then_stage_moved_first(self, count, stage):
        """``count`` deals in ``stage``, recorded; then the manager moves the stage
        first in the pipeline, which queues one job."""
        for n in range(count):
            self.new_deal(day(0), stage=stage, name=f"D{n}")
        self.run_funnel_jobs()
        with self.at(day(1)):
            stage.with_user(self.manager).write({"sequence": 0})
        self.flush_tracking()

    def test_saving_a_stage_unchanged_queues_nothing(self):
        self.stage_b.with_user(self.manager).write(
            {"sequence": self.stage_b.sequence, "is_won": False, "team_id": self.team.id}
        )
        self.stage_b.with_user(self.manager).write({"name": "B renamed"})
        self.flush_tracking()
        self.assertEqual(self.Job.search_count([]), 0)

    def test_resequencing_waits_for_the_job_then_is_exact(self):
        deal = self.new_deal(day(0), stage=self.stage_c)
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("A", "passed"), ("B", "passed"), ("C", "open")])
        with self.at(day(1)):
            self.stage_c.with_user(self.manager).write({"sequence": 0})
        # the user's request only queued the work: the deal keeps its rows
        self.assertEqual(self.Job.search_count([]), 1)
        self.assertEqual(self.axis(deal), [("C", "open"), ("A", "passed"), ("B", "passed")])
        self.assertEqual(self.run_funnel_jobs(), 1)
        self.assertEqual(self.axis(deal), [("C", "open")])
        self.assertEqual(self.Job.search_count([]), 0)

    def test_resequencing_a_stage_reaches_other_teams_deals_in_it(self):
        # Odoo keeps a deal's stage when its team changes: a deal of the second
        # team sits in the first team's stage B.
        deal = self.new_deal(day(0), stage=self.stage_b)
        with self.at(day(1)):
            deal.write({"team_id": self.team2.id})
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("X", "passed"), ("B", "open")])
        with self.at(day(2)):
            self.stage_b.with_user(self.manager).write({"sequence": 0})
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("B", "open")])
        before = self.funnel_rows(deal)
        self.env["sales.funnel.fact"]._refresh(deal.ids)
        self.assertEqual(self.funnel_rows(deal), before)

    def test_deleting_a_stage_reaches_other_teams_deals_that_went_through_it(self):
        # a deal of the first team goes B, C, then moves to the second team (keeping
        # C): its stay in B dates its entry into X, a stage it skipped before C
        deal = self.new_deal(day(0), stage=self.stage_b)
        self.move(deal, self.stage_c, day(1))
        with self.at(day(2)):
            deal.write({"team_id": self.team2.id})
        self.run_funnel_jobs()
        self.assertEqual(self.entries(deal), [("X", True, day(0)), ("C", False, day(1))])
        # deleting B deletes its stays, the deal's among them: its rows are redone
        self.stage_b.with_user(self.manager).unlink()
        self.run_funnel_jobs()
        self.assertEqual(self.entries(deal), [("X", True, day(1)), ("C", False, day(1))])
        recorded = self.funnel_rows(deal)
        self.env["sales.funnel.fact"]._refresh(deal.ids)
        self.assertEqual(self.funnel_rows(deal), recorded)

    def entries(self, deal):
        """The deal's steps in funnel order: whether it skipped each, and when it
        entered it."""
        self.flush_tracking()
        rows = self.env["sales.funnel.fact"].sudo().search([("lead_id", "=", deal.id)])
        return [(row.step_id.name, row.skipped, row.date_in) for row in rows]

    def test_team_option_queues_its_deals(self):
        self.env["crm.stage"].create({"name": "Shared", "sequence": 0})
        deal = self.new_deal(day(0), stage=self.stage_b)
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("Shared", "passed"), ("A", "passed"), ("B", "open")])
        self.team.with_user(self.manager).write({"funnel_own_stages_only": True})
        self.assertEqual(self.axis(deal), [("Shared", "passed"), ("A", "passed"), ("B", "open")])
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("A", "passed"), ("B", "open")])
        # the same value again: nothing to do
        self.team.with_user(self.manager).write({"funnel_own_stages_only": True})
        self.flush_tracking()
        self.assertEqual(self.Job.search_count([]), 0)

    def test_a_job_stopped_between_batches_resumes_where_it_stopped(self):
        deals = [self.new_deal(day(0), stage=self.stage_b, name=f"D{n}") for n in range(5)]
        self.run_funnel_jobs()
        with self.at(day(1)):
            self.stage_b.with_user(self.manager).write({"sequence": 0})
        self.flush_tracking()
        with patch.object(sales_funnel_job, "BATCH_SIZE", 2):
            self.assertTrue(self.Job._process_one_batch())
            job = self.Job.search([])
            self.assertEqual((job.total, job.done, job.last_lead_id), (5, 2, deals[1].id))
            self.assertEqual(self.Job._progress(), {"facts": 40})
            self.assertEqual(self.axis(deals[1]), [("B", "open")])
            # not reached yet: its rows are the old ones (on the new axis order)
            self.assertEqual(self.axis(deals[2]), [("B", "open"), ("A", "passed")])
            # the worker is killed here: the next run starts from the job's row
            self.env.invalidate_all()
            self.assertEqual(self.run_funnel_jobs(), 2)  # 2 deals, then the last one
        for deal in deals:
            self.assertEqual(self.axis(deal), [("B", "open")])
        self.assertEqual(self.Job._progress(), {})

    def test_the_funnel_says_it_is_being_updated(self):
        for n in range(5):
            self.new_deal(day(0), stage=self.stage_b, name=f"D{n}")
        self.run_funnel_jobs()
        Report = self.env["sales.funnel.report"].with_user(self.salesman)
        self.assertFalse(Report.get_update_notice())
        with self.at(day(1)):
            self.stage_b.with_user(self.manager).write({"sequence": 0})
        self.flush_tracking()
        self.assertEqual(
            Report.get_update_notice(), "Updating the funnel after a pipeline change..."
        )
        with patch.object(sales_funnel_job, "BATCH_SIZE", 2):
            self.Job._process_one_batch()
        self.assertEqual(
            Report.get_update_notice(), "Updating the funnel after a pipeline change: 40 %"
        )
        self.run_funnel_jobs()
        self.assertFalse(Report.get_update_notice())
        self.env["sales.funnel.job"]._queue_rebuild()
        self.assertEqual(
            Report.get_update_notice(), "Rebuilding the stage history from the chatter..."
        )
        portal = new_test_user(self.env, login="funnel_portal", groups="base.group_portal")
        with self.assertRaises(AccessError):
            self.env["sales.funnel.report"].with_user(portal).get_update_notice()

    def test_the_scheduled_action_reports_progress_and_wakes_itself(self):
        self.deals_then_stage_moved_first(3, self.stage_b)
        cron = self.env.ref("sales_funnel_report.ir_cron_sales_funnel_jobs")
        Trigger = self.env["ir.cron.trigger"].sudo()
        calls = []
        with (
            patch.object(sales_funnel_job, "BATCH_SIZE", 2),
            patch.object(sales_funnel_job, "CALL_BUDGET", 0.0),  # one batch per call
            patch.object(self.env.cr, "commit", lambda: None),
        ):
            while True:
                triggers = Trigger.search_count([("cron_id", "=", cron.id)])
                with_progress, progress = cron._add_progress()
                self.env["sales.funnel.job"].with_context(
                    ir_cron_progress_id=progress.id
                )._cron_process()
                woken = Trigger.search_count([("cron_id", "=", cron.id)]) > triggers
                calls.append((progress.done, progress.remaining, woken))
                if not progress.remaining:
                    break
        # two deals, then the last one and the end of the job: no wake-up needed then
        self.assertEqual(calls, [(1, 1, True), (1, 0, False)])

    def test_no_user_action_reaches_the_bulk_load(self):
        """TRUNCATE, ALTER TABLE and DROP INDEX (all in ``bulk_load.loaded_in_bulk``)
        are for install, upgrades and the CLI: a pipeline change and the settings'
        rebuild, with their jobs, never run them; the rebuild over every deal does,
        for both tables."""
        self.new_deal(day(0), stage=self.stage_b)
        admin = new_test_user(self.env, login="funnel_admin2", groups="base.group_system")
        forbidden = AssertionError("bulk load in a user's request")
        with patch.object(bulk_load, "loaded_in_bulk", side_effect=forbidden):
            with self.at(day(1)):
                self.stage_b.with_user(self.manager).write({"sequence": 0})
            settings = self.env["res.config.settings"].with_user(admin).create({})
            settings.action_rebuild_stage_history()
            self.assertEqual(self.run_funnel_jobs(), 2)
        with patch.object(bulk_load, "loaded_in_bulk", wraps=bulk_load.loaded_in_bulk) as spy:
            self.env["sales.funnel.rebuild"]._run()
        self.assertEqual(
            sorted(call.args[1] for call in spy.call_args_list),
            ["crm_lead_stage_history", "sales_funnel_fact"],
        )

    def rebuilt_notices(self, user):
        """What the bus sent ``user`` about rebuilt histories."""
        self.flush_tracking()  # the bus sends at commit
        return (
            self.env["bus.bus"]
            .sudo()
            .search(
                [
                    ("message", "like", "Stage history rebuilt"),
                    ("channel", "like", f'"res.partner",{user.partner_id.id}]'),
                ]
            )
        )

    def test_the_administrator_hears_when_the_rebuild_ends(self):
        self.new_deal(day(0), stage=self.stage_b)
        admin = new_test_user(self.env, login="funnel_admin", groups="base.group_system")
        self.env["res.config.settings"].with_user(admin).create({}).action_rebuild_stage_history()
        self.run_funnel_jobs()
        sent = self.rebuilt_notices(admin)
        self.assertEqual(len(sent), 1)
        self.assertIn("The stage history of 1 deals was rebuilt", sent.message)

    def test_a_rebuild_superseded_halfway_announces_nothing(self):
        """Rebuild pressed again while the first rebuild runs: the first one
        stops without telling anyone the history is rebuilt; the second says
        so, for every deal, when it ends."""
        for n in range(3):
            self.new_deal(day(0), stage=self.stage_b, name=f"D{n}")
        admin = new_test_user(self.env, login="funnel_admin", groups="base.group_system")
        settings = self.env["res.config.settings"].with_user(admin)
        with patch.object(sales_funnel_job, "BATCH_SIZE", 2):
            settings.create({}).action_rebuild_stage_history()
            self.flush_tracking()
            self.Job._process_one_batch()
            self.assertEqual(self.Job.search([]).mapped("done"), [2])
            settings.create({}).action_rebuild_stage_history()
            self.run_funnel_jobs()
        sent = self.rebuilt_notices(admin)
        self.assertEqual(len(sent), 1)
        self.assertIn("The stage history of 3 deals was rebuilt", sent.message)

    def test_a_later_job_over_every_deal_supersedes_earlier_ones(self):
        with self.at(day(1)):
            self.stage_b.with_user(self.manager).write({"sequence": 5})
        with self.at(day(2)):
            self.env["crm.stage"].with_user(self.manager).create({"name": "Shared", "sequence": 9})
        self.flush_tracking()
        first, second = self.Job.search([])
        self.assertEqual((first.all_deals, second.all_deals), (False, True))
        self.Job._process_one_batch()
        self.assertFalse(first.exists())
        self.assertTrue(second.exists())

    def test_batches_shrink_on_a_busy_server_and_grow_back(self):
        """A batch slower than ``BATCH_SECONDS`` makes the next one smaller, down to
        ``MIN_BATCH_SIZE`` deals, so that a save waiting for a batch does not wait
        longer on a busy server; a quick one brings the size back up."""
        self.deals_then_stage_moved_first(6, self.stage_c)
        job = self.Job.search([])
        progress = []
        with (
            patch.object(sales_funnel_job, "BATCH_SIZE", 4),
            patch.object(sales_funnel_job, "MIN_BATCH_SIZE", 1),
        ):
            for seconds in (1e-9, 1e9, 1e9):
                with patch.object(sales_funnel_job, "BATCH_SECONDS", seconds):
                    self.Job._process_one_batch()
                progress.append((job.done, job.batch_size) if job.exists() else "ended")
        self.assertEqual(progress, [(4, 1), (5, 4), "ended"])

    def test_a_later_rebuild_of_the_history_supersedes_funnel_updates(self):
        """Its batches rewrite the funnel rows too: an update queued before it has
        nothing left to do, and the rebuild's own job stays until a later one."""
        deal = self.new_deal(day(0), stage=self.stage_b)
        self.run_funnel_jobs()
        with self.at(day(1)):
            self.stage_c.with_user(self.manager).write({"sequence": 0})
        self.flush_tracking()
        update = self.Job.search([])
        rebuild = self.Job._queue_rebuild()
        self.assertEqual((update.kind, rebuild.kind), ("facts", "history"))
        self.Job._process_one_batch()
        self.assertFalse(update.exists())
        self.assertTrue(rebuild.exists())
        self.run_funnel_jobs()
        self.assertFalse(self.Job.search([]))
        self.assertEqual(self.axis(deal), [("C", "passed"), ("A", "passed"), ("B", "open")])

    def test_a_failed_statement_is_logged_as_odoo_logs_it(self):
        with (
            self.assertLogs("odoo.sql_db", "ERROR") as logs,
            self.assertRaises(errors.DivisionByZero),
            self.env.cr.savepoint(),
        ):
            execute_racing(self.env.cr, SQL("SELECT 1 / %s", 0))
        self.assertEqual(len(logs.output), 1)
        self.assertIn("bad query: b'SELECT 1 / 0'", logs.output[0])

    def test_a_recording_left_to_the_job_comes_first_and_is_not_announced(self):
        """What a user's transaction left to the job after losing a race with a
        batch: a few deals, done before the pipeline update queued earlier, and
        not what the funnel's notice is about."""
        self.deals_then_stage_moved_first(3, self.stage_c)
        update = self.Job.search([])
        deal, other = (self.env["crm.lead"].search([("name", "=", name)]) for name in ("D1", "D2"))
        # its rows as the rolled-back recording left them: none
        self.env["sales.funnel.fact"].search([("lead_id", "=", deal.id)]).unlink()
        recording = self.Job._queue_recording("facts", deal.ids)
        self.assertEqual(
            (recording.lead_ids, recording.user_id), ([deal.id], self.env["res.users"])
        )
        self.assertEqual(self.Job._progress(), {"facts": None})
        self.Job._process_one_batch()
        self.assertFalse(recording.exists())
        self.assertEqual((update.total, update.done), (0, 0))
        # its rows from the deal and the stages as they are; the others wait
        self.assertEqual(self.axis(deal), [("C", "open")])
        self.assertEqual(self.axis(other), [("C", "open"), ("A", "passed"), ("B", "passed")])
        self.assertEqual(self.run_funnel_jobs(), 1)
        self.assertEqual(self.axis(other), [("C", "open")])
        # on its own, a recording left to the job says nothing to the funnel's readers
        self.Job._queue_recording("facts", other.ids)
        self.assertEqual(self.Job._progress(), {})
        self.assertEqual(self.run_funnel_jobs(), 1)

    def test_deals_users_held_are_retried_a_batch_at_a_time(self):
        """Deals users held when their batch came are done at the end of the
        job, a batch of them per transaction like the others: an import may
        have held thousands."""
        deals = self.env["crm.lead"].create(
            [
                {"name": f"Held {n}", "type": "opportunity", "stage_id": self.stage_b.id}
                for n in range(60)
            ]
        )
        self.run_funnel_jobs()
        job = self.Job._create_job("facts", {"all_deals": True})
        # every deal held by a user when the job passed it
        job.write(
            {
                "total": 60,
                "last_lead_id": max(deals.ids),
                "retry_ids": deals.ids,
                "batch_size": sales_funnel_job.MIN_BATCH_SIZE,
            }
        )
        self.Job._process_one_batch()
        self.assertEqual((job.done, job.retry_ids), (50, deals.ids[50:]))
        self.Job._process_one_batch()
        self.assertFalse(job.exists())

    def test_a_deleted_scheduled_action_fails_no_save(self):
        """The scheduled action deleted by hand: a stage change (and a user's
        save whose recording is left to a job) still goes through; the job
        waits, and says why in the log."""
        deal = self.new_deal(day(0), stage=self.stage_c)
        self.run_funnel_jobs()
        self.env.ref("sales_funnel_report.ir_cron_sales_funnel_jobs").unlink()
        with self.assertLogs(
            "odoo.addons.sales_funnel_report.models.sales_funnel_job", "WARNING"
        ) as logs:
            with self.at(day(1)):
                self.stage_c.with_user(self.manager).write({"sequence": 0})
            self.flush_tracking()
            self.Job._queue_recording("facts", deal.ids)
        self.assertEqual(len(logs.output), 2)
        for line in logs.output:
            self.assertIn("Sales Funnel: Update is missing", line)
        self.assertEqual(self.Job.search_count([]), 2)
        self.assertEqual(self.axis(deal), [("C", "open"), ("A", "passed"), ("B", "passed")])
        self.assertEqual(self.run_funnel_jobs(), 2)
        self.assertEqual(self.axis(deal), [("C", "open")])


@tagged("post_install", "-at_install")
class TestStagesAfterWon(FunnelCase):
    """Unset booleans are NULL in PostgreSQL (Odoo's own stages leave is_won so):
    the funnel reads them as false, with stages after Won, two won stages and a
    won stage moved first."""

    def setUp(self):
        super().setUp()
        Stage = self.env["crm.stage"]
        self.delivered = Stage.create({"name": "Delivered", "sequence": 80})
        self.run_funnel_jobs()
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_stage SET is_won = NULL WHERE NOT is_won AND id = ANY(%s)",
            [(self.stage_a | self.stage_b | self.stage_c | self.delivered).ids],
        )
        self.env.invalidate_all()

    def test_won_then_delivered_then_resequenced(self):
        deal = self.new_deal(day(0))
        with self.at(day(1)):
            deal.action_set_won()
        self.assertEqual(
            self.axis(deal),
            [
                ("A", "passed"),
                ("B", "passed"),
                ("C", "passed"),
                ("Won", "won"),
            ],
        )
        self.move(deal, self.delivered, day(2))
        self.assertEqual(
            self.axis(deal),
            [
                ("A", "passed"),
                ("B", "passed"),
                ("C", "passed"),
                ("Won", "passed"),
                ("Delivered", "open"),
            ],
        )
        with self.at(day(3)):
            self.delivered.with_user(self.manager).write({"sequence": 5})
        self.run_funnel_jobs()
        self.assertEqual(
            self.axis(deal),
            [
                ("A", "passed"),
                ("B", "passed"),
                ("C", "passed"),
                ("Delivered", "open"),
            ],
        )

    def test_two_won_stages_count_the_deal_won_once_at_the_last(self):
        won2 = self.env["crm.stage"].create(
            {"name": "Won 2", "sequence": 20, "team_id": self.team.id, "is_won": True}
        )
        self.run_funnel_jobs()
        deal = self.new_deal(day(0))
        self.move(deal, won2, day(1))
        rows = self.env["sales.funnel.report"].read_group(
            [("lead_id", "=", deal.id)],
            ["won_count:sum", "lead_count:sum"],
            ["step_id"],
            lazy=False,
        )
        self.assertEqual(
            [(row["step_id"][1], row["lead_count"], row["won_count"]) for row in rows],
            # Odoo's own stages have a "Won" too: the step names its pipeline
            [("A", 1, 0), ("B", 1, 0), ("C", 1, 0), ("Won (Funnel team)", 1, 0), ("Won 2", 1, 1)],
        )

    def test_won_stage_moved_first(self):
        deal = self.new_deal(day(0), stage=self.stage_b)
        with self.at(day(1)):
            deal.action_set_won()
        with self.at(day(2)):
            self.stage_won.with_user(self.manager).write({"sequence": 0})
        self.run_funnel_jobs()
        self.assertEqual(self.axis(deal), [("Won", "won")])


@tagged("post_install", "-at_install")
class TestOneDragOneJob(HttpCase):
    """Dragging a row of the stage list saves every stage of the list, one by one,
    through /web/dataset/resequence: one request, one job."""

    def test_drag_in_the_stage_list_queues_one_job(self):
        team = self.env["crm.team"].create({"name": "Drag team"})
        stages = self.env["crm.stage"].create(
            [
                {"name": name, "sequence": seq, "team_id": team.id}
                for seq, name in enumerate(["One", "Two", "Three", "Four"], start=1)
            ]
        )
        self.env.cr.flush()
        Job = self.env["sales.funnel.job"].sudo()
        Job.search([]).unlink()
        new_test_user(self.env, login="drag_manager", groups="sales_team.group_sale_manager")
        self.authenticate("drag_manager", "drag_manager")
        # "Four" dragged to the top: every stage of the list is saved again
        order = [stages[3].id, *stages[:3].ids]
        self.make_jsonrpc_request(
            "/web/dataset/resequence",
            {
                "model": "crm.stage",
                "ids": order,
                "offset": 1,
            },
        )
        self.env.invalidate_all()
        jobs = Job.search([])
        self.assertEqual(len(jobs), 1)
        self.assertEqual(
            (jobs.all_deals, jobs.team_ids, sorted(jobs.stage_ids)),
            (False, [team.id], sorted(stages.ids)),
        )
        # the same order again changes nothing: no job
        jobs.unlink()
        self.make_jsonrpc_request(
            "/web/dataset/resequence",
            {
                "model": "crm.stage",
                "ids": order,
                "offset": 1,
            },
        )
        self.env.invalidate_all()
        self.assertEqual(Job.search_count([]), 0)
