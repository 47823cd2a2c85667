import pytz

from odoo import api, fields, models
from odoo.tools import SQL, Query

from ..models.sales_funnel_step import FULFILMENT_CODES
from .sales_funnel_outcomes import (
    DEAL_STATES,
    FLAGS,
    MEASURES,
    STATES,
    WON_MEANS_PARAM,
    flag_values,
    flags_sql,
)


class SalesFunnelReport(models.Model):
    """Sales funnel: one row per deal and funnel step it reached.

    Counting rules (the README repeats them with worked examples):

    * The funnel steps of a deal (``sales.funnel.step``) are its pipeline
      stages, then the fulfilment steps Order, Invoiced and Paid. Its pipeline
      stages are the ``crm.stage`` records of its sales team or of no team (only
      its team's when the team's "Funnel of Own Stages Only" is set), in
      pipeline order (``sequence``, then ``id``).
    * Fulfilment milestones come from the deal's sale orders (several count
      together): *Order*, an order was confirmed, even if cancelled since (at
      its first confirmation); *Invoiced*, a posted customer invoice of those
      orders that credit notes did not reverse in full (at the earliest invoice
      date); *Paid*, every such invoice paid or in payment, an order still
      confirmed and nothing left to invoice on the confirmed orders (no
      quantity ordered but not invoiced, no draft invoice), at the last
      settlement (reconciliation or matched payment date; the invoice date for
      an invoice with nothing to pay). Payment status is
      Odoo's, computed in each invoice's currency: amounts are never compared
      across currencies.
    * A deal's *position*: its furthest milestone; without one, its current
      stage (where an open or won deal is now, the stage a lost, archived deal
      was lost in). The position is always reached, even a stage outside the
      deal's pipeline (another team's); a deal without a stage has no rows.
    * A deal *reached* every step up to and including its position; a deal
      with a milestone reached its whole pipeline. Stages it jumped over count
      as reached and are flagged ``skipped``; stages it visited beyond its
      position (and moved back from) are not reached.
    * Every reached step before the position was *passed*. At its position a
      deal is exactly one of *lost*, *open* or *won* (``state``, see
      :func:`flag_values`): lost when archived, or at Order or Invoiced when all
      its orders were cancelled; won when won as the setting of what won means
      says; else open. So per step: reached = passed + lost + open + won.
    * A deal counts once per stage however often it came back; its repeat
      visits show in ``visit_count`` and its time in the durations.
    * Duration in a stage: total days of the deal's finished stays there; once
      the deal has an order, its open stay ends at the first confirmation (so
      the won stage shows the days from winning to the order). Empty, not
      zero, for a skipped stage, for the stage an open deal still sits in and
      for the won stage of a deal without an order; a lost deal's last stay
      ends when it is lost and counts. Order: days from the first confirmation
      to the first invoice date; Invoiced: from the first invoice date to the
      last settlement; both in whole days (accounting dates), never negative
      (an invoice dated before the confirmation counts 0), empty when the deal
      is still there or was lost there; Paid: empty, the funnel ends.
    * Deal status (``deal_state``, the same on all its rows): *paid* when it
      reached Paid; *lost* when archived or when all its orders were cancelled;
      *won* when in a won stage or with a confirmed order; else *open*.
    * What "won" means is a setting (``sales_funnel_report.won_means``). The
      won stage (default): a deal in a won stage, or further on (an order,
      invoiced, paid), is won. Paid in full: only a deal at Paid is won.
      *Reached and won in the end* counts the deals that reached the step and
      are won now; the win rate is that count / reached x 100.
    * Conversion = passed / reached x 100; blank at Paid, where the funnel ends.
      Conversion and win rate are ratios of sums in any grouping, never means
      of row percentages, and blank for a group without deals. Average and
      median days are taken over the non-empty durations.
    * A group of rows spanning several steps (the total, or a grouping without
      the step) counts each deal once, at its position among those rows:
      reached = the deals, lost, open and won their outcome there, passed and
      conversion blank (nobody passes the whole funnel), win rate = won / deals,
      expected revenue the deals' own. See :meth:`_measure_sql`.
    * The loss reason (the deal's) sits on the lost row only.
    * ``date_in``: when the deal first entered the step (fulfilment: the
      milestone's date); for a skipped stage, when it jumped over it (its first
      stay in a later stage, or its first confirmation); Invoiced and Paid are
      accounting dates, read as the reader's midnight of that day (see
      :meth:`_date_in_sql`). ``create_date``: the
      deal's creation. ``expected_revenue``: the deal's, on every row it has,
      summed once per deal in a group (see above).
    """

    _name = "sales.funnel.report"
    _description = "Sales Funnel"
    _auto = False
    _rec_name = "step_id"
    _order = "lead_id, is_fulfilment, stage_sequence, step_id"

    lead_id = fields.Many2one("crm.lead", string="Deal", readonly=True)
    step_id = fields.Many2one("sales.funnel.step", readonly=True)
    step_code = fields.Selection(FULFILMENT_CODES, string="Fulfilment Step", readonly=True)
    is_fulfilment = fields.Boolean(string="Fulfilment", readonly=True)
    stage_id = fields.Many2one("crm.stage", readonly=True)
    stage_sequence = fields.Integer(readonly=True, aggregator=False)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    lost_reason_id = fields.Many2one("crm.lost.reason", string="Loss Reason", readonly=True)
    source_id = fields.Many2one("utm.source", readonly=True)
    medium_id = fields.Many2one("utm.medium", readonly=True)
    campaign_id = fields.Many2one("utm.campaign", readonly=True)
    type = fields.Selection([("lead", "Lead"), ("opportunity", "Opportunity")], readonly=True)
    state = fields.Selection(STATES, string="Outcome at Stage", readonly=True)
    deal_state = fields.Selection(DEAL_STATES, string="Deal Status", readonly=True)
    skipped = fields.Boolean(readonly=True)
    create_date = fields.Datetime(string="Deal Created", readonly=True)
    date_in = fields.Datetime(string="Stage Entered", readonly=True)
    visit_count = fields.Integer(string="Visits", readonly=True, aggregator=False)

    lead_count = fields.Integer(
        string="Reached",
        readonly=True,
        help="Deals that reached the step; over several steps, the deals counted once.",
    )
    passed_count = fields.Integer(
        string="Passed", readonly=True, help="Deals that went on to a later step."
    )
    lost_count = fields.Integer(string="Lost", readonly=True, help="Deals lost at the step.")
    open_count = fields.Integer(
        string="Open", readonly=True, help="Deals still at the step, neither lost nor won."
    )
    stuck_count = fields.Integer(
        string="Stuck Deals",
        readonly=True,
        help="Open deals that have been in their stage longer than its limit (the stage's "
        "Days to rot, else the time its deals usually take there).",
    )
    won_count = fields.Integer(
        string="Won",
        readonly=True,
        help="Deals won at the step, as the setting of what won means says.",
    )
    won_deal_count = fields.Integer(
        string="Reached and Won in the End",
        readonly=True,
        help="Deals that reached the step and are won now: the base of the win rate.",
    )
    expected_revenue = fields.Float(
        readonly=True,
        help="Expected revenue of the deals counted in Reached, each deal once.",
    )
    conversion_rate = fields.Float(
        string="Conversion (%)",
        readonly=True,
        aggregator="avg",
        digits=(16, 1),
        help="Deals that passed the step, per 100 deals that reached it.",
    )
    win_rate = fields.Float(
        string="Win Rate (%)",
        readonly=True,
        aggregator="avg",
        digits=(16, 1),
        help="Deals that reached the step and were won in the end, per 100 deals that reached it.",
    )
    duration_days = fields.Float(
        string="Average Days",
        readonly=True,
        aggregator="avg",
        digits=(16, 1),
        help="Average time spent in the step by the deals that left it, in days.",
    )
    duration_median_days = fields.Float(
        string="Median Days",
        readonly=True,
        aggregator="avg",
        digits=(16, 1),
        help="Median time spent in the step by the deals that left it, in days.",
    )
    has_duration = fields.Boolean(readonly=True)
    is_passed = fields.Boolean(readonly=True)
    is_lost = fields.Boolean(readonly=True)
    is_open = fields.Boolean(readonly=True)
    is_won = fields.Boolean(readonly=True)
    is_deal_won = fields.Boolean(readonly=True)
    is_deal_paid = fields.Boolean(readonly=True)
    is_deal_lost = fields.Boolean(readonly=True)
    is_lead = fields.Boolean(readonly=True)

    _depends = {
        "sales.funnel.fact": [
            "lead_id",
            "step_id",
            "is_fulfilment",
            "stage_id",
            "stage_sequence",
            "team_id",
            "user_id",
            "company_id",
            "lost_reason_id",
            "skipped",
            "create_date",
            "date_in",
            "visit_count",
            "duration_days",
            "expected_revenue",
            *FLAGS,
        ],
        "sales.funnel.step": ["code"],
        "crm.lead": ["partner_id", "source_id", "medium_id", "campaign_id"],
    }

    def init(self):
        # A median over values gathered with ARRAY_AGG, which PostgreSQL (16+)
        # aggregates in parallel, unlike PERCENTILE_CONT over the rows.
        self.env.cr.execute(
            SQL(
                """
            CREATE OR REPLACE FUNCTION sales_funnel_median(float8[]) RETURNS float8
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
            'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest($1) v'
            """
            )
        )

    def _drop_median_function(self):
        """Uninstalling leaves no trace of the median's SQL function."""
        self.env.cr.execute(SQL("DROP FUNCTION IF EXISTS sales_funnel_median(float8[])"))

    @api.model
    def _flag_values(self):
        """:func:`flag_values` under this database's setting of what won means."""
        return flag_values(
            self.env["ir.config_parameter"].sudo().get_param(WON_MEANS_PARAM, "stage")
        )

    @property
    def _table_query(self):
        def spelled(values):
            return SQL(
                "CASE %s END",
                SQL(" ").join(
                    SQL("WHEN %s THEN %s", flags_sql("f", flags), value)
                    for value, flags in values.items()
                ),
            )

        values = self._flag_values()
        return SQL(
            """
            SELECT f.id, f.lead_id, f.step_id, step.code AS step_code, f.is_fulfilment,
                   f.stage_id, f.stage_sequence, f.team_id, f.user_id,
                   f.company_id, lead.partner_id, f.lost_reason_id, lead.source_id,
                   lead.medium_id, lead.campaign_id,
                   %(type)s AS type, %(state)s AS state, %(deal_state)s AS deal_state,
                   f.skipped, f.create_date,
                   %(date_in)s AS date_in, f.visit_count, f.expected_revenue, f.duration_days,
                   f.duration_days AS duration_median_days,
                   f.duration_days IS NOT NULL AS has_duration,
                   f.is_passed, f.is_lost, f.is_open, f.is_won, f.is_deal_won,
                   f.is_deal_paid, f.is_deal_lost, f.is_lead,
                   1 AS lead_count,
                   %(passed)s::int AS passed_count, %(lost)s::int AS lost_count,
                   %(open)s::int AS open_count, %(won)s::int AS won_count,
                   %(won_in_the_end)s::int AS won_deal_count,
                   (%(open)s AND %(stuck)s)::int AS stuck_count,
                   CASE WHEN step.code = 'paid' THEN NULL
                        ELSE %(passed)s::int * 100.0 END AS conversion_rate,
                   %(won_in_the_end)s::int * 100.0 AS win_rate
              FROM sales_funnel_fact f
              -- PostgreSQL drops these joins from the queries that do not read them
              LEFT JOIN sales_funnel_step step ON step.id = f.step_id
              LEFT JOIN crm_lead lead ON lead.id = f.lead_id
            """,
            type=spelled(values["type"]),
            state=spelled(values["state"]),
            deal_state=spelled(values["deal_state"]),
            date_in=self._date_in_sql(),
            passed=flags_sql("f", values["state"]["passed"]),
            lost=flags_sql("f", values["state"]["lost"]),
            open=flags_sql("f", values["state"]["open"]),
            won=flags_sql("f", values["state"]["won"]),
            won_in_the_end=flags_sql("f", values["won_in_the_end"][True]),
            stuck=self.env["crm.lead"]._stuck_condition_sql_on("f.lead_id"),
        )

    @api.model
    def fields_get(self, allfields=None, attributes=None):
        # Custom group-bys offer the dimensions only: measures, the flags the
        # measures count and the technical columns mean nothing as groups.
        fields = super().fields_get(allfields, attributes)
        for fname in (*MEASURES, *FLAGS, "has_duration", "stage_sequence", "visit_count"):
            if "groupable" in fields.get(fname, {}):
                fields[fname]["groupable"] = False
        return fields

    def _date_in_sql(self):
        """Invoiced and Paid are dated by accounting dates, stored as midnight: a
        day, not an instant. Given as the reader's midnight of that day, they
        fall on their own day in the reader's time zone, as the web client
        groups and filters datetimes, whatever the zone."""
        tz = self.env.context.get("tz")
        if tz not in pytz.all_timezones_set:
            return SQL("f.date_in")
        return SQL(
            """CASE WHEN step.code IN ('invoiced', 'paid')
                    THEN timezone('UTC', timezone(%s, f.date_in))
                    ELSE f.date_in END""",
            tz,
        )

    def _condition_to_sql(self, alias, fname, operator, value, query):
        values = self._flag_values().get(fname) if fname != "won_in_the_end" else None
        if (
            values is None
            or operator not in ("=", "!=", "in", "not in")
            or isinstance(value, (SQL, Query))
            # core refuses a scalar for "in" (ValueError) and reads a boolean as a
            # NULL test: its answer, on the spelled-out column
            or (operator in ("in", "not in") and not isinstance(value, (list, tuple)))
        ):
            return super()._condition_to_sql(alias, fname, operator, value, query)
        # Matched as core matches a stored selection: each value as the text it
        # compares to the column (False and None are NULL, which a flag never is),
        # so a value of the wrong type finds nothing instead of failing.
        field = self._fields[fname]
        wanted = {
            field.convert_to_column(v, self, validate=False)
            for v in (value if operator in ("in", "not in") else [value])
        }
        conditions = [flags_sql(alias, flags) for v, flags in values.items() if v in wanted]
        condition = SQL("(%s)", SQL(" OR ").join(conditions)) if conditions else SQL("FALSE")
        return SQL("NOT %s", condition) if operator in ("!=", "not in") else condition
