import logging
import time

from odoo import api, fields, models
from odoo.tools import SQL

from .lost_race import LOST_RACE, execute_racing

_logger = logging.getLogger(__name__)

# Deals per batch at most: one short transaction each, so that a user's save of a
# deal of the batch waits at most that long (the batch locks its deals).
BATCH_SIZE = 1000
# Seconds a batch should hold its deals: on a busy server the batch size shrinks so
# that a save waiting for a batch still waits no longer (1,000 deals take about 0.5 s
# for the funnel rows and 0.8 s for a history rebuild on an idle server of 2 cores,
# several seconds on a busy one); never below MIN_BATCH_SIZE deals.
BATCH_SECONDS = 0.5
MIN_BATCH_SIZE = 50
# Seconds of batches per call of the scheduled action. Odoo calls it up to ten times
# in a row while work remains, and a cron worker pings its watchdog only before its
# idle sleep (up to 69 s): ten calls and that sleep must fit in limit_time_real (120 s).
CALL_BUDGET = 3.0
# A batch that lost a race with users' writes is tried again this many times.
RETRIES = 5
# A batch holds this transaction-level advisory lock: one runner at a time. A cron
# worker keeps its scheduled action locked for the whole call, but *Run Manually*
# runs it in the user's request, whose first batch commit lets that lock go: a cron
# worker may then start beside it.
RUNNER_LOCK = 0x5F4A0B1D
# While users' requests are running, the job waits this share of a batch's time
# after it: it then takes at most half of a processor, and users keep the rest.
GIVE_WAY = 1.0


class SalesFunnelJob(models.Model):
    """Work on many deals, done in the background by a scheduled action.

    Changing the pipeline (a stage's order, team or *Is Won Stage?*, a new or
    deleted stage, a team's *Funnel of Own Stages Only*) changes the funnel
    rows of many deals, and *Rebuild Stage History* replays the chatter of all
    of them. Neither runs in the user's request: the change queues one job per
    transaction (``sales.funnel.queue``), and the scheduled action *Sales Funnel:
    Update* works through its deals in id order, up to ``BATCH_SIZE`` deals per
    transaction, fewer on a busy server (``BATCH_SECONDS``).

    A batch locks its deals (``FOR NO KEY UPDATE SKIP LOCKED``), so a user
    saving one of them waits for one batch at most, and the batch never waits
    for users: a deal locked by a user's open transaction is tried again at the
    end. A user's transaction that started before a batch and writes one of its
    deals afterwards cannot write that deal's rows when the batch changed them
    (they fail to serialize): the batch never overwrites a deal's newer rows, and
    a user's write never keeps stale ones. The user's transaction does not fail
    for it: the recording statement that lost the race is undone alone, and
    queued here as a job over those deals only (``sales.funnel.queue``), done
    before the others, from the data the user committed (stays only while a
    rebuild of every deal's history runs: ``sales.funnel.queue._process``).
    Batches write only rows that differ, so a deal already right is not changed.
    The job remembers the last deal it reached, so a killed run resumes there.
    While users' requests are running, it gives way after each batch
    (``GIVE_WAY``).
    """

    _name = "sales.funnel.job"
    _description = "Sales Funnel Background Job"
    _order = "id"

    kind = fields.Selection(
        [("facts", "Update the funnel"), ("history", "Rebuild the stage history")],
        required=True,
        readonly=True,
    )
    # Which deals: all of them, or those of these teams or in, through or with
    # funnel rows on these stages.
    all_deals = fields.Boolean(readonly=True)
    team_ids = fields.Json(readonly=True)
    stage_ids = fields.Json(readonly=True)
    # ...or these deals only: a recording a user's transaction left to the job
    lead_ids = fields.Json(string="Deals", readonly=True)
    last_lead_id = fields.Integer(readonly=True, default=0)
    # Deals that were locked by users when their batch came: done at the end.
    retry_ids = fields.Json(readonly=True)
    total = fields.Integer(readonly=True, help="Deals concerned, counted by the first batch.")
    done = fields.Integer(readonly=True)
    # deals of the next batch, from the time the last one took (BATCH_SECONDS)
    batch_size = fields.Integer(readonly=True)
    user_id = fields.Many2one("res.users", string="Requested By", readonly=True)

    # --- queueing ----------------------------------------------------------------

    @api.model
    def _queue_rebuild(self):
        """Queue a rebuild of every deal's stage history from the chatter."""
        return self._create_job("history", {"all_deals": True})

    @api.model
    def _queue_recording(self, kind, lead_ids):
        """Queue the recording of ``lead_ids`` by a job over those deals only:
        what a user's transaction left out after losing a race with a batch, or
        the deals a deleted stage took stays from. Their funnel rows
        (``facts``), or their stays replayed from the chatter, then their rows
        (``history``)."""
        return self._create_job(kind, {"lead_ids": lead_ids})

    @api.model
    def _create_job(self, kind, scope):
        lead_ids = scope.get("lead_ids")
        job = self.sudo().create(
            {
                "kind": kind,
                "all_deals": scope.get("all_deals", False),
                "team_ids": sorted(scope.get("team_ids") or ()),
                "stage_ids": sorted(scope.get("stage_ids") or ()),
                "lead_ids": sorted(lead_ids) if lead_ids else None,
                # told when a rebuild ends (nobody for a recording left to the job)
                "user_id": False if lead_ids else self.env.uid,
            }
        )
        # A user's save queues jobs too: a scheduled action deleted by hand must
        # not fail it. The job then waits for the upgrade that brings it back.
        cron = self.env.ref("sales_funnel_report.ir_cron_sales_funnel_jobs", False)
        if cron:
            cron.sudo()._trigger()
        else:
            _logger.warning(
                "The scheduled action Sales Funnel: Update is missing: funnel jobs wait "
                "until the module is upgraded"
            )
        return job

    # --- progress ----------------------------------------------------------------

    @api.model
    def _progress(self):
        """What is still being updated, for the funnel's notice: per kind of job,
        the share done in percent (``None`` before the first batch counted it).
        Recordings left to the job are a few deals, done first, in seconds: not
        an update of the funnel to tell readers about."""
        jobs = self.sudo().search([]).filtered(lambda job: not job.lead_ids)
        progress = {}
        for kind in ("facts", "history"):
            of_kind = jobs.filtered(lambda job, kind=kind: job.kind == kind)
            if of_kind:
                total = sum(of_kind.mapped("total"))
                counted = all(job.total or job.done for job in of_kind)
                progress[kind] = (
                    min(99, int(100 * sum(of_kind.mapped("done")) / total))
                    if counted and total
                    else None
                )
        return progress

    # --- processing --------------------------------------------------------------

    @api.model
    def _rebuilding_history(self):
        """Whether a rebuild of every deal's stage history is queued or under
        way, as this transaction sees the jobs."""
        self.env.cr.execute(
            SQL(
                """SELECT EXISTS (SELECT 1 FROM sales_funnel_job
                                   WHERE kind = 'history' AND lead_ids IS NULL)"""
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _cron_process(self):
        """Scheduled action: batches, each committed, for ``CALL_BUDGET`` seconds;
        then it reports its progress, and Odoo calls it again at once while
        work remains."""
        started = time.monotonic()
        batches = 0
        while True:
            batch_started = time.monotonic()
            more = self._process_one_batch_committed()
            if more is None:
                # another runner is at work: it calls the action again if need be
                return
            if not more:
                break
            batches += 1
            now = time.monotonic()
            pause = (now - batch_started) * GIVE_WAY if self._users_busy() else 0.0
            if now + pause - started >= CALL_BUDGET:
                break
            time.sleep(pause)
        remaining = self.sudo().search_count([])
        self.env["ir.cron"]._notify_progress(done=batches, remaining=remaining)
        if remaining:
            # Odoo runs it again at once only within this pass; the trigger wakes a
            # cron worker for the next pass instead of its idle minute
            self.env.ref("sales_funnel_report.ir_cron_sales_funnel_jobs").sudo()._trigger()

    @api.model
    def _users_busy(self):
        """Whether another session of this database is running a query now
        (a user's request, another scheduled action), by PostgreSQL's own view."""
        self.env.cr.execute(
            """SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                               WHERE datname = current_database()
                                 AND pid <> pg_backend_pid()
                                 AND backend_type = 'client backend'
                                 AND state = 'active')"""
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _process_one_batch_committed(self):
        """One batch in its own transaction, tried again when it lost a race
        with a user's transaction. False when no job is left, None when another
        runner is working a batch."""
        cr = self.env.cr
        for attempt in range(RETRIES):
            try:
                more = self._process_one_batch()
                cr.commit()  # pylint: disable=invalid-commit
                return more
            except LOST_RACE:
                cr.rollback()
                self.env.invalidate_all()
                _logger.info("Funnel batch lost a race with users (try %s); again", attempt + 1)
        return True

    @api.model
    def _process_one_batch(self):
        """Work one batch of the next job; False when there is no job, None when
        another runner is working a batch (see ``RUNNER_LOCK``). Recordings left
        to the job come first: they are a few deals, whose funnel rows wait for
        them. One whose deals a user held when it came waits in line with the
        others: a long transaction (an import) must not hold up a rebuild."""
        self.flush_model()
        self.env.cr.execute(SQL("SELECT pg_try_advisory_xact_lock(%s)", RUNNER_LOCK))
        if not self.env.cr.fetchone()[0]:
            return None
        self.env.cr.execute(
            """SELECT id FROM sales_funnel_job
                ORDER BY lead_ids IS NULL OR retry_ids IS NOT NULL, id LIMIT 1"""
        )
        row = self.env.cr.fetchone()
        if not row:
            return False
        self.sudo().browse(row[0])._work_batch()
        return True

    def _work_batch(self):
        self.ensure_one()
        if self._superseded():
            # its requester hears when the later job ends, not of a partial rebuild
            self._finish(notify=False)
            return
        if not self.total and not self.done:
            if self.kind == "history" and self.all_deals:
                # what the rebuilt funnel rows rest on, as on install
                self.env["sales.funnel.rebuild"]._prepare()
            self.total = self._count_deals()
        started = time.monotonic()
        size = self._batch_size()
        candidates = self._next_deals(size)
        retrying = not candidates
        waiting = []
        if retrying:
            # A batch of them at a time, like the others: a long transaction (an
            # import) may have held thousands, and one batch of all of them would
            # hold them past the worker's time limit, again and again.
            held = list(self.retry_ids or [])
            candidates, waiting = held[:size], held[size:]
        if not candidates:
            self._finish()
            return
        locked, skipped = self._lock_deals(candidates)
        if locked:
            if self.kind == "history":
                self.env["sales.funnel.rebuild"]._run(locked)
            else:
                self.env["sales.funnel.fact"]._refresh(locked)
                if not self.lead_ids:
                    # a pipeline change: older saves of these deals must conflict
                    self.env["sales.funnel.fact"]._claim_rows(locked)
        elif retrying and not waiting:
            # only deals users still hold are left: give them a moment
            time.sleep(0.5)
        values = {"done": self.done + len(locked)}
        if locked:
            values["batch_size"] = self._next_batch_size(len(locked), time.monotonic() - started)
        if retrying:
            # the deals still held go last
            values["retry_ids"] = waiting + skipped
        else:
            values["last_lead_id"] = max(candidates)
            values["retry_ids"] = sorted(set(self.retry_ids or []) | set(skipped))
        self.write(values)
        if not self.retry_ids and (retrying or len(candidates) < size):
            self._finish()

    def _superseded(self):
        """A later job over every deal redoes this one's work: one of the same
        kind, or a history rebuild, whose batches rewrite the funnel rows too."""
        kinds = ["history"] if self.kind == "history" else ["facts", "history"]
        return bool(
            self.search_count(
                [
                    ("id", ">", self.id),
                    ("kind", "in", kinds),
                    ("all_deals", "=", True),
                ]
            )
        )

    def _finish(self, notify=True):
        if notify and self.kind == "history" and self.user_id:
            self._notify_rebuilt()
        self.unlink()

    def _notify_rebuilt(self):
        self.user_id._bus_send(
            "simple_notification",
            {
                "type": "success",
                "title": self.env._("Stage history rebuilt"),
                "message": self.env._(
                    "The stage history of %(count)s deals was rebuilt from their chatter, "
                    "and the funnel is up to date.",
                    count=self.done,
                ),
                "sticky": True,
            },
        )

    def _scope_sql(self):
        if self.all_deals:
            return SQL("TRUE")
        if self.lead_ids:
            return SQL("l.id = ANY(%s)", list(self.lead_ids))
        stages = list(self.stage_ids or [])
        return SQL(
            """(l.team_id = ANY(%(teams)s) OR l.stage_id = ANY(%(stages)s)
                OR EXISTS (SELECT 1 FROM sales_funnel_fact f
                            WHERE f.lead_id = l.id AND f.stage_id = ANY(%(stages)s))
                OR EXISTS (SELECT 1 FROM crm_lead_stage_history h
                            WHERE h.lead_id = l.id AND h.stage_id = ANY(%(stages)s)))""",
            teams=list(self.team_ids or []),
            stages=stages,
        )

    def _count_deals(self):
        self.env.cr.execute(SQL("SELECT count(*) FROM crm_lead l WHERE %s", self._scope_sql()))
        return self.env.cr.fetchone()[0]

    def _batch_size(self):
        return min(BATCH_SIZE, self.batch_size or BATCH_SIZE)

    @api.model
    def _next_batch_size(self, deals, seconds):
        """Deals for the next batch, so that it takes about ``BATCH_SECONDS``, at
        the pace of the last one (``deals`` in ``seconds``)."""
        wanted = int(deals * BATCH_SECONDS / max(seconds, 0.001))
        return min(BATCH_SIZE, max(MIN_BATCH_SIZE, wanted))

    def _next_deals(self, size):
        self.env.cr.execute(
            SQL(
                "SELECT l.id FROM crm_lead l WHERE l.id > %s AND %s ORDER BY l.id LIMIT %s",
                self.last_lead_id,
                self._scope_sql(),
                size,
            )
        )
        return [lead_id for (lead_id,) in self.env.cr.fetchall()]

    def _lock_deals(self, lead_ids):
        """Lock the deals no user holds, and name those a user holds: they wait
        for the end of the job. Deleted deals drop out."""
        cr = self.env.cr
        execute_racing(
            cr,
            SQL(
                """SELECT id FROM crm_lead WHERE id = ANY(%s) ORDER BY id
               FOR NO KEY UPDATE SKIP LOCKED""",
                lead_ids,
            ),
        )
        locked = [lead_id for (lead_id,) in cr.fetchall()]
        if len(locked) == len(lead_ids):
            return locked, []
        cr.execute(SQL("SELECT id FROM crm_lead WHERE id = ANY(%s)", lead_ids))
        skipped = sorted({lead_id for (lead_id,) in cr.fetchall()} - set(locked))
        return locked, skipped
