import logging
import time

from psycopg2 import errors

from odoo import api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

REMINDERS_PARAM = "sales_funnel_report.stuck_reminders"
# Deals per transaction of the reminders (an id range of crm_lead).
BATCH_SIZE = 20000
RETRIES = 3
# Seconds of reminder batches per call of the scheduled action: when work remains,
# Odoo calls it again at once (up to 10 times), well within limit_time_real.
CALL_BUDGET = 40.0


class SalesFunnelStuckReminder(models.Model):
    """A reminder scheduled for a stuck deal, one per stay at most.

    A stay is known by its deal and the time it began, so that a rebuild of
    the stage history from the chatter (which replaces the stays, to the
    microsecond) does not remind anybody twice. Written only by the daily
    scheduled action *Sales Funnel: Stuck Deals*.
    """

    _name = "sales.funnel.stuck.reminder"
    _description = "Stuck Deal Reminder"
    _order = "id desc"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, ondelete="cascade", index=True, readonly=True
    )
    stage_id = fields.Many2one("crm.stage", required=True, ondelete="cascade", readonly=True)
    stay_date_in = fields.Datetime(string="Stay Entered", required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    # indexed: deleting a done activity looks its reminder up
    activity_id = fields.Many2one(
        "mail.activity", ondelete="set null", readonly=True, index="btree_not_null"
    )

    _sql_constraints = [
        (
            "one_per_stay",
            "UNIQUE (lead_id, stay_date_in)",
            "A stay of a deal gets one stuck reminder at most.",
        ),
    ]

    # --- the daily scheduled action ----------------------------------------------

    @api.model
    def _cron_stuck_deals(self):
        """Daily: learn the typical stage times, then, when the setting is on,
        remind the salespeople of their newly stuck deals. The learning commits
        on its own, the reminders in batches of deals, one short transaction
        each, for ``CALL_BUDGET`` seconds; then the action reports its progress
        and Odoo calls it again at once while deals remain. A call that goes on
        from the previous one does not learn again, and the deals reminded
        before are skipped (one reminder per stay)."""
        started = time.monotonic()
        if not self._continues_previous_call():
            self.env["sales.funnel.typical.time"]._learn()
            self.env.cr.commit()  # pylint: disable=invalid-commit
        batches = created = 0
        more = False
        if self._reminders_enabled():
            last = 0
            while (upto := self._next_batch_end(last)) is not None:
                created += self._remind_batch_committed(last, upto)
                batches += 1
                last = upto
                if time.monotonic() - started >= CALL_BUDGET:
                    more = self._next_batch_end(last) is not None
                    break
        _logger.info(
            "Stuck deals: %s reminders in %s batches of deals, %.1f s%s",
            created,
            batches,
            time.monotonic() - started,
            ", more to come" if more else "",
        )
        self.env["ir.cron"]._notify_progress(done=batches + 1, remaining=int(more))

    @api.model
    def _continues_previous_call(self):
        """Whether this call of the scheduled action goes on from the previous one,
        which left deals to remind (see ``_cron_stuck_deals``)."""
        progress_id = self.env.context.get("ir_cron_progress_id")
        if not progress_id:
            return False
        Progress = self.env["ir.cron.progress"].sudo()
        current = Progress.browse(progress_id)
        previous = Progress.search(
            [("cron_id", "=", current.cron_id.id), ("id", "<", progress_id)],
            order="id desc",
            limit=1,
        )
        return bool(previous.remaining)

    @api.model
    def _reminders_enabled(self):
        return bool(self.env["ir.config_parameter"].sudo().get_param(REMINDERS_PARAM))

    @api.model
    def _next_batch_end(self, last):
        self.env.cr.execute(
            SQL(
                """SELECT max(id)
                     FROM (SELECT id FROM crm_lead WHERE id > %s ORDER BY id LIMIT %s) b""",
                last,
                BATCH_SIZE,
            )
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _remind_batch_committed(self, after, upto):
        cr = self.env.cr
        for attempt in range(RETRIES):
            try:
                # on the stays too: their index on open stays is by deal
                created = self._remind(
                    SQL(
                        "l.id > %s AND l.id <= %s AND h.lead_id > %s AND h.lead_id <= %s",
                        after,
                        upto,
                        after,
                        upto,
                    )
                )
                cr.commit()  # pylint: disable=invalid-commit
                return created
            except (
                errors.SerializationFailure,
                errors.DeadlockDetected,
                errors.ForeignKeyViolation,
            ):
                cr.rollback()
                self.env.invalidate_all()
                _logger.info("Stuck reminders lost a race with users (try %s); again", attempt + 1)
        return 0

    @api.model
    def _remind(self, where=None):
        """Schedule a reminder activity for each newly stuck deal of ``where`` (an
        SQL condition on the deal ``l`` and its open stay ``h``; every deal when
        ``None``), in one statement. A deal gets one when it is stuck (never lost or won ones),
        its stay has had none, it has an active internal salesperson, and that
        salesperson has no open activity on it due by today (their today). The
        activity is a to-do due today, for the salesperson, in their language:
        "In Primary contact for 9 days; deals usually leave it within 5 days".
        Returns how many were scheduled."""
        activity_type = self._reminder_activity_type()
        if not activity_type:
            _logger.warning("Stuck reminders: no activity type to schedule them with")
            return 0
        self.env.flush_all()
        cr = self.env.cr
        now = cr.now()
        Lead = self.env["crm.lead"]
        where = where if where is not None else SQL("TRUE")
        texts = SQL(", ").join(
            SQL("(%s, %s, %s)", lang, learned, manual)
            for lang, (learned, manual) in self._reminder_texts().items()
        )
        todays = SQL(", ").join(
            SQL("(%s, %s::date)", tz, today) for tz, today in self._todays(now).items()
        )
        cr.execute(
            SQL(
                """
            -- the batch's stuck deals first, from its range of deals
            WITH candidate AS MATERIALIZED (%(stays)s
            ), stuck AS MATERIALIZED (
                -- the activity's id drawn here: the reminder takes it without a join
                SELECT nextval('mail_activity_id_seq') AS activity_id,
                       o.lead_id, o.stage_id, o.date_in, o.limit_days, o.manual,
                       o.lead_name, o.user_id, p.tz,
                       floor(EXTRACT(EPOCH FROM (%(now)s::timestamp - o.date_in)) / 86400)::int
                           AS age,
                       COALESCE(s.name ->> COALESCE(p.lang, 'en_US'), s.name ->> 'en_US')
                           AS stage_name,
                       COALESCE(tx.learned, en.learned) AS learned_text,
                       COALESCE(tx.manual, en.manual) AS manual_text,
                       d.today
                  FROM candidate o
                  JOIN crm_stage s ON s.id = o.stage_id
                  JOIN res_users u ON u.id = o.user_id
                  JOIN res_partner p ON p.id = u.partner_id
                  JOIN (VALUES %(todays)s) d(tz, today) ON d.tz = COALESCE(p.tz, '')
                  LEFT JOIN (VALUES %(texts)s) tx(lang, learned, manual) ON tx.lang = p.lang
                  JOIN (VALUES %(texts)s) en(lang, learned, manual) ON en.lang = 'en_US'
                 -- unset booleans are NULL: an unset active user is archived; an
                 -- unset share is an internal user
                 WHERE u.active IS TRUE AND u.share IS NOT TRUE
                   AND NOT EXISTS (
                        SELECT 1 FROM sales_funnel_stuck_reminder r
                         WHERE r.lead_id = o.lead_id AND r.stay_date_in = o.date_in)
                   -- an unset active activity is archived (done), as the ORM reads it
                   AND NOT EXISTS (
                        SELECT 1 FROM mail_activity a
                         WHERE a.res_model = 'crm.lead' AND a.res_id = o.lead_id
                           AND a.user_id = o.user_id AND a.active IS TRUE
                           AND a.date_deadline <= d.today)
            ), activity AS (
                INSERT INTO mail_activity (
                    id, res_model_id, res_model, res_id, res_name, activity_type_id, summary,
                    date_deadline, automated, user_id, user_tz, active,
                    create_uid, create_date, write_uid, write_date)
                SELECT st.activity_id, %(model_id)s, 'crm.lead', st.lead_id, st.lead_name,
                       %(type_id)s,
                       replace(replace(replace(
                           CASE WHEN st.manual THEN st.manual_text ELSE st.learned_text END,
                           %(p_days)s, st.age::text), %(p_limit)s, st.limit_days::text),
                           %(p_stage)s, st.stage_name),
                       st.today, TRUE, st.user_id, st.tz, TRUE,
                       %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM stuck st
             RETURNING id
            ), noted AS (
                INSERT INTO sales_funnel_stuck_reminder (
                    lead_id, stage_id, stay_date_in, user_id, activity_id,
                    create_uid, create_date, write_uid, write_date)
                SELECT st.lead_id, st.stage_id, st.date_in, st.user_id, st.activity_id,
                       %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM stuck st
             RETURNING user_id
            )
            SELECT user_id, count(*) FROM noted GROUP BY user_id
            """,
                stays=Lead._open_stays_sql(SQL("(%s) AND (%s)", where, Lead._stuck_where_sql())),
                now=now,
                uid=self.env.uid,
                todays=todays,
                texts=texts,
                model_id=self.env["ir.model"]._get_id("crm.lead"),
                type_id=activity_type.id,
                p_days="%(days)s",
                p_limit="%(limit)s",
                p_stage="%(stage)s",
            )
        )
        per_user = dict(cr.fetchall())
        if per_user:
            self.env["mail.activity"].invalidate_model()
            self.env["crm.lead"].invalidate_model(["activity_ids"])
            users = self.env["res.users"].browse(sorted(per_user))
            users._bus_send("mail.activity/updated", {"activity_created": True})
        return sum(per_user.values())

    @api.model
    def _reminder_activity_type(self):
        todo = self.env.ref("mail.mail_activity_data_todo", raise_if_not_found=False)
        if todo and todo.active:
            return todo
        return self.env["mail.activity.type"].search(
            [("res_model", "in", (False, "crm.lead")), ("category", "=", "default")], limit=1
        )

    @api.model
    def _reminder_texts(self):
        """Per installed language, the reminder's two texts, placeholders kept:
        with a learned limit, and with the stage's Days to rot."""
        texts = {}
        for lang, _name in self.env["res.lang"].get_installed():
            env = self.with_context(lang=lang).env
            texts[lang] = (
                env._(
                    "In %(stage)s for %(days)s days; deals usually leave it within %(limit)s days"
                ),
                env._("In %(stage)s for %(days)s days; the limit for this stage is %(limit)s days"),
            )
        texts.setdefault(
            "en_US",
            (
                "In %(stage)s for %(days)s days; deals usually leave it within %(limit)s days",
                "In %(stage)s for %(days)s days; the limit for this stage is %(limit)s days",
            ),
        )
        return texts

    @api.model
    def _todays(self, now):
        """The date it is at ``now`` in each time zone of the active users ('' for
        none: UTC), to date the reminders in the salesperson's day."""
        self.env.cr.execute(
            """
            SELECT DISTINCT COALESCE(p.tz, '')
              FROM res_users u JOIN res_partner p ON p.id = u.partner_id
             WHERE u.active IS TRUE
            """
        )
        todays = {}
        for (tz,) in self.env.cr.fetchall():
            todays[tz] = fields.Date.context_today(self.with_context(tz=tz or "UTC"), now)
        todays.setdefault("", now.date())
        return todays
