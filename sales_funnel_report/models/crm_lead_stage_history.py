import logging

from odoo import api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# Order of the tracking rows written at the same time (in one transaction): only
# the state they leave counts, as in live recording, but the running values are
# carried in this order.
PRIORITY = {"start": -1, "start_lost": -1, "restore": 0, "stage": 1, "lost": 2, "reason": 3}


class CrmLeadStageHistory(models.Model):
    """One stay of a deal in a stage.

    Rows are written only by :meth:`_record`, which reconciles the history of
    a set of deals with their current state in one statement; nobody edits
    them by hand (see the access rights).
    """

    _name = "crm.lead.stage.history"
    _description = "Stay of a deal in a stage"
    _order = "lead_id, date_in, id"
    _rec_name = "stage_id"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, ondelete="cascade", index=True, readonly=True
    )
    # A stage that is deleted takes the stays of the deals that visited it along.
    stage_id = fields.Many2one(
        "crm.stage", required=True, ondelete="cascade", index=True, readonly=True
    )
    date_in = fields.Datetime(string="Entered", required=True, readonly=True)
    date_out = fields.Datetime(string="Left", readonly=True)
    duration_days = fields.Float(
        string="Days",
        readonly=True,
        aggregator="avg",
        help="Exact time spent in the stage, in days; empty while the deal is still there.",
    )
    # Kept apart from duration_days, so that averages stay over finished stays.
    age_days = fields.Float(
        string="Running For",
        compute="_compute_age_days",
        help="Days the deal has been in the stage so far, while it is still there (the "
        "stay is running); empty for finished stays.",
    )
    outcome = fields.Selection(
        [
            ("open", "Still there"),
            ("forward", "Moved forward"),
            ("back", "Moved back"),
            ("lost", "Lost"),
        ],
        required=True,
        default="open",
        readonly=True,
    )
    lost_reason_id = fields.Many2one(
        "crm.lost.reason", string="Loss Reason", ondelete="set null", readonly=True
    )
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)

    _sql_constraints = [
        (
            "one_open_stay",
            "EXCLUDE (lead_id WITH =) WHERE (date_out IS NULL)",
            "A deal can only sit in one stage at a time.",
        ),
        (
            "closed_after_entered",
            "CHECK (date_out IS NULL OR date_out >= date_in)",
            "A stay cannot end before it began.",
        ),
    ]

    @api.depends("date_in", "date_out")
    def _compute_age_days(self):
        now = self.env.cr.now()
        for stay in self:
            running = stay.date_in and not stay.date_out
            stay.age_days = (
                max(0.0, (now - stay.date_in).total_seconds() / 86400.0) if running else 0.0
            )

    def flush_model(self, fnames=None):
        # Reading stays first records the deals waiting in this transaction.
        self.env["crm.lead"].sudo()._flush_funnel_queue()
        return super().flush_model(fnames)

    @api.model
    def _record(self, lead_ids, at=None):
        """Bring the stays of ``lead_ids`` in line with the deals' current state.

        Called for the deals a transaction changed, once before it commits (see
        ``crm.lead._record_funnel``). One statement whatever the number of deals,
        at the transaction's time (``cr.now()``, the clock of Odoo's tracking):

        - times never go back for a deal (a clock set back is clamped to its
          last recorded time);
        - an open stay whose deal was archived (lost) closes as ``lost``, with
          the deal's loss reason;
        - an open stay whose deal now sits in another stage closes as
          ``forward`` or ``back``, by stage order (sequence, id) at this moment;
          a deal whose stage was emptied keeps its stay until it gets a stage;
        - an active deal with a stage and no open stay gets a new open stay;
        - a later write of the loss reason on a lost deal lands on its last
          lost stay (the lost wizard archives first, then writes the reason).

        Archived deals whose stage changes are not recorded: they stay lost
        where they were lost until restored.

        ``lead_ids=None`` means every deal; ``at`` is an SQL time over the deal
        (alias ``l``) to use instead of the transaction's. Returns how many stays
        were closed as lost, closed by a move, opened, and given a later reason.
        """
        if lead_ids is not None and not lead_ids:
            return {}
        self.env.flush_all()
        now = self.env.cr.now()
        uid = self.env.uid
        self.env.cr.execute(
            SQL(
                """
            WITH lead AS (
                -- time never goes back for a deal: a clock set back is clamped
                -- an unset (NULL) active is archived, as Odoo's ('active', '=', True) reads it
                SELECT l.id, l.stage_id, COALESCE(l.active, FALSE) AS active, l.lost_reason_id,
                       l.user_id, l.team_id, l.company_id,
                       GREATEST(%(at)s, (
                           SELECT max(COALESCE(h.date_out, h.date_in))
                             FROM crm_lead_stage_history h
                            WHERE h.lead_id = l.id)) AS t
                  FROM crm_lead l
                 WHERE %(only)s
            ), closed AS (
                UPDATE crm_lead_stage_history h
                   SET date_out = lead.t,
                       duration_days = EXTRACT(EPOCH FROM (lead.t - h.date_in)) / 86400.0,
                       outcome = CASE
                           WHEN NOT lead.active THEN 'lost'
                           WHEN (ns.sequence, ns.id) > (os.sequence, os.id) THEN 'forward'
                           ELSE 'back' END,
                       lost_reason_id = CASE WHEN NOT lead.active THEN lead.lost_reason_id END,
                       write_uid = %(uid)s,
                       write_date = %(now)s
                  FROM lead
                  JOIN crm_stage os ON TRUE
                  LEFT JOIN crm_stage ns ON ns.id = lead.stage_id
                 WHERE h.lead_id = lead.id
                   AND h.date_out IS NULL
                   AND os.id = h.stage_id
                   -- a deal whose stage is emptied stays where it was, as the replay
                   -- of the chatter reads it (a stage can be emptied only by code)
                   AND (NOT lead.active OR lead.stage_id <> h.stage_id)
             RETURNING h.id, h.outcome
            ), reason AS (
                UPDATE crm_lead_stage_history h
                   SET lost_reason_id = lead.lost_reason_id,
                       write_uid = %(uid)s,
                       write_date = %(now)s
                  FROM lead
                 WHERE h.lead_id = lead.id
                   AND NOT lead.active
                   AND h.outcome = 'lost'
                   AND h.lost_reason_id IS DISTINCT FROM lead.lost_reason_id
                   -- a deal lost by this very statement gets its reason from "closed"
                   AND NOT EXISTS (SELECT 1 FROM crm_lead_stage_history still
                                    WHERE still.lead_id = lead.id AND still.date_out IS NULL)
                   AND h.date_out = (SELECT max(last.date_out)
                                       FROM crm_lead_stage_history last
                                      WHERE last.lead_id = lead.id AND last.outcome = 'lost')
             RETURNING h.id
            ), opened AS (
                INSERT INTO crm_lead_stage_history (
                    lead_id, stage_id, date_in, outcome, user_id, team_id, company_id,
                    create_uid, create_date, write_uid, write_date)
                SELECT lead.id, lead.stage_id, lead.t, 'open', lead.user_id, lead.team_id,
                       lead.company_id, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM lead
                 WHERE lead.active
                   AND lead.stage_id IS NOT NULL
                   AND NOT EXISTS (
                        SELECT 1
                          FROM crm_lead_stage_history h
                         WHERE h.lead_id = lead.id
                           AND h.date_out IS NULL
                           AND NOT EXISTS (SELECT 1 FROM closed WHERE closed.id = h.id))
             RETURNING id
            )
            SELECT (SELECT count(*) FROM closed WHERE outcome = 'lost'),
                   (SELECT count(*) FROM closed WHERE outcome <> 'lost'),
                   (SELECT count(*) FROM opened),
                   (SELECT count(*) FROM reason)
            """,
                only=SQL("TRUE") if lead_ids is None else SQL("l.id = ANY(%s)", list(lead_ids)),
                at=at if at is not None else SQL("%s::timestamp", now),
                now=now,
                uid=uid,
            )
        )
        lost, moved, opened, reasons = self.env.cr.fetchone()
        self.invalidate_model()
        return {"lost": lost, "moved": moved, "opened": opened, "reasons": reasons}

    @api.model
    def _rebuild_from_tracking(self):
        """Replace the whole stage history by one rebuilt from the chatter, and
        every funnel row, in one transaction: for install, upgrades and the
        command line (it rewrites the funnel table in bulk). Users rebuild with
        *Rebuild Stage History*, in background batches (``sales.funnel.job``).

        Funnel steps are synced with the stages first, and orders get their
        first confirmation date when they have none, so that the funnel rows,
        rewritten at the end, are whole. Returns the counts it logs.
        """
        self.env["sales.funnel.step"]._sync_with_stages()
        self.env["sale.order"]._fill_funnel_confirmed_at()
        counts = self._replay_tracking(None)
        self.env["sales.funnel.fact"]._refresh_all_bulk()
        # everything is rebuilt: what was queued before (e.g. by the stages of the
        # data just installed) has nothing left to do
        self.env.cr.execute("DELETE FROM sales_funnel_job")
        self.env["sales.funnel.job"].invalidate_model()
        _logger.info("Stage history rebuilt from tracking: %s", counts)
        return counts

    @api.model
    def _rebuild_from_tracking_for(self, lead_ids):
        """Rebuild the stays and funnel rows of ``lead_ids`` (a background batch)."""
        counts = self._replay_tracking(lead_ids)
        self.env["sales.funnel.fact"]._refresh(lead_ids)
        return counts

    @api.model
    def _replay_tracking(self, lead_ids):
        """Replace the stays of ``lead_ids`` (every deal when ``None``) by the
        ones replayed from the chatter.

        Odoo tracks ``stage_id``, ``active`` and ``lost_reason_id`` of deals in
        ``mail_tracking_value``; replaying those rows gives the stays live
        recording would have made, to the microsecond:

        - tracking rows written at the same time come from one transaction and
          count as one change, to the state they leave, as live recording
          records each transaction's outcome; rows of two transactions stay two
          changes even when a clock set back gives them one time (it is clamped
          to the previous one, and the stay between them lasts no time, as live);
        - the first stay starts at the deal's ``create_date``, in the stage the
          first stage-tracking row moved it from (its current stage when it
          never moved);
        - a deal created lost (archived, e.g. imported so) has no stay until it
          is restored, as live: its first ``active`` change is a restore or,
          untracked, it is archived and was not closed after its creation;
        - each stage-tracking row of an active deal closes the open stay
          (``forward``/``back`` by today's stage order) and opens the next;
        - ``active`` 1→0 closes the open stay as ``lost``, with the loss reason
          the deal had when it was restored or, if never, has now; 0→1 opens a
          new stay in the stage the deal is in;
        - the chatter Odoo moves onto a deal from the deals merged into it is
          not the deal's history: a merged deal keeps its own stays, live and
          rebuilt (``mail_message.funnel_merged_from_id`` marks those messages);
        - what tracking does not say (imports, untracked writes) is taken from
          the deal as it is: a lost deal's open stay closes at ``date_closed``,
          an active deal in another stage than replayed moves there at
          ``date_last_stage_update``, an active deal without a stay gets one.

        Bad rows never stop it: tracking of deleted deals is ignored, duplicated
        rows are read once, timestamps going back in time are clamped to the
        previous one, and stays in deleted stages are dropped, as live recording
        drops them. Salesperson and team of rebuilt stays are the deal's current
        ones. Set-based SQL; returns what it counted.
        """
        if lead_ids is not None and not lead_ids:
            return {}
        cr = self.env.cr
        self.env.flush_all()
        of_leads = (
            (lambda column: SQL("TRUE"))
            if lead_ids is None
            else (lambda column: SQL("%s = ANY(%s)", column, list(lead_ids)))
        )
        field_ids = {
            field.name: field.id
            for field in self.env["ir.model.fields"]
            .sudo()
            .search(
                [
                    ("model", "=", "crm.lead"),
                    ("name", "in", ("stage_id", "active", "lost_reason_id")),
                ]
            )
        }
        counts = {}

        def run(name, query):
            cr.execute(query)
            counts[name] = cr.rowcount

        cr.execute(
            "DROP TABLE IF EXISTS sales_funnel_tracking, sales_funnel_event, sales_funnel_stay"
        )
        run(
            "tracking_rows",
            SQL(
                """
            CREATE TEMP TABLE sales_funnel_tracking ON COMMIT DROP AS
            SELECT DISTINCT ON (m.res_id, v.field_id, v.create_date,
                                v.old_value_integer, v.new_value_integer)
                   m.res_id AS lead_id, v.id AS tid, v.create_date AS t,
                   CASE v.field_id
                        WHEN %(stage)s THEN 'stage'
                        WHEN %(reason)s THEN 'reason'
                        WHEN %(active)s THEN
                             CASE WHEN v.new_value_integer = 1 THEN 'restore' ELSE 'lost' END
                   END AS kind,
                   NULLIF(v.old_value_integer, 0) AS old_value,
                   NULLIF(v.new_value_integer, 0) AS new_value
              FROM mail_tracking_value v
              JOIN mail_message m ON m.id = v.mail_message_id
              JOIN crm_lead l ON l.id = m.res_id
             WHERE m.model = 'crm.lead'
               AND v.field_id IN (%(stage)s, %(reason)s, %(active)s)
               AND m.funnel_merged_from_id IS NULL
               AND %(only)s
             ORDER BY m.res_id, v.field_id, v.create_date,
                      v.old_value_integer, v.new_value_integer, v.id
            """,
                stage=field_ids["stage_id"],
                reason=field_ids["lost_reason_id"],
                active=field_ids["active"],
                only=of_leads(SQL("m.res_id")),
            ),
        )
        cr.execute(
            SQL(
                """
            SELECT count(*) FILTER (WHERE l.id IS NULL), count(*)
              FROM mail_tracking_value v
              JOIN mail_message m ON m.id = v.mail_message_id
              LEFT JOIN crm_lead l ON l.id = m.res_id
             WHERE m.model = 'crm.lead' AND v.field_id IN %s
               AND m.funnel_merged_from_id IS NULL AND %s
            """,
                tuple(field_ids.values()),
                of_leads(SQL("m.res_id")),
            )
        )
        counts["tracking_of_deleted_deals"], all_rows = cr.fetchone()
        counts["duplicated_tracking_rows"] = (
            all_rows - counts["tracking_of_deleted_deals"] - counts["tracking_rows"]
        )
        # One event stream per deal: its creation, then its tracking rows in the
        # order they were written, times never going back.
        run(
            "events",
            SQL(
                """
            CREATE TEMP TABLE sales_funnel_event ON COMMIT DROP AS
            WITH first_move AS (
                SELECT DISTINCT ON (lead_id) lead_id, old_value
                  FROM sales_funnel_tracking
                 WHERE kind = 'stage'
                 ORDER BY lead_id, tid
            ), first_active AS (
                SELECT DISTINCT ON (lead_id) lead_id, kind
                  FROM sales_funnel_tracking
                 WHERE kind IN ('lost', 'restore')
                 ORDER BY lead_id, tid
            ), raw AS (
                SELECT l.id AS lead_id, 0 AS tid, l.create_date AS t,
                       CASE WHEN fa.kind = 'restore'
                              OR (fa.lead_id IS NULL AND NOT COALESCE(l.active, FALSE)
                                  AND (l.date_closed IS NULL OR l.date_closed <= l.create_date))
                            THEN 'start_lost' ELSE 'start' END AS kind,
                       CASE WHEN fm.lead_id IS NULL THEN l.stage_id ELSE fm.old_value END
                           AS new_value
                  FROM crm_lead l
                  LEFT JOIN first_move fm ON fm.lead_id = l.id
                  LEFT JOIN first_active fa ON fa.lead_id = l.id
                 WHERE %(only)s
                 UNION ALL
                SELECT lead_id, tid, t, kind, new_value FROM sales_funnel_tracking
            ), clamped AS (
                SELECT lead_id, tid, kind, new_value, t AS tracked_t,
                       max(t) OVER w AS t,
                       -- a transaction's rows are written together, at one time
                       CASE WHEN t IS NOT DISTINCT FROM lag(t) OVER w THEN NULL ELSE tid END
                           AS tx_start
                  FROM raw
                WINDOW w AS (PARTITION BY lead_id ORDER BY tid)
            )
            -- tx: the transaction, named by its first row; the same window as above,
            -- so no second sort
            SELECT lead_id, tid, kind, new_value, t, t <> tracked_t AS clamped,
                   max(tx_start) OVER (PARTITION BY lead_id ORDER BY tid) AS tx,
                   CASE kind %(priority)s END AS prio
              FROM clamped
            """,
                priority=SQL(" ").join(
                    SQL("WHEN %s THEN %s", kind, prio) for kind, prio in PRIORITY.items()
                ),
                only=of_leads(SQL("l.id")),
            ),
        )
        cr.execute("SELECT count(*) FROM sales_funnel_event WHERE clamped")
        counts["clamped_timestamps"] = cr.fetchone()[0]
        cr.execute("ANALYZE sales_funnel_event")
        run(
            "stays_replayed",
            SQL(
                """
            CREATE TEMP TABLE sales_funnel_stay ON COMMIT DROP AS
            WITH state AS (
                SELECT e.*,
                       count(CASE WHEN kind IN ('start', 'start_lost', 'stage') THEN new_value END)
                           OVER w AS stage_grp,
                       count(CASE WHEN kind IN ('start', 'start_lost', 'lost', 'restore')
                                  THEN 1 END)
                           OVER w AS active_grp,
                       count(CASE WHEN kind = 'reason' THEN 1 END) OVER w AS reason_grp,
                       row_number() OVER (PARTITION BY lead_id, tx ORDER BY prio DESC, tid DESC)
                           AS last_of_tx
                  FROM sales_funnel_event e
                WINDOW w AS (PARTITION BY lead_id ORDER BY t, tx, prio, tid)
            ), carried AS (
                SELECT s.*,
                       max(CASE WHEN kind IN ('start', 'start_lost', 'stage') THEN new_value END)
                           OVER (PARTITION BY lead_id, stage_grp) AS cur_stage,
                       bool_or(CASE WHEN kind IN ('start', 'restore') THEN TRUE
                                    WHEN kind IN ('lost', 'start_lost') THEN FALSE END)
                           OVER (PARTITION BY lead_id, active_grp) AS active_after,
                       max(CASE WHEN kind = 'reason' THEN new_value END)
                           OVER (PARTITION BY lead_id, reason_grp) AS reason_now
                  FROM state s
            ), snapshot AS (
                -- the deal as one transaction (one tracking time) left it
                SELECT c.lead_id, c.t, c.tx, c.cur_stage, c.active_after, c.reason_now,
                       lag(c.active_after) OVER w AS active_before,
                       lag(c.cur_stage) OVER w AS prev_stage
                  FROM carried c
                 WHERE c.last_of_tx = 1
                WINDOW w AS (PARTITION BY lead_id ORDER BY t, tx)
            ), epoch AS (
                SELECT sn.*,
                       count(CASE WHEN active_after AND active_before IS FALSE THEN 1 END)
                           OVER (PARTITION BY lead_id ORDER BY t, tx) AS epoch
                  FROM snapshot sn
            ), stepped AS (
                SELECT ep.*,
                       last_value(reason_now) OVER (
                           PARTITION BY lead_id, epoch ORDER BY t, tx
                           ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                       ) AS epoch_reason
                  FROM epoch ep
            ), boundary AS (
                SELECT lead_id, t, tx, cur_stage, epoch_reason,
                       CASE WHEN active_after THEN 'open' ELSE 'lost' END AS kind
                  FROM stepped
                 WHERE (active_after AND cur_stage IS NOT NULL
                        AND (active_before IS NOT TRUE OR cur_stage IS DISTINCT FROM prev_stage))
                    OR (NOT active_after AND active_before)
            ), stay AS (
                SELECT b.*,
                       lead(t) OVER w AS t_out,
                       lead(kind) OVER w AS next_kind,
                       lead(cur_stage) OVER w AS next_stage,
                       lead(epoch_reason) OVER w AS next_reason
                  FROM boundary b
                WINDOW w AS (PARTITION BY lead_id ORDER BY t, tx)
            )
            SELECT lead_id, cur_stage, t, t_out, next_kind, next_stage, next_reason
              FROM stay
             WHERE kind = 'open'
            """
            ),
        )
        cr.execute(SQL("DELETE FROM crm_lead_stage_history WHERE %s", of_leads(SQL("lead_id"))))
        counts["stays_replaced"] = cr.rowcount
        run(
            "stays_rebuilt",
            SQL(
                """
            INSERT INTO crm_lead_stage_history (
                lead_id, stage_id, date_in, date_out, duration_days, outcome, lost_reason_id,
                user_id, team_id, company_id, create_uid, create_date, write_uid, write_date)
            SELECT st.lead_id, st.cur_stage, st.t, st.t_out,
                   EXTRACT(EPOCH FROM (st.t_out - st.t)) / 86400.0,
                   CASE WHEN st.next_kind IS NULL THEN 'open'
                        WHEN st.next_kind = 'lost' THEN 'lost'
                        WHEN ns.id IS NULL OR os.id IS NULL
                          OR (ns.sequence, ns.id) > (os.sequence, os.id) THEN 'forward'
                        ELSE 'back' END,
                   CASE WHEN st.next_kind = 'lost' THEN st.next_reason END,
                   l.user_id, l.team_id, l.company_id,
                   %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM sales_funnel_stay st
              JOIN crm_lead l ON l.id = st.lead_id
              JOIN crm_stage os ON os.id = st.cur_stage
              LEFT JOIN crm_stage ns ON ns.id = st.next_stage
            """,
                uid=self.env.uid,
                now=self.env.cr.now(),
            ),
        )
        counts["stays_in_deleted_stages"] = counts["stays_replayed"] - counts["stays_rebuilt"]
        counts.update(self._reconcile_with_deals(lead_ids))
        cr.execute(
            "DROP TABLE IF EXISTS sales_funnel_tracking, sales_funnel_event, sales_funnel_stay"
        )
        self.invalidate_model()
        return counts

    @api.model
    def _reconcile_with_deals(self, lead_ids):
        """Make rebuilt stays agree with what the deals are now, for changes
        tracking did not see, by the rules of live recording, timed by the deal:
        a loss at ``date_closed``, a move at ``date_last_stage_update``. Returns
        how many stays each rule touched."""
        counts = self._record(
            lead_ids,
            at=SQL(
                """CASE WHEN NOT COALESCE(l.active, FALSE)
                    THEN COALESCE(l.date_closed, l.write_date)
                    ELSE COALESCE(l.date_last_stage_update, l.create_date) END"""
            ),
        )
        return {
            "untracked_losses": counts["lost"],
            "untracked_moves": counts["moved"],
            "untracked_stays_opened": counts["opened"],
            "untracked_loss_reasons": counts["reasons"],
        }
