import logging

from odoo import api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# Fewer finished stays than this in the window: no learned value.
MIN_STAYS = 10
WINDOW_PARAM = "sales_funnel_report.typical_window_months"
DEFAULT_WINDOW_MONTHS = 12
MAX_WINDOW_MONTHS = 120


class SalesFunnelTypicalTime(models.Model):
    """How long deals usually spend in a stage, learned from the stage history.

    Per stage and pipeline (the stays' sales team; empty: deals without a team),
    the median and the 75th percentile of the days of the stays that ended in
    the last months (the window, a CRM setting, 12 by default), whatever their
    end (moved forward, back, or lost). Rewritten as a whole by the daily
    scheduled action *Sales Funnel: Stuck Deals* (:meth:`_learn`); a stage and
    pipeline with fewer than ``MIN_STAYS`` finished stays has no row. The
    75th percentile rounded up to whole days is the stuck limit of the stages
    without Days to rot.
    """

    _name = "sales.funnel.typical.time"
    _description = "Typical Time in a Stage"
    _order = "stage_id, team_id"

    stage_id = fields.Many2one(
        "crm.stage", required=True, ondelete="cascade", index=True, readonly=True
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Pipeline",
        ondelete="cascade",
        readonly=True,
        help="The sales team of the stays; empty for deals without a team.",
    )
    stay_count = fields.Integer(string="Finished Stays", readonly=True)
    median_days = fields.Float(readonly=True, digits=(16, 2))
    p75_days = fields.Float(string="75th Percentile, Days", readonly=True, digits=(16, 2))
    limit_days = fields.Integer(
        string="Stuck After (Days)",
        readonly=True,
        help="The 75th percentile rounded up to whole days: a deal that has spent more "
        "whole days than this in the stage is stuck (unless the stage has Days to rot).",
    )
    window_months = fields.Integer(string="Window (Months)", readonly=True)
    date_computed = fields.Datetime(string="Learned On", readonly=True)

    @api.model
    def _window_months(self):
        value = self.env["ir.config_parameter"].sudo().get_param(WINDOW_PARAM)
        try:
            months = int(value) if value else DEFAULT_WINDOW_MONTHS
        except ValueError:
            months = DEFAULT_WINDOW_MONTHS
        return months if 1 <= months <= MAX_WINDOW_MONTHS else DEFAULT_WINDOW_MONTHS

    @api.model
    def _learn(self):
        """Replace the learned values by those of the stays finished in the window
        before ``cr.now()``: one aggregation over the stage history. Returns the
        number of stage and pipeline pairs with a learned value."""
        cr = self.env.cr
        self.env["crm.lead.stage.history"].flush_model()
        now = cr.now()
        months = self._window_months()
        cr.execute("DELETE FROM sales_funnel_typical_time")
        cr.execute(
            SQL(
                """
            INSERT INTO sales_funnel_typical_time (
                stage_id, team_id, stay_count, median_days, p75_days, limit_days,
                window_months, date_computed, create_uid, create_date, write_uid, write_date)
            SELECT stage_id, team_id, n, median, p75,
                   -- rounded first: 5.0 computed as 5.000000001 is 5 whole days
                   ceil(round(p75::numeric, 6))::int,
                   %(months)s, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM (
                SELECT h.stage_id, h.team_id, count(*) AS n,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY h.duration_days) AS median,
                       percentile_cont(0.75) WITHIN GROUP (ORDER BY h.duration_days) AS p75
                  FROM crm_lead_stage_history h
                 WHERE h.date_out IS NOT NULL
                   AND h.duration_days IS NOT NULL
                   AND h.date_out > %(now)s::timestamp - make_interval(months => %(months)s)
                   AND h.date_out <= %(now)s
                 GROUP BY h.stage_id, h.team_id
                HAVING count(*) >= %(min)s
              ) learned
            """,
                months=months,
                now=now,
                uid=self.env.uid,
                min=MIN_STAYS,
            )
        )
        learned = cr.rowcount
        self.invalidate_model()
        _logger.info("Typical stage times learned for %s stage/pipeline pairs", learned)
        return learned
