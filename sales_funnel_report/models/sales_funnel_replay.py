from contextlib import nullcontext

from odoo import api, models
from odoo.tools import SQL

from . import bulk_load

# Order of the tracking rows written at the same time (in one transaction): only
# the state they leave counts, as in live recording, but the running values are
# carried in this order.
PRIORITY = {"start": -1, "start_lost": -1, "restore": 0, "stage": 1, "lost": 2, "reason": 3}
# The replay's working tables, dropped at its end (and at commit in any case).
TEMP_TABLES = "sales_funnel_tracking, sales_funnel_event, sales_funnel_stay, sales_funnel_rebuilt"
# A stay's columns, as the replay writes them.
STAY_COLUMNS = (
    "lead_id",
    "stage_id",
    "date_in",
    "date_out",
    "duration_days",
    "outcome",
    "lost_reason_id",
    "user_id",
    "team_id",
    "company_id",
)
# Never empty in a stay: joined by equality, which PostgreSQL can hash; the others
# may be, and match when both are.
STAY_KEYS = ("lead_id", "stage_id", "date_in", "outcome")


class SalesFunnelReplay(models.AbstractModel):
    """Step 3 of setting the funnel up (``sales.funnel.rebuild``): the deals'
    stays replayed from the chatter, one method per step of the replay, all
    set-based SQL over temporary tables."""

    _name = "sales.funnel.replay"
    _description = "Sales Funnel Replay of the Chatter"

    @api.model
    def _replay_stays(self, lead_ids):
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
        self.env.flush_all()
        self.env.cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL(TEMP_TABLES)))
        with bulk_load.more_work_mem(self.env.cr) if lead_ids is None else nullcontext():
            counts = self._read_tracking(lead_ids)
            counts.update(self._order_events(lead_ids))
            counts.update(self._replay_events())
            counts.update(self._write_stays(lead_ids))
            counts["stays_in_deleted_stages"] = counts["stays_replayed"] - counts["stays_rebuilt"]
            counts.update(self._reconcile_with_deals(lead_ids))
        self.env.cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL(TEMP_TABLES)))
        self.env["crm.lead.stage.history"].invalidate_model()
        return counts

    @api.model
    def _of_leads(self, lead_ids, column):
        return SQL("TRUE") if lead_ids is None else SQL("%s = ANY(%s)", column, list(lead_ids))

    @api.model
    def _read_tracking(self, lead_ids):
        """``sales_funnel_tracking``: the deals' tracking rows, each read once,
        without those merged deals brought along. Counts them, the duplicates
        and the rows of deleted deals."""
        cr = self.env.cr
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
        cr.execute(
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
                only=self._of_leads(lead_ids, SQL("m.res_id")),
            )
        )
        counts = {"tracking_rows": cr.rowcount}
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
                self._of_leads(lead_ids, SQL("m.res_id")),
            )
        )
        counts["tracking_of_deleted_deals"], all_rows = cr.fetchone()
        counts["duplicated_tracking_rows"] = (
            all_rows - counts["tracking_of_deleted_deals"] - counts["tracking_rows"]
        )
        return counts

    @api.model
    def _order_events(self, lead_ids):
        """``sales_funnel_event``: one event stream per deal, its creation then
        its tracking rows in the order they were written, times never going
        back, each named by its transaction (``tx``). Counts the events and the
        clamped times."""
        cr = self.env.cr
        cr.execute(
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
                only=self._of_leads(lead_ids, SQL("l.id")),
            )
        )
        counts = {"events": cr.rowcount}
        cr.execute("SELECT count(*) FROM sales_funnel_event WHERE clamped")
        counts["clamped_timestamps"] = cr.fetchone()[0]
        cr.execute("ANALYZE sales_funnel_event")
        return counts

    @api.model
    def _replay_events(self):
        """``sales_funnel_stay``: the stays the events make, each transaction
        counting once, with the state it leaves."""
        self.env.cr.execute(
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
            )
        )
        return {"stays_replayed": self.env.cr.rowcount}

    @api.model
    def _write_stays(self, lead_ids):
        """Make the deals' stays the replayed ones, but those in deleted stages:
        for a batch of deals, only where they differ (:meth:`_bring_stays_in_line`);
        in bulk for every deal (install, upgrades, the command line), which
        empties the table and loads it without its keys."""
        cr = self.env.cr
        if lead_ids is not None:
            return self._bring_stays_in_line(list(lead_ids))
        cr.execute("SELECT count(*) FROM crm_lead_stage_history")
        counts = {"stays_replaced": cr.fetchone()[0]}
        with bulk_load.loaded_in_bulk(cr, "crm_lead_stage_history"):
            cr.execute(
                SQL(
                    "INSERT INTO crm_lead_stage_history (%s) SELECT * FROM (%s) rebuilt",
                    SQL(", ").join(map(SQL.identifier, STAY_COLUMNS)),
                    self._rebuilt_stays_sql(),
                )
            )
            counts["stays_rebuilt"] = cr.rowcount
        cr.execute("ANALYZE crm_lead_stage_history")
        return counts

    @api.model
    def _bring_stays_in_line(self, lead_ids):
        """Delete the deals' stays the replay does not give, insert those it
        gives that are missing, and leave alone the stays already as replayed:
        rebuilding a history that live recording kept right writes nothing (no
        new row versions for users' transactions to collide with, nothing for
        a replica to replay). Equal stays count as often as they occur: each
        is matched by its rank among its equals."""
        cr = self.env.cr
        columns = SQL(", ").join(map(SQL.identifier, STAY_COLUMNS))

        def ranked(alias, order):
            return SQL(
                "row_number() OVER (PARTITION BY %s ORDER BY %s) AS n",
                SQL(", ").join(SQL.identifier(alias, c) for c in STAY_COLUMNS),
                order,
            )

        old = SQL(
            """(SELECT h.id, %s, %s FROM crm_lead_stage_history h
                 WHERE h.lead_id = ANY(%s)) old""",
            SQL(", ").join(SQL.identifier("h", c) for c in STAY_COLUMNS),
            # the oldest of equal stays are the ones kept
            ranked("h", SQL("h.id")),
            lead_ids,
        )
        same = SQL(" AND ").join(
            [
                SQL("old.n = new.n"),
                *(
                    SQL(
                        "%s %s %s",
                        SQL.identifier("old", c),
                        SQL("=") if c in STAY_KEYS else SQL("IS NOT DISTINCT FROM"),
                        SQL.identifier("new", c),
                    )
                    for c in STAY_COLUMNS
                ),
            ]
        )
        cr.execute(
            SQL(
                """CREATE TEMP TABLE sales_funnel_rebuilt ON COMMIT DROP AS
                   SELECT r.*, %s FROM (%s) r""",
                # equal replayed stays cannot be told apart: any order
                ranked("r", SQL("NULL")),
                self._rebuilt_stays_sql(),
            )
        )
        counts = {"stays_rebuilt": cr.rowcount}
        cr.execute(
            SQL(
                """DELETE FROM crm_lead_stage_history
                    WHERE id IN (SELECT old.id FROM %s
                                   LEFT JOIN sales_funnel_rebuilt new ON %s
                                  WHERE new.n IS NULL)""",
                old,
                same,
            )
        )
        counts["stays_replaced"] = cr.rowcount
        # what is left of the old stays is what matched: the rest is new
        cr.execute(
            SQL(
                """INSERT INTO crm_lead_stage_history (%s)
                   SELECT %s FROM sales_funnel_rebuilt new
                     LEFT JOIN %s ON %s
                    WHERE old.id IS NULL""",
                columns,
                SQL(", ").join(SQL.identifier("new", c) for c in STAY_COLUMNS),
                old,
                same,
            )
        )
        counts["stays_written"] = cr.rowcount
        return counts

    @api.model
    def _rebuilt_stays_sql(self):
        """The replayed stays, with the columns of ``STAY_COLUMNS``, in that order."""
        return SQL(
            """
            SELECT st.lead_id, st.cur_stage AS stage_id, st.t AS date_in, st.t_out AS date_out,
                   (EXTRACT(EPOCH FROM (st.t_out - st.t)) / 86400.0)::float8 AS duration_days,
                   CASE WHEN st.next_kind IS NULL THEN 'open'
                        WHEN st.next_kind = 'lost' THEN 'lost'
                        WHEN ns.id IS NULL OR os.id IS NULL
                          OR (ns.sequence, ns.id) > (os.sequence, os.id) THEN 'forward'
                        ELSE 'back' END AS outcome,
                   CASE WHEN st.next_kind = 'lost' THEN st.next_reason END AS lost_reason_id,
                   l.user_id, l.team_id, l.company_id
              FROM sales_funnel_stay st
              JOIN crm_lead l ON l.id = st.lead_id
              JOIN crm_stage os ON os.id = st.cur_stage
              LEFT JOIN crm_stage ns ON ns.id = st.next_stage
            """
        )

    @api.model
    def _reconcile_with_deals(self, lead_ids):
        """Make rebuilt stays agree with what the deals are now, for changes
        tracking did not see, by the rules of live recording, timed by the deal:
        a loss at ``date_closed``, a move at ``date_last_stage_update``. Returns
        how many stays each rule touched."""
        counts = self.env["crm.lead.stage.history"]._record(
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
