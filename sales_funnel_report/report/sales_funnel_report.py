import pytz

from odoo import api, fields, models
from odoo.models import parse_read_group_spec
from odoo.tools import SQL, Query

from ..models.sales_funnel_step import FULFILMENT_CODES

STATES = [("passed", "Passed"), ("lost", "Lost"), ("open", "Open"), ("won", "Won")]
DEAL_STATES = [("open", "Open"), ("won", "Won"), ("paid", "Paid"), ("lost", "Lost")]
WON_MEANS_PARAM = "sales_funnel_report.won_means"
# Every outcome the report shows is a condition on the rows' boolean flags, written
# once here as (flags set, flags unset): the report spells the values out, counts
# rows with COUNT(*) FILTER, and turns filters back into conditions PostgreSQL can
# estimate, all from these.
FLAG_VALUES = {
    "type": {"lead": (["is_lead"], []), "opportunity": ([], ["is_lead"])},
    "state": {
        "passed": (["is_passed"], []),
        "lost": (["is_lost"], []),
        "open": (["is_open"], []),
        "won": ([], ["is_passed", "is_lost", "is_open"]),
    },
    "deal_state": {
        "paid": (["is_deal_paid"], []),
        "won": (["is_deal_won"], ["is_deal_paid"]),
        "lost": (["is_deal_lost"], []),
        "open": ([], ["is_deal_won", "is_deal_lost"]),
    },
}
COUNTED = {
    "passed_count": FLAG_VALUES["state"]["passed"],
    "lost_count": FLAG_VALUES["state"]["lost"],
    "open_count": FLAG_VALUES["state"]["open"],
    "conversion_rate": FLAG_VALUES["state"]["passed"],
}
# "Won" follows the setting of what won means: the won stage, or paid in full.
WON_COUNTED = {
    "stage": {
        "won_count": (["is_won"], []),
        "won_deal_count": (["is_deal_won"], []),
        "win_rate": (["is_deal_won"], []),
    },
    "paid": {
        # won at a fulfilment step: at Paid, the only one a deal is won at
        "won_count": (["is_fulfilment"], ["is_passed", "is_lost", "is_open"]),
        "won_deal_count": FLAG_VALUES["deal_state"]["paid"],
        "win_rate": FLAG_VALUES["deal_state"]["paid"],
    },
}
RATES = {"conversion_rate", "win_rate"}


def flags_sql(alias, flags):
    """The condition ``flags`` (flags set, flags unset) on the rows of ``alias``."""
    set_, unset = flags
    return SQL(
        "(%s)",
        SQL(" AND ").join(
            [
                *(SQL.identifier(alias, flag) for flag in set_),
                *(SQL("NOT %s", SQL.identifier(alias, flag)) for flag in unset),
            ]
        ),
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
      deal is exactly one of *lost*, *open* or *won* (``state``): at a stage,
      lost when archived, won when in a won stage, else open; at Paid, won; at
      Order or Invoiced, lost when archived or when all its orders were
      cancelled, else open. So per step: reached = passed + lost + open + won.
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
      won stage (default): Won counts a won or paid deal once, at the last won
      stage of its pipeline, and the win rate is deals that reached the step
      and are won or paid / reached x 100. Paid in full: Won counts the deals
      at Paid, and the win rate is deals that reached the step and are paid /
      reached x 100.
    * Conversion = passed / reached x 100. Conversion and win rate are ratios
      of sums in any grouping and total, never means of row percentages.
      Average and median days are taken over the non-empty durations.
    * The loss reason (the deal's) sits on the lost row only.
    * ``date_in``: when the deal first entered the step (fulfilment: the
      milestone's date); for a skipped stage, when it jumped over it (its first
      stay in a later stage, or its first confirmation); Invoiced and Paid are
      accounting dates, read as the reader's midnight of that day (see
      :meth:`_date_in_sql`). ``create_date``: the
      deal's creation. ``expected_revenue``: the deal's, on every row it has.
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

    lead_count = fields.Integer(string="Reached", readonly=True)
    passed_count = fields.Integer(string="Passed", readonly=True)
    lost_count = fields.Integer(string="Lost", readonly=True)
    open_count = fields.Integer(string="Open", readonly=True)
    won_count = fields.Integer(string="Won", readonly=True)
    won_deal_count = fields.Integer(string="Reached and Won", readonly=True)
    expected_revenue = fields.Float(readonly=True)
    conversion_rate = fields.Float(
        string="Conversion (%)",
        readonly=True,
        aggregator="avg",
        help="Deals that passed the stage, per 100 deals that reached it.",
    )
    win_rate = fields.Float(
        string="Win Rate (%)",
        readonly=True,
        aggregator="avg",
        help="Deals that reached the stage and were won, per 100 deals that reached it.",
    )
    duration_days = fields.Float(
        string="Average Days",
        readonly=True,
        aggregator="avg",
        help="Average time spent in the stage by the deals that left it, in days.",
    )
    duration_median_days = fields.Float(
        string="Median Days",
        readonly=True,
        aggregator="avg",
        help="Median time spent in the stage by the deals that left it, in days.",
    )

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
            "is_lead",
            "skipped",
            "create_date",
            "date_in",
            "visit_count",
            "duration_days",
            "expected_revenue",
            "is_passed",
            "is_lost",
            "is_open",
            "is_won",
            "is_deal_won",
            "is_deal_paid",
            "is_deal_lost",
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
    def _counted(self):
        """What each count and rate counts, after the setting of what won means."""
        means = self.env["ir.config_parameter"].sudo().get_param(WON_MEANS_PARAM, "stage")
        return {**COUNTED, **WON_COUNTED.get(means, WON_COUNTED["stage"])}

    @property
    def _table_query(self):
        def spelled(fname):
            return SQL(
                "CASE %s END",
                SQL(" ").join(
                    SQL("WHEN %s THEN %s", flags_sql("f", flags), value)
                    for value, flags in FLAG_VALUES[fname].items()
                ),
            )

        def measure(fname, flags):
            value = SQL("100.0") if fname in RATES else SQL("1")
            return SQL(
                "CASE WHEN %s THEN %s ELSE 0 END AS %s",
                flags_sql("f", flags),
                value,
                SQL.identifier(fname),
            )

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
                   f.is_passed, f.is_lost, f.is_open, f.is_won, f.is_deal_won,
                   f.is_deal_paid, f.is_deal_lost, f.is_lead,
                   1 AS lead_count, %(measures)s
              FROM sales_funnel_fact f
              -- PostgreSQL drops these joins from the queries that do not read them
              LEFT JOIN sales_funnel_step step ON step.id = f.step_id
              LEFT JOIN crm_lead lead ON lead.id = f.lead_id
            """,
            type=spelled("type"),
            state=spelled("state"),
            deal_state=spelled("deal_state"),
            date_in=self._date_in_sql(),
            measures=SQL(", ").join(
                measure(fname, flags) for fname, flags in self._counted().items()
            ),
        )

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
        values = FLAG_VALUES.get(fname)
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

    def _read_group_select(self, aggregate_spec, query):
        if aggregate_spec != "__count":
            # core's parser: a malformed spec raises core's ValueError
            fname, property_name, func = parse_read_group_spec(aggregate_spec)
            field = self._fields.get(fname)
            # The counts, rates and median are what a measure means under its own
            # aggregator (the pivot's); any other function reads the view's column,
            # as core does, and core refuses unknown ones.
            if field is not None and not property_name and func == field.aggregator:
                measure = self._measure_sql(fname, query)
                if measure is not None:
                    return measure
        return super()._read_group_select(aggregate_spec, query)

    def _measure_sql(self, fname, query):
        """The aggregate of ``fname`` over the group's rows under its declared
        aggregator, when it is not the plain one of its column."""
        if fname == "lead_count":
            return SQL("COUNT(*)")
        counted = self._counted()
        if fname in RATES:
            return SQL(
                "COALESCE(COUNT(*) FILTER (WHERE %s) * 100.0 / NULLIF(COUNT(*), 0), 0)",
                flags_sql(self._table, counted[fname]),
            )
        if fname in counted:
            return SQL("COUNT(*) FILTER (WHERE %s)", flags_sql(self._table, counted[fname]))
        if fname == "duration_median_days":
            duration = self._field_to_sql(self._table, "duration_days", query)
            return SQL(
                "sales_funnel_median(ARRAY_AGG(%s) FILTER (WHERE %s IS NOT NULL))",
                duration,
                duration,
            )
        return None

    def _order_field_to_sql(self, alias, field_name, direction, nulls, query):
        # Steps and stages in pipeline order (sequence, id), like the counting rules,
        # whatever their names and the reader's language, fulfilment steps last: by
        # their place in the list of all of them, a constant array. The grouping then
        # stays on the one column, and the aggregation parallel (a lookup per group
        # would be a SubPlan, which PostgreSQL does not run in parallel workers).
        if field_name in ("step_id", "stage_id"):
            model = "sales.funnel.step" if field_name == "step_id" else "crm.stage"
            order = None if field_name == "step_id" else "sequence, id"
            ordered = self.env[model].sudo().search([], order=order).ids
            return SQL(
                "array_position(%s::int[], %s) %s %s",
                ordered,
                self._field_to_sql(alias, field_name, query),
                direction,
                nulls,
            )
        field = self._fields.get(field_name)
        if query.groupby and field is not None and field.type == "many2one":
            terms = self._order_groups_per_group(alias, field, direction, nulls, query)
            if terms is not None:
                return terms
        return super()._order_field_to_sql(alias, field_name, direction, nulls, query)

    def _order_groups_per_group(self, alias, field, direction, nulls, query):
        """Order the groups of a many2one by its model's order, looked up once per
        group (a subquery on the grouped id) instead of joining the names to every
        row, which would make PostgreSQL group millions of rows by text. ``None``
        when the model's order needs more than its own fields."""
        comodel = self.env[field.comodel_name]
        grouped = self._field_to_sql(alias, field.name, query)
        reverse = direction.code == "DESC"
        terms = []
        for term in comodel._order.split(","):
            fname, *how = term.split()
            cofield = comodel._fields.get(fname)
            if (
                cofield is None
                or cofield.type == "many2one"
                or not (cofield.store or cofield.inherited)
            ):
                return None
            descending = bool(how) and how[0].lower() == "desc"
            sub = Query(comodel.env, comodel._table, comodel._table_sql)
            value = comodel._field_to_sql(comodel._table, fname, sub)
            sub.add_where(SQL("%s = %s", SQL.identifier(comodel._table, "id"), grouped))
            terms.append(
                SQL(
                    "(%s) %s %s",
                    sub.select(value),
                    SQL("DESC") if descending != reverse else SQL("ASC"),
                    nulls,
                )
            )
        return SQL(", ").join(terms)

    @api.model
    @api.readonly
    def get_update_notice(self):
        """The notice the funnel's views show while a background job updates it
        (``False`` when none runs): readers see the numbers are moving."""
        self.check_access("read")
        progress = self.env["sales.funnel.job"]._progress()
        if "history" in progress:
            done = progress["history"]
            return (
                self.env._("Rebuilding the stage history from the chatter: %(done)s %%", done=done)
                if done is not None
                else self.env._("Rebuilding the stage history from the chatter...")
            )
        if "facts" in progress:
            done = progress["facts"]
            return (
                self.env._("Updating the funnel after a pipeline change: %(done)s %%", done=done)
                if done is not None
                else self.env._("Updating the funnel after a pipeline change...")
            )
        return False

    def action_open_lead(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.lead",
            "res_id": self.lead_id.id,
            "views": [(False, "form")],
        }
