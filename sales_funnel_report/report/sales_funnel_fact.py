from odoo import api, fields, models
from odoo.tools import SQL

from ..models import bulk_load
from .sales_funnel_milestone import invoiced_sql


class SalesFunnelFact(models.Model):
    """The funnel rows, kept up to date at write time.

    One row per deal and funnel step it reached, with the deal's dimensions
    that record rules and the usual filters need (salesperson, team, company,
    creation) copied in, so that the report reads a single narrow table; the
    others are read from the deal, joined only when asked for. The report's
    docstring (``sales_funnel_report.py``) gives an overview of the counting
    rules; they are implemented once, by :meth:`_write_rows`, one query part
    per rule (``sales_funnel_fact_rows.py``, the milestones in
    ``sales_funnel_milestone.py``). This file keeps the rows' storage and their
    rewrite: a few deals at a time, or all in bulk.
    """

    _name = "sales.funnel.fact"
    # the report reads these rows (its ``_depends``): waiting deals are recorded first
    _inherit = ["sales.funnel.recorded.mixin"]
    _description = "Sales Funnel Row (storage)"
    _log_access = False
    _order = "lead_id, is_fulfilment, stage_sequence, step_id"

    # Outcomes are boolean flags only: the report counts on them (COUNT(*) FILTER)
    # and spells them out (state, deal_state, type), which keeps the rows narrow.
    step_id = fields.Many2one("sales.funnel.step", required=True, ondelete="cascade", index=True)
    is_fulfilment = fields.Boolean(required=True)
    # The stage and the deal's dimensions are copies, kept without foreign keys:
    # checking five keys on every row written was a tenth of what recording adds
    # to a stage write. A stage's rows go with its step, a loss reason used by a
    # deal cannot be deleted, and a deleted salesperson, team or company is
    # forgotten as ON DELETE SET NULL did (``sales.funnel.recorded.mixin._forget_deleted``).
    stage_id = fields.Integer(index="btree_not_null")
    # the stage's sequence on pipeline rows, the step's on fulfilment rows
    stage_sequence = fields.Integer(required=True)
    # no index of its own: the unique key (lead_id, step_id) serves the lookups by deal
    lead_id = fields.Many2one("crm.lead", required=True, ondelete="cascade")
    is_passed = fields.Boolean(required=True)
    is_lost = fields.Boolean(required=True)
    is_open = fields.Boolean(required=True)
    is_won = fields.Boolean(required=True)
    is_deal_won = fields.Boolean(required=True)
    is_deal_paid = fields.Boolean(required=True)
    is_deal_lost = fields.Boolean(required=True)
    is_lead = fields.Boolean(required=True)
    skipped = fields.Boolean(required=True)
    expected_revenue = fields.Float(required=True)
    company_id = fields.Integer()
    duration_days = fields.Float()
    team_id = fields.Integer()
    # a salesman with "own documents only" reads his deals' rows and the unassigned
    # ones (the record rule): an index scan instead of every row of the table
    user_id = fields.Integer(index=True)
    lost_reason_id = fields.Integer()
    create_date = fields.Datetime()
    date_in = fields.Datetime()
    visit_count = fields.Integer()

    _sql_constraints = [
        # Live recording and background batches both rewrite a deal's rows; with this
        # key, a transaction that did not see the other's rows fails to serialize and
        # its rows are written again (see lost_race.py), instead of counting the deal
        # twice.
        ("lead_step_uniq", "UNIQUE(lead_id, step_id)", "A deal has one funnel row per step."),
    ]

    @api.model
    def _refresh(self, lead_ids, fulfilling=None, invoiced=True, guard=None):
        """Rewrite the funnel rows of ``lead_ids`` from the deals, their stays and
        the stages, in one statement, row by row: concurrent transactions that
        rewrite the same deal conflict (the later one's rows are written again,
        see ``models/lost_race.py``), and nobody else waits. Work over every deal
        goes through ``sales.funnel.job``.

        ``fulfilling`` says whether any of the deals has an order confirmed once,
        when the caller knows it (``None``: asked here). ``invoiced=None`` asks
        whether those orders have an invoice line (a confirmation's deal
        usually has none yet): without one, the statement does not plan the
        joins over invoices. ``guard``: the ``lost_race.RaceGuard`` to write the
        rows in."""
        if not lead_ids:
            return
        self.env.flush_all()
        if fulfilling is None:
            self.env.cr.execute(
                SQL(
                    """SELECT EXISTS (SELECT 1 FROM sale_order WHERE opportunity_id = ANY(%s)
                                         AND funnel_confirmed_at IS NOT NULL)""",
                    list(lead_ids),
                )
            )
            [fulfilling] = self.env.cr.fetchone()
        if fulfilling and invoiced is None:
            self.env.cr.execute(SQL("SELECT %s", invoiced_sql(lead_ids)))
            [invoiced] = self.env.cr.fetchone()
        self._write_rows(
            SQL("lead_id = ANY(%s)", list(lead_ids)),
            SQL("l.id = ANY(%s)", list(lead_ids)),
            fulfilling,
            invoiced=invoiced,
            guard=guard,
        )
        self.invalidate_model()

    @api.model
    def _claim_rows(self, lead_ids):
        """Write each deal's row at its position again, unchanged, after a batch
        brought the rows of ``lead_ids`` in line with a changed pipeline.

        A save whose transaction began before the pipeline changed computes the
        deal's rows on the former stages. When the change left those rows as
        they were, the batch wrote none of them, and nothing would make that
        save conflict: its rows on the former stages would stay. Every
        recording writes the row at the position it saw (updated or deleted):
        rewritten here, it fails to serialize, and the save leaves its rows to a
        job, which computes them on the new stages."""
        if lead_ids:
            self.env.cr.execute(
                SQL(
                    """UPDATE sales_funnel_fact SET lead_id = lead_id
                        WHERE lead_id = ANY(%s) AND NOT is_passed""",
                    list(lead_ids),
                )
            )

    @api.model
    def _refresh_all_bulk(self):
        """Rewrite every funnel row at once, for install, upgrades and the command
        line only: it empties the table and loads it without its foreign keys and
        unique key, which locks the tables they point to (deals, stages, users...)."""
        self.env.flush_all()
        cr = self.env.cr
        with bulk_load.more_work_mem(cr), bulk_load.loaded_in_bulk(cr, self._table):
            self._write_rows(SQL("TRUE"), SQL("TRUE"), bulk=True)
        # fresh statistics, or the planner misjudges the report's first queries
        self.env.cr.execute("ANALYZE sales_funnel_fact")
        self.invalidate_model()
