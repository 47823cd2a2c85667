from odoo import models
from odoo.models import parse_read_group_spec
from odoo.tools import SQL, Query

from .sales_funnel_outcomes import BLANK_WHEN_EMPTY, STEP_DIMENSIONS, flags_sql


class SalesFunnelReport(models.Model):
    """The funnel's measures in SQL: what each count, rate and median means in a
    group of rows (one step's, or several steps' where each deal counts once),
    and the pipeline order of steps and stages."""

    _inherit = "sales.funnel.report"  # pylint: disable=consider-merging-classes-inherited

    def _read_group(
        self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None, order=None
    ):
        # Whether a group is one step's numbers (see _measure_sql): always when
        # grouped by the step; it can be when grouped by its stage or a fulfilment
        # step (the stages' empty group holds the fulfilment steps), or for the
        # rows of a domain; never otherwise.
        grouped = {spec.split(":")[0] for spec in groupby}
        if "step_id" in grouped:
            by_step = "always"
        elif not groupby or grouped & STEP_DIMENSIONS:
            by_step = "can"
        else:
            by_step = "never"
        if any(spec.startswith("stuck_count") for spec in aggregates):
            # stuck is read at cr.now() from the stays, stages and learned times
            self.env["crm.lead"]._flush_stuck_sources()
        report = self.with_context(sales_funnel_by_step=by_step)
        return super(SalesFunnelReport, report)._read_group(
            domain, groupby, aggregates, having, offset, limit, order
        )

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
        aggregator, when it is not the plain one of its column.

        A group of one step's rows, grouped by the step (or by its stage), or all
        the rows of a domain, counts them all. Any other group (a grouping without
        the step, the total of several steps) counts each deal once, at its
        position (its one row not passed): reached is then the number of deals,
        passed and conversion are blank, and the win rate and expected revenue
        are the deals' own. Rates of a group without deals are blank."""
        values = self._flag_values()

        def column(name):
            return self._field_to_sql(self._table, name, query)

        def flags(flags_):
            return flags_sql(self._table, flags_)

        step = column("step_id")
        at_position = SQL("NOT %s", column("is_passed"))

        def per_step_or_deal(per_step, per_deal):
            return self._per_step_or_deal(step, per_step, per_deal)

        def count(*conditions):
            if not conditions:
                return SQL("COUNT(*)")
            return SQL("COUNT(*) FILTER (WHERE %s)", SQL(" AND ").join(conditions))

        won_in_the_end = flags(values["won_in_the_end"][True])
        if fname == "lead_count":
            return per_step_or_deal(count(), count(at_position))
        if fname == "passed_count":
            return per_step_or_deal(count(flags(values["state"]["passed"])), SQL("NULL"))
        if fname in ("lost_count", "open_count", "won_count"):
            # only ever at the position: the same count in both kinds of group
            return count(flags(values["state"][fname.removesuffix("_count")]))
        if fname == "stuck_count":
            # open at the position, and stuck there now (crm_lead_stuck.py)
            return count(
                flags(values["state"]["open"]),
                self.env["crm.lead"]._stuck_condition_sql_on(column("lead_id")),
            )
        if fname == "won_deal_count":
            return per_step_or_deal(count(won_in_the_end), count(won_in_the_end, at_position))
        if fname == "expected_revenue":
            revenue = column("expected_revenue")
            return per_step_or_deal(
                SQL("SUM(%s)", revenue), SQL("SUM(%s) FILTER (WHERE %s)", revenue, at_position)
            )
        if fname == "win_rate":
            return per_step_or_deal(
                SQL("%s * 100.0 / NULLIF(%s, 0)", count(won_in_the_end), count()),
                SQL(
                    "%s * 100.0 / NULLIF(%s, 0)",
                    count(won_in_the_end, at_position),
                    count(at_position),
                ),
            )
        if fname == "conversion_rate":
            # The funnel ends at Paid: nothing to convert to. Known by the step's id,
            # not its code: joining the steps to every row cost a quarter of a read.
            paid = self.env["sales.funnel.step"].sudo().search([("code", "=", "paid")], limit=1)
            return per_step_or_deal(
                SQL(
                    "CASE WHEN MAX(%s) IS DISTINCT FROM %s THEN %s * 100.0 / NULLIF(%s, 0) END",
                    step,
                    paid.id or None,
                    count(flags(values["state"]["passed"])),
                    count(),
                ),
                SQL("NULL"),
            )
        if fname == "duration_median_days":
            duration = column("duration_days")
            return SQL(
                "sales_funnel_median(ARRAY_AGG(%s) FILTER (WHERE %s IS NOT NULL))",
                duration,
                duration,
            )
        return None

    def _per_step_or_deal(self, step, per_step, per_deal):
        """The aggregate of a group that is one step's rows, or the one counting
        each deal once, or both, chosen per group by its steps: each aggregate
        costs every row of the group, so only those that can apply."""
        by_step = self.env.context.get("sales_funnel_by_step", "can")
        if by_step == "never":
            return per_deal
        if by_step == "always":
            return per_step
        return SQL(
            "CASE WHEN MIN(%s) = MAX(%s) THEN %s ELSE %s END", step, step, per_step, per_deal
        )

    def _order_field_to_sql(self, alias, field_name, direction, nulls, query):
        # Steps and stages in pipeline order, like the counting rules, whatever their
        # names and the reader's language (see sales.funnel.step._funnel_order): by
        # their place in the list of all of them, a constant array. The grouping then
        # stays on the one column, and the aggregation parallel (a lookup per group
        # would be a SubPlan, which PostgreSQL does not run in parallel workers).
        if field_name in ("step_id", "stage_id"):
            steps = self.env["sales.funnel.step"]._funnel_order()
            ordered = steps.ids if field_name == "step_id" else steps.stage_id.ids
            return SQL(
                "array_position(%s::int[], %s) %s %s",
                ordered,
                self._field_to_sql(alias, field_name, query),
                direction,
                nulls,
            )
        if field_name in BLANK_WHEN_EMPTY and not nulls.code:
            # empty means "does not apply": after every value, whichever the direction
            nulls = SQL("NULLS LAST")
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
