import threading
import time
from contextlib import closing
from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo import SUPERUSER_ID, api, sql_db
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..models import sales_funnel_job


@tagged("post_install", "-at_install")
class TestJobsRaceUsers(TransactionCase):
    """Background batches and users' saves on real concurrent connections. The
    test transaction cannot show other connections its data: the scenario is
    committed on connections of its own and deleted at the end."""

    def connection(self):
        return closing(sql_db.db_connect(self.env.cr.dbname).cursor())

    def env_of(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})

    def setUp(self):
        super().setUp()
        with self.connection() as cr:
            env = self.env_of(cr)
            cr.execute("DELETE FROM sales_funnel_job")
            # what the jobs tell their requester goes with the rest at the end
            cr.execute("SELECT COALESCE(max(id), 0) FROM bus_bus")
            self.last_bus_id = cr.fetchone()[0]
            # its own stages only: the stages shared by all teams stay out of its funnel
            self.team_id = (
                env["crm.team"].create({"name": "Race team", "funnel_own_stages_only": True}).id
            )
            self.stage_ids = (
                env["crm.stage"]
                .create(
                    [
                        {"name": f"Race {n}", "sequence": n, "team_id": self.team_id}
                        for n in (1, 2, 3)
                    ]
                )
                .ids
            )
            self.deal_ids = (
                env["crm.lead"]
                .create(
                    [
                        {
                            "name": f"Race deal {n}",
                            "type": "opportunity",
                            "team_id": self.team_id,
                            "stage_id": self.stage_ids[1],
                            "user_id": False,
                        }
                        for n in range(4)
                    ]
                )
                .ids
            )
            cr.flush()
            cr.execute("DELETE FROM sales_funnel_job")
            cr.commit()  # pylint: disable=invalid-commit
        self.addCleanup(self.clean_up)

    def clean_up(self):
        with self.connection() as cr:
            env = self.env_of(cr)
            env["crm.lead"].browse(self.deal_ids).exists().unlink()
            env["crm.stage"].browse(self.stage_ids).unlink()
            env["crm.team"].browse(self.team_id).unlink()
            cr.flush()
            cr.execute("DELETE FROM sales_funnel_job")
            cr.execute("DELETE FROM bus_bus WHERE id > %s", [self.last_bus_id])
            cr.commit()  # pylint: disable=invalid-commit

    def queue_resequence(self):
        """The manager moves the last stage first; the job is queued, not run."""
        with self.connection() as cr:
            self.env_of(cr)["crm.stage"].browse(self.stage_ids[2]).write({"sequence": 0})
            cr.commit()  # pylint: disable=invalid-commit

    def rows(self, lead_id):
        """(stage, passed, open) of the deal's funnel rows, as stored."""
        with self.connection() as cr:
            cr.execute(
                """SELECT stage_id, is_passed, is_open FROM sales_funnel_fact
                    WHERE lead_id = %s ORDER BY stage_sequence, stage_id""",
                [lead_id],
            )
            return cr.fetchall()

    def jobs(self):
        """(kind, deals) of the queued jobs, recordings left to the job first."""
        with self.connection() as cr:
            cr.execute("SELECT kind, lead_ids FROM sales_funnel_job ORDER BY lead_ids IS NULL, id")
            return cr.fetchall()

    def run_jobs(self):
        with self.connection() as cr:
            Job = self.env_of(cr)["sales.funnel.job"]
            while Job._process_one_batch_committed():
                pass

    def stays(self, lead_id):
        """(stage, outcome, left when the deal last moved, entered then) of its stays."""
        with self.connection() as cr:
            cr.execute(
                """SELECT h.stage_id, h.outcome, h.date_out = l.date_last_stage_update,
                          h.date_in = l.date_last_stage_update
                     FROM crm_lead_stage_history h JOIN crm_lead l ON l.id = h.lead_id
                    WHERE h.lead_id = %s ORDER BY h.date_in, h.id""",
                [lead_id],
            )
            return cr.fetchall()

    def move_with_retry(self, lead_id, stage_id, cr, attempts):
        """A user's save as Odoo's RPC layer runs it: retried on a serialization
        failure, in a new transaction."""
        for _attempt in range(5):
            try:
                with mute_logger("odoo.sql_db"):
                    self.env_of(cr)["crm.lead"].browse(lead_id).write({"stage_id": stage_id})
                    cr.flush()
                cr.commit()  # pylint: disable=invalid-commit
                return
            except SerializationFailure:
                cr.rollback()
                attempts.append("serialization failure")
        raise AssertionError("the save never went through")

    def test_one_runner_at_a_time(self):
        """*Run Manually* beside a cron worker: while one runner works a batch,
        the other does nothing, and does not call the action again (the first
        one does, if work remains)."""
        self.queue_resequence()
        with self.connection() as busy, self.connection() as cr:
            busy.execute("SELECT pg_advisory_xact_lock(%s)", [sales_funnel_job.RUNNER_LOCK])
            cron = self.env_of(cr).ref("sales_funnel_report.ir_cron_sales_funnel_jobs")
            cr.execute("SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [cron.id])
            triggers = cr.fetchone()[0]
            cr.commit()  # pylint: disable=invalid-commit
            Job = self.env_of(cr)["sales.funnel.job"]
            self.assertIsNone(Job._process_one_batch_committed())
            Job._cron_process()
            cr.execute("SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [cron.id])
            self.assertEqual(cr.fetchone()[0], triggers)
            cr.execute("SELECT done, last_lead_id FROM sales_funnel_job")
            self.assertEqual(cr.fetchall(), [(None, 0)], "the job was not started")
            busy.rollback()
            self.assertIs(Job._process_one_batch_committed(), True)
        self.run_jobs()
        self.assertEqual(self.jobs(), [])
        s1, s2, s3 = self.stage_ids
        self.assertEqual(
            self.rows(self.deal_ids[0]), [(s3, True, False), (s1, True, False), (s2, False, True)]
        )

    def test_a_save_waits_for_one_batch_and_is_kept(self):
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[0]
        self.queue_resequence()
        attempts = []
        with self.connection() as job_cr, self.connection() as user_cr:
            Job = self.env_of(job_cr)["sales.funnel.job"]
            self.assertTrue(Job._process_one_batch())  # the batch holds its deals...
            user = threading.Thread(target=self.move_with_retry, args=(deal, s3, user_cr, attempts))
            started = time.monotonic()
            user.start()
            user.join(1.0)
            self.assertTrue(user.is_alive(), "the save waits for the batch")
            job_cr.commit()  # pylint: disable=invalid-commit
            user.join(10.0)
            waited = time.monotonic() - started
            self.assertFalse(user.is_alive())
        self.assertLess(waited, 5.0)
        # The save started on data older than the batch, whose rows it could not
        # overwrite: it went through, its stays recorded, its funnel rows left to
        # the job, done first.
        self.assertEqual(attempts, [])
        # s3 is first now: the move was back
        self.assertEqual([stay[:2] for stay in self.stays(deal)], [(s2, "back"), (s3, "open")])
        self.assertEqual(self.jobs(), [("facts", [deal])])
        self.assertEqual(self.rows(deal), [(s3, True, False), (s1, True, False), (s2, False, True)])
        self.run_jobs()
        self.assertEqual(self.jobs(), [])
        # the user's move, on the new stage order (s3 first): s3 is all it reached
        self.assertEqual(self.rows(deal), [(s3, False, True)])
        for other in self.deal_ids[1:]:
            self.assertEqual(
                self.rows(other), [(s3, True, False), (s1, True, False), (s2, False, True)]
            )

    def test_a_deal_moved_after_the_batch_began_is_not_left_stale(self):
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[1]
        self.queue_resequence()
        with self.connection() as job_cr, self.connection() as user_cr:
            job_env = self.env_of(job_cr)
            job_cr.execute("SELECT 1")  # the batch's snapshot is taken here
            self.env_of(user_cr)["crm.lead"].browse(deal).write({"stage_id": s1})
            user_cr.flush()
            user_cr.commit()  # pylint: disable=invalid-commit
            # the batch cannot lock a deal changed since its snapshot: it starts over
            with self.assertRaises(SerializationFailure), mute_logger("odoo.sql_db"):
                job_env["sales.funnel.job"]._process_one_batch()
            job_cr.rollback()
            job_env.invalidate_all()
            self.assertTrue(job_env["sales.funnel.job"]._process_one_batch_committed())
        # s3 comes first now; the deal, moved back to s1, passed s3
        self.assertEqual(self.rows(deal), [(s3, True, False), (s1, False, True)])
        self.assertEqual(
            self.rows(self.deal_ids[0]), [(s3, True, False), (s1, True, False), (s2, False, True)]
        )

    def test_a_save_older_than_the_batch_never_adds_a_second_row(self):
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[2]
        self.queue_resequence()
        attempts = []
        with self.connection() as job_cr, self.connection() as user_cr:
            user_env = self.env_of(user_cr)
            user_env["crm.lead"].browse(deal).read(["stage_id"])  # the user's snapshot
            self.assertTrue(self.env_of(job_cr)["sales.funnel.job"]._process_one_batch())
            job_cr.commit()  # pylint: disable=invalid-commit
            self.move_with_retry(deal, s3, user_cr, attempts)
        self.assertEqual(attempts, [])
        self.assertEqual(self.jobs(), [("facts", [deal])])
        self.run_jobs()
        self.assertEqual(self.rows(deal), [(s3, False, True)])
        with self.connection() as cr:
            cr.execute(
                """SELECT count(*), count(DISTINCT (lead_id, step_id)) FROM sales_funnel_fact
                    WHERE lead_id = ANY(%s)""",
                [self.deal_ids],
            )
            rows, distinct = cr.fetchone()
        self.assertEqual((rows, distinct), (10, 10))

    def test_a_save_older_than_a_pipeline_change_its_batch_left_alone(self):
        """The manager makes a later stage won after the user's transaction began;
        the batch finds the deal's rows unchanged (it has not reached that
        stage). The user then moves the deal there: recorded on the former
        stages it would be open there, not won. Its rows go to a job instead."""
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[1]
        attempts = []
        with self.connection() as job_cr, self.connection() as user_cr:
            self.env_of(user_cr)["crm.lead"].browse(deal).read(["stage_id"])  # the snapshot
            with self.connection() as cr:
                self.env_of(cr)["crm.stage"].browse(s3).write({"is_won": True})
                cr.commit()  # pylint: disable=invalid-commit
            before = self.rows(deal)
            self.assertTrue(self.env_of(job_cr)["sales.funnel.job"]._process_one_batch())
            job_cr.commit()  # pylint: disable=invalid-commit
            self.assertEqual(self.rows(deal), before)
            self.move_with_retry(deal, s3, user_cr, attempts)
        self.assertEqual(attempts, [])
        self.assertEqual(self.jobs(), [("facts", [deal])])
        self.run_jobs()
        self.assertEqual(
            self.rows(deal), [(s1, True, False), (s2, True, False), (s3, False, False)]
        )
        with self.connection() as cr:
            cr.execute(
                "SELECT is_won FROM sales_funnel_fact WHERE lead_id = %s AND stage_id = %s",
                [deal, s3],
            )
            self.assertEqual(cr.fetchone(), (True,))

    def test_a_rebuild_batch_racing_a_move_ends_as_live_recording(self):
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[3]
        with self.connection() as cr:
            self.env_of(cr)["sales.funnel.job"]._queue_rebuild()
            cr.commit()  # pylint: disable=invalid-commit
        attempts = []
        with self.connection() as job_cr, self.connection() as user_cr:
            Job = self.env_of(job_cr)["sales.funnel.job"]
            self.assertTrue(Job._process_one_batch())
            user = threading.Thread(target=self.move_with_retry, args=(deal, s3, user_cr, attempts))
            user.start()
            user.join(1.0)
            self.assertTrue(user.is_alive(), "the move waits for the rebuild's batch")
            job_cr.commit()  # pylint: disable=invalid-commit
            user.join(10.0)
            self.assertFalse(user.is_alive())
        self.run_jobs()
        self.assertEqual(self.stays(deal), [(s2, "forward", True, False), (s3, "open", None, True)])
        self.assertEqual(self.rows(deal), [(s1, True, False), (s2, True, False), (s3, False, True)])
        self.assertEqual(self.jobs(), [])

    def test_a_move_racing_a_rebuild_batch_that_changed_its_stays_is_replayed(self):
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[3]
        with self.connection() as cr:
            # stays the rebuild will change: entered an hour before the deal was created
            cr.execute(
                """UPDATE crm_lead_stage_history
                      SET date_in = date_in - interval '1 hour' WHERE lead_id = %s""",
                [deal],
            )
            self.env_of(cr)["sales.funnel.job"]._queue_rebuild()
            cr.commit()  # pylint: disable=invalid-commit
        with self.connection() as job_cr, self.connection() as user_cr:
            user_env = self.env_of(user_cr)(context={})  # tracked in the chatter
            user_env["crm.lead"].browse(deal).read(["stage_id"])  # the snapshot
            self.assertTrue(self.env_of(job_cr)["sales.funnel.job"]._process_one_batch())
            job_cr.commit()  # pylint: disable=invalid-commit
            # The move goes through at once (no retry), and the race is handled: no
            # failed query in the log (nothing muted here).
            with self.assertNoLogs("odoo.sql_db", "ERROR"):
                user_env["crm.lead"].browse(deal).write({"stage_id": s3})
                user_cr.flush()
                user_cr.commit()  # pylint: disable=invalid-commit
        # its stays, raced, are left to be replayed first
        self.assertEqual(self.jobs()[0], ("history", [deal]))
        with self.connection() as cr:
            cr.execute("SELECT stage_id FROM crm_lead WHERE id = %s", [deal])
            self.assertEqual(cr.fetchone()[0], s3)
        # the rebuild's stays, the move not recorded yet
        self.assertEqual(self.stays(deal), [(s2, "open", None, False)])
        self.run_jobs()
        # the move as the chatter tracked it: from s2, entered at the deal's creation
        with self.connection() as cr:
            cr.execute(
                """SELECT h.stage_id, h.outcome, h.date_in = l.create_date,
                          h.date_out = (SELECT min(date_in) FROM crm_lead_stage_history
                                         WHERE lead_id = l.id AND stage_id = %s)
                     FROM crm_lead_stage_history h JOIN crm_lead l ON l.id = h.lead_id
                    WHERE h.lead_id = %s ORDER BY h.date_in, h.id""",
                [s3, deal],
            )
            stays = cr.fetchall()
        self.assertEqual(stays, [(s2, "forward", True, True), (s3, "open", False, None)])
        self.assertEqual(self.rows(deal), [(s1, True, False), (s2, True, False), (s3, False, True)])
        self.assertEqual(self.jobs(), [])

    def test_a_move_racing_another_change_of_its_stays_is_run_again(self):
        """Stays that raced anything but a rebuild of every deal's history are
        not replayed from the chatter (that would give them today's salesperson
        and team): the save fails to serialize, as before any job existed, and
        Odoo runs it again."""
        s1, s2, s3 = self.stage_ids
        deal = self.deal_ids[0]
        salesman = self.env.ref("base.user_admin").id
        with self.connection() as cr:
            cr.execute(
                "UPDATE crm_lead_stage_history SET user_id = %s WHERE lead_id = %s",
                [salesman, deal],
            )
            cr.commit()  # pylint: disable=invalid-commit
        attempts = []
        with self.connection() as other_cr, self.connection() as user_cr:
            self.env_of(user_cr)["crm.lead"].browse(deal).read(["stage_id"])  # the snapshot
            # the salesperson deleted meanwhile: removed from the stays, as
            # sales.funnel.queue._forget_deleted does
            other_cr.execute(
                """UPDATE crm_lead_stage_history SET user_id = NULL
                    WHERE user_id = ANY(%s) AND lead_id = %s""",
                [[salesman], deal],
            )
            other_cr.commit()  # pylint: disable=invalid-commit
            self.move_with_retry(deal, s3, user_cr, attempts)
        self.assertEqual(attempts, ["serialization failure"])
        self.assertEqual(self.jobs(), [])
        self.assertEqual(self.stays(deal), [(s2, "forward", True, False), (s3, "open", None, True)])
        with self.connection() as cr:
            cr.execute("SELECT user_id FROM crm_lead_stage_history WHERE lead_id = %s", [deal])
            self.assertEqual(cr.fetchall(), [(None,), (None,)])
        self.assertEqual(self.rows(deal), [(s1, True, False), (s2, True, False), (s3, False, True)])

    def test_a_recording_whose_deal_a_user_holds_lets_the_other_jobs_go_on(self):
        """A recording left to the job comes first, but once its deal is found
        held by a user (a long import, say), it waits in line: the pipeline
        update queued before it goes on meanwhile."""
        s1, s2, s3 = self.stage_ids
        deal, other = self.deal_ids[:2]
        self.queue_resequence()
        with self.connection() as cr:
            self.env_of(cr)["sales.funnel.job"]._queue_recording("facts", [deal])
            cr.commit()  # pylint: disable=invalid-commit
        moved = [(s3, True, False), (s1, True, False), (s2, False, True)]
        with self.connection() as user_cr, self.connection() as job_cr:
            user_cr.execute("SELECT 1 FROM crm_lead WHERE id = %s FOR NO KEY UPDATE", [deal])
            Job = self.env_of(job_cr)["sales.funnel.job"]
            self.assertTrue(Job._process_one_batch_committed())  # the recording: held
            self.assertEqual(self.rows(other), [(s1, True, False), (s2, False, True)])
            self.assertTrue(Job._process_one_batch_committed())  # the update goes on
            self.assertEqual(self.rows(other), moved)
            self.assertEqual(self.rows(deal), [(s1, True, False), (s2, False, True)])
            user_cr.rollback()
        self.run_jobs()
        self.assertEqual(self.jobs(), [])
        self.assertEqual(self.rows(deal), moved)

    def test_the_job_gives_way_while_users_run_requests(self):
        """A user's request running on another connection is seen, and the
        scheduled action then waits after each batch as long as the batch took."""
        self.queue_resequence()
        with self.connection() as job_cr, self.connection() as user_cr:
            Job = self.env_of(job_cr)["sales.funnel.job"]
            self.assertFalse(Job._users_busy())
            user = threading.Thread(target=user_cr.execute, args=("SELECT pg_sleep(1.5)",))
            user.start()
            time.sleep(0.5)
            job_cr.commit()  # pylint: disable=invalid-commit
            busy = Job._users_busy()
            user.join(5.0)
            job_cr.commit()  # pylint: disable=invalid-commit
            self.assertTrue(busy)
            self.assertFalse(Job._users_busy())
            pauses = []
            with (
                patch.object(sales_funnel_job, "BATCH_SIZE", 3),
                patch.object(type(Job), "_users_busy", lambda job: True),
                patch.object(sales_funnel_job.time, "sleep", pauses.append),
            ):
                Job._cron_process()
        # four deals in batches of three: a pause after each, as long as the batch
        self.assertEqual(len(pauses), 2)
        self.assertTrue(all(0 < pause < 10 for pause in pauses))
        self.assertEqual(self.rows(self.deal_ids[0])[0][0], self.stage_ids[2])
