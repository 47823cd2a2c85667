from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL


class CrmLead(models.Model):
    """Age in stage and stuck deals.

    A deal's age in its stage is the time since its open stay began (the
    stage history), read at ``cr.now()``: never stored, never stale. A deal is
    stuck when it has spent more whole days in its stage than the stage's
    limit: the stage's *Days to rot* when set, or else the learned 75th
    percentile of the stage in the deal's pipeline, rounded up to whole days
    (``sales.funnel.typical.time``). Lost (archived) deals and deals in a won
    stage are never stuck.
    """

    # kept apart from crm_lead.py (the recording of stays), which changes on its own
    _inherit = "crm.lead"  # pylint: disable=consider-merging-classes-inherited

    stage_age_days = fields.Integer(
        string="Days in Stage",
        compute="_compute_stage_age",
        help="Whole days the deal has spent in its current stage so far, since it last entered it.",
    )
    stage_limit_days = fields.Integer(
        string="Days Allowed in Stage",
        compute="_compute_stage_age",
        help="The deal is stuck once it has spent more whole days than this in its stage: "
        "the stage's Days to rot, or else how long deals of this pipeline usually take "
        "there (75th percentile).",
    )
    stage_limit_learned = fields.Boolean(
        string="Limit Learned from History", compute="_compute_stage_age"
    )
    is_stuck = fields.Boolean(
        string="Stuck",
        compute="_compute_stage_age",
        search="_search_is_stuck",
        help="The deal has spent longer in its stage than deals usually do (or than the "
        "stage's Days to rot).",
    )
    stage_age_label = fields.Char(string="In Stage", compute="_compute_stage_age")

    @api.depends("stage_id", "team_id", "active")
    @api.depends_context("lang")
    def _compute_stage_age(self):
        ids = [lead_id for lead_id in self._origin.ids if lead_id]
        rows = {}
        if ids:
            self._flush_stuck_sources()
            self.env.cr.execute(
                SQL(
                    """
                SELECT lead_id, stage_id, date_in, limit_days, manual, stuck_possible
                  FROM (%s) stays
                """,
                    self._open_stays_sql(SQL("l.id = ANY(%s)", ids)),
                )
            )
            rows = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        now = self.env.cr.now()
        for lead in self:
            row = rows.get(lead._origin.id)
            # a stage changed on the form but not saved yet: no stay there yet
            if not row or row[0] != lead.stage_id.id:
                lead.stage_age_days = 0
                lead.stage_limit_days = 0
                lead.stage_limit_learned = False
                lead.is_stuck = False
                lead.stage_age_label = False
                continue
            _stage_id, date_in, limit, manual, possible = row
            age = max(0, int((now - date_in).total_seconds() // 86400))
            lead.stage_age_days = age
            lead.stage_limit_days = limit or 0
            lead.stage_limit_learned = limit is not None and not manual
            lead.is_stuck = bool(possible and limit is not None and age > limit)
            if limit is None:
                label = self.env._("%(days)s d", days=age)
            elif manual:
                label = self.env._("%(days)s d · limit %(limit)s", days=age, limit=limit)
            else:
                label = self.env._("%(days)s d · usually %(limit)s", days=age, limit=limit)
            lead.stage_age_label = label

    def _search_is_stuck(self, operator, value):
        if operator in ("in", "not in") and isinstance(value, (list, tuple)):
            values = {bool(v) for v in value}
            if len(values) != 1:  # both, or none
                return [(1, "=", 1)] if (len(values) == 2) == (operator == "in") else [(0, "=", 1)]
            operator, value = ("=" if operator == "in" else "!="), values.pop()
        if operator not in ("=", "!=") or not isinstance(value, bool):
            # built before the call: Babel cannot extract a message with an f-string
            # among its arguments, and the message would go untranslated
            condition = f"{operator} {value!r}"
            raise UserError(
                self.env._(
                    "The Stuck filter accepts only = or != with True or False, not %(condition)s.",
                    condition=condition,
                )
            )
        self._flush_stuck_sources()
        stuck = SQL("(%s)", self._stuck_leads_sql())
        wanted = value if operator == "=" else not value
        return [("id", "in" if wanted else "not in", stuck)]

    @api.model
    def _flush_stuck_sources(self):
        # reading stays records this transaction's pending deals first (see flush_model)
        self.env["crm.lead.stage.history"].flush_model()
        self.env["crm.lead"].flush_model(["stage_id", "team_id", "active"])
        self.env["crm.stage"].flush_model(["rotting_threshold_days", "is_won"])
        self.env["sales.funnel.typical.time"].flush_model()

    @api.model
    def _open_stays_sql(self, where=None):
        """One row per deal with an open stay in its current stage (aliases ``l``
        the deal, ``h`` the stay, ``s`` the stage, ``t`` the learned values):
        ``lead_id, user_id, lead_name, stay_id, stage_id, date_in, limit_days``
        (NULL: no limit),
        ``manual`` (the stage's Days to rot) and ``stuck_possible`` (an active
        deal in a stage that is not won). Days to rot 0 or unset means learned."""
        return SQL(
            """
            SELECT l.id AS lead_id, l.user_id, l.name AS lead_name,
                   h.id AS stay_id, h.stage_id, h.date_in,
                   COALESCE(NULLIF(s.rotting_threshold_days, 0), t.limit_days) AS limit_days,
                   COALESCE(s.rotting_threshold_days, 0) > 0 AS manual,
                   -- unset booleans are NULL: an unset active is archived (lost), as
                   -- Odoo reads ('active', '=', True); an unset is_won is not won
                   (l.active IS TRUE AND s.is_won IS NOT TRUE) AS stuck_possible
              FROM crm_lead l
              JOIN crm_lead_stage_history h
                ON h.lead_id = l.id AND h.date_out IS NULL AND h.stage_id = l.stage_id
              JOIN crm_stage s ON s.id = h.stage_id
              LEFT JOIN sales_funnel_typical_time t
                ON t.stage_id = h.stage_id AND COALESCE(t.team_id, 0) = COALESCE(l.team_id, 0)
             WHERE %s
            """,
            where if where is not None else SQL("TRUE"),
        )

    @api.model
    def _stuck_where_sql(self):
        """The condition, over the aliases of :meth:`_open_stays_sql`, that the deal
        is stuck at ``cr.now()``: more whole days in the stage than its limit, i.e.
        entered at least limit + 1 days ago."""
        return SQL(
            """l.active IS TRUE AND s.is_won IS NOT TRUE
               AND COALESCE(NULLIF(s.rotting_threshold_days, 0), t.limit_days) IS NOT NULL
               AND h.date_in <= %s::timestamp - make_interval(
                   days => COALESCE(NULLIF(s.rotting_threshold_days, 0), t.limit_days) + 1)""",
            self.env.cr.now(),
        )

    @api.model
    def _stuck_leads_sql(self):
        """``SELECT`` of the ids of the stuck deals (no access rules applied)."""
        return SQL("SELECT lead_id FROM (%s) stuck", self._open_stays_sql(self._stuck_where_sql()))

    @api.model
    def _stuck_condition_sql_on(self, lead_id):
        """SQL condition that the deal whose id is ``lead_id`` (an SQL expression or
        a column name) is stuck now: the rule of :meth:`_stuck_condition_sql`."""
        if isinstance(lead_id, str):
            lead_id = SQL(lead_id)
        return SQL("%s IN (%s)", lead_id, self._stuck_leads_sql())

    @api.model
    def _stuck_condition_sql(self, lead_alias):
        """SQL condition that the deal ``lead_alias.id`` is stuck now, for reports
        that count stuck deals (e.g. per funnel step): the same rule as the
        ``is_stuck`` field and its search. Call ``_flush_stuck_sources()`` first
        when the ORM may hold pending writes."""
        return SQL("%s.id IN (%s)", SQL.identifier(lead_alias), self._stuck_leads_sql())
