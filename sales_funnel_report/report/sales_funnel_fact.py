from contextlib import contextmanager

from odoo import api, fields, models
from odoo.tools import SQL


class SalesFunnelFact(models.Model):
    """The funnel rows, kept up to date at write time.

    One row per deal and funnel step it reached, with the deal's dimensions
    that record rules and the usual filters need (salesperson, team, company,
    creation) copied in, so that the report reads a single narrow table; the
    others are read from the deal, joined only when asked for. The counting
    rules are those of :class:`~.sales_funnel_report.SalesFunnelReport`;
    :meth:`_refresh` is their only implementation.
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
    stage_id = fields.Many2one("crm.stage", ondelete="cascade", index="btree_not_null")
    # the stage's sequence on pipeline rows, the step's on fulfilment rows
    stage_sequence = fields.Integer(required=True)
    lead_id = fields.Many2one("crm.lead", required=True, ondelete="cascade", index=True)
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
    company_id = fields.Many2one("res.company", ondelete="set null")
    duration_days = fields.Float()
    team_id = fields.Many2one("crm.team", ondelete="set null")
    user_id = fields.Many2one("res.users", ondelete="set null")
    lost_reason_id = fields.Many2one("crm.lost.reason", ondelete="set null")
    create_date = fields.Datetime()
    date_in = fields.Datetime()
    visit_count = fields.Integer()

    _sql_constraints = [
        # Live recording and background batches both rewrite a deal's rows; with this
        # key, a transaction that did not see the other's rows fails to serialize and
        # is retried, instead of counting the deal twice.
        ("lead_step_uniq", "UNIQUE(lead_id, step_id)", "A deal has one funnel row per step."),
    ]

    @api.model
    def _refresh(self, lead_ids):
        """Rewrite the funnel rows of ``lead_ids`` from the deals, their stays and
        the stages, in two statements, row by row: concurrent transactions that
        rewrite the same deal conflict (the later one is retried), and nobody
        else waits. Work over every deal goes through ``sales.funnel.job``."""
        if not lead_ids:
            return
        self.env.flush_all()
        only = SQL("lead_id = ANY(%s)", list(lead_ids))
        # Whether any of the deals has an order confirmed once, asked in the DELETE's
        # round trip; the INSERT reads the same snapshot (repeatable read).
        self.env.cr.execute(
            SQL(
                """
            WITH deleted AS (DELETE FROM sales_funnel_fact WHERE %s)
            SELECT EXISTS (SELECT 1 FROM sale_order
                            WHERE opportunity_id = ANY(%s) AND funnel_confirmed_at IS NOT NULL)
            """,
                only,
                list(lead_ids),
            )
        )
        [fulfilling] = self.env.cr.fetchone()
        self._insert_rows(only, SQL("l.id = ANY(%s)", list(lead_ids)), fulfilling)
        self.invalidate_model()

    @api.model
    def _refresh_all_bulk(self):
        """Rewrite every funnel row at once, for install, upgrades and the command
        line only: it empties the table and loads it without its foreign keys and
        unique key, which locks the tables they point to (deals, stages, users...)."""
        self.env.flush_all()
        with self._constraints_checked_once():
            self.env.cr.execute("TRUNCATE sales_funnel_fact")
            self._insert_rows(SQL("TRUE"), SQL("TRUE"), on_conflict=False)
        # fresh statistics, or the planner misjudges the report's first queries
        self.env.cr.execute("ANALYZE sales_funnel_fact")
        self.invalidate_model()

    @contextmanager
    def _constraints_checked_once(self):
        """Drop the table's foreign keys and unique key for a bulk load and put them
        back after: PostgreSQL then checks each in one pass (and builds the key's
        index at once) instead of row by row."""
        cr = self.env.cr
        cr.execute(
            SQL(
                """
            SELECT conname, pg_get_constraintdef(oid)
              FROM pg_constraint
             WHERE conrelid = %s::regclass AND contype IN ('f', 'u')
            """,
                self._table,
            )
        )
        keys = cr.fetchall()
        for name, _definition in keys:
            cr.execute(
                SQL(
                    "ALTER TABLE %s DROP CONSTRAINT %s",
                    SQL.identifier(self._table),
                    SQL.identifier(name),
                )
            )
        yield
        for name, definition in keys:
            # the definition is PostgreSQL's own text of the constraint it just dropped
            cr.execute(
                SQL(
                    "ALTER TABLE %s ADD CONSTRAINT %s %s",
                    SQL.identifier(self._table),
                    SQL.identifier(name),
                    SQL(definition),
                )
            )

    def _insert_rows(self, only, only_lead, fulfilling=True, on_conflict=True):
        """Insert the funnel rows of the deals ``only_lead`` selects (alias ``l``),
        ``only`` selecting their stays. ``fulfilling=False`` says that none of them
        has an order confirmed once: their milestones are then known empty, and
        PostgreSQL does not plan the joins over orders and invoices, which took
        most of the time of a stage write's refresh (planning, not running).
        ``on_conflict=False`` is for the bulk load, which runs without the unique
        key (see :meth:`_refresh`): a speculative insertion per row made it 2.5
        times slower at a million deals."""
        milestones = self._milestones_sql() if fulfilling else self._no_milestones_sql()
        self.env.cr.execute(
            SQL(
                """
            WITH deal AS (
                SELECT l.id, l.stage_id, l.team_id, l.user_id, l.company_id,
                       l.lost_reason_id, l.type, l.create_date, l.expected_revenue,
                       pos.sequence AS pos_sequence,
                       -- unset booleans are stored NULL: they mean false
                       COALESCE(l.active, FALSE) AS active,
                       COALESCE(l.active AND pos.is_won, FALSE) AS won
                  FROM crm_lead l
                  JOIN crm_stage pos ON pos.id = l.stage_id
                 WHERE %(only_lead)s
            ), %(milestones)s,
            stay AS (
                -- an open stay ends when the deal's first order is confirmed
                SELECT h.lead_id, h.stage_id, min(h.date_in) AS date_in, count(*) AS visits,
                       sum(COALESCE(h.duration_days, GREATEST(
                           EXTRACT(EPOCH FROM (m.ordered_at - h.date_in)) / 86400.0, 0)
                       )) AS days
                  FROM (SELECT * FROM crm_lead_stage_history WHERE %(only)s) h
                  LEFT JOIN milestone m ON m.lead_id = h.lead_id
                 GROUP BY h.lead_id, h.stage_id
            ), reached AS (
                -- a deal with a milestone passed its whole pipeline
                SELECT deal.id AS lead_id, s.id AS stage_id, s.sequence,
                       COALESCE(s.is_won, FALSE) AS is_won
                  FROM deal
                  LEFT JOIN crm_team team ON team.id = deal.team_id
                  LEFT JOIN milestone m ON m.lead_id = deal.id
                  JOIN crm_stage s
                    ON (s.team_id = deal.team_id
                        OR (s.team_id IS NULL AND NOT COALESCE(team.funnel_own_stages_only, FALSE))
                        OR s.id = deal.stage_id)
                   AND ((s.sequence, s.id) <= (deal.pos_sequence, deal.stage_id)
                        OR m.lead_id IS NOT NULL)
            ), visited AS (
                -- reached stages, and stages visited beyond the position (moved back
                -- from there): a stage jumped over dates from the first later stay,
                -- else from the first order
                SELECT lead_id, stage_id, sequence, is_won, TRUE AS reached FROM reached
                 UNION ALL
                SELECT stay.lead_id, stay.stage_id, s.sequence, COALESCE(s.is_won, FALSE), FALSE
                  FROM stay
                  JOIN crm_stage s ON s.id = stay.stage_id
                 WHERE NOT EXISTS (SELECT 1 FROM reached r
                                    WHERE r.lead_id = stay.lead_id
                                      AND r.stage_id = stay.stage_id)
            ), ordered AS (
                SELECT v.lead_id, v.stage_id, v.sequence, v.reached, v.is_won,
                       stay.date_in, stay.visits, stay.days,
                       min(stay.date_in) OVER later AS later_in,
                       count(*) FILTER (WHERE v.reached AND v.is_won) OVER later AS later_won
                  FROM visited v
                  LEFT JOIN stay ON stay.lead_id = v.lead_id AND stay.stage_id = v.stage_id
                WINDOW later AS (
                    PARTITION BY v.lead_id ORDER BY v.sequence DESC, v.stage_id DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
            ), deal_state AS (
                SELECT d.*, m.lead_id IS NOT NULL AS fulfilling, m.ordered_at,
                       CASE WHEN m.paid THEN 'paid'
                            WHEN NOT d.active THEN 'lost'
                            WHEN m.lead_id IS NOT NULL AND NOT m.live THEN 'lost'
                            WHEN d.won OR m.lead_id IS NOT NULL THEN 'won'
                            ELSE 'open' END AS deal_state
                  FROM deal d
                  LEFT JOIN milestone m ON m.lead_id = d.id
            ), step_row AS (
                SELECT o.lead_id, st.id AS step_id, FALSE AS fulfilment,
                       o.stage_id, o.sequence, o.is_won AND o.later_won = 0 AS last_won,
                       CASE WHEN o.stage_id <> d.stage_id OR d.fulfilling THEN 'passed'
                            WHEN NOT d.active THEN 'lost'
                            WHEN d.won THEN 'won'
                            ELSE 'open' END AS state,
                       o.visits IS NULL AS skipped, o.days,
                       COALESCE(o.date_in, o.later_in, d.ordered_at, d.create_date) AS date_in,
                       COALESCE(o.visits, 0) AS visits
                  FROM ordered o
                  JOIN deal_state d ON d.id = o.lead_id
                  JOIN sales_funnel_step st ON st.stage_id = o.stage_id
                 WHERE o.reached
                 UNION ALL
                SELECT m.lead_id, st.id, TRUE, NULL, st.sequence, FALSE,
                       CASE WHEN st.sequence < m.rank THEN 'passed'
                            WHEN m.paid THEN 'won'
                            WHEN d.deal_state = 'lost' THEN 'lost'
                            ELSE 'open' END,
                       FALSE,
                       -- never negative, and empty (not 0) while there is no end date
                       CASE st.code
                           WHEN 'order' THEN CASE WHEN m.invoiced_on < m.ordered_at::date
                                                  THEN 0 ELSE m.invoiced_on - m.ordered_at::date
                                             END
                           WHEN 'invoiced' THEN CASE WHEN m.paid_on < m.invoiced_on THEN 0
                                                     ELSE m.paid_on - m.invoiced_on END
                       END,
                       CASE st.code WHEN 'order' THEN m.ordered_at
                                    WHEN 'invoiced' THEN m.invoiced_on::timestamp
                                    ELSE m.paid_on::timestamp END,
                       1
                  FROM milestone m
                  JOIN deal_state d ON d.id = m.lead_id
                  JOIN sales_funnel_step st ON st.code IS NOT NULL AND st.sequence <= m.rank
            )
            INSERT INTO sales_funnel_fact (
                step_id, is_fulfilment, stage_id, stage_sequence, lead_id,
                is_passed, is_lost, is_open, is_won, is_deal_won, is_deal_paid,
                is_deal_lost, is_lead, skipped, expected_revenue, company_id, duration_days,
                team_id, user_id, lost_reason_id, create_date, date_in, visit_count)
            SELECT r.step_id, r.fulfilment, r.stage_id, r.sequence, r.lead_id,
                   r.state = 'passed', r.state = 'lost', r.state = 'open',
                   r.last_won AND d.deal_state IN ('won', 'paid'),
                   d.deal_state IN ('won', 'paid'), d.deal_state = 'paid',
                   d.deal_state = 'lost', d.type IS NOT DISTINCT FROM 'lead',
                   r.skipped, COALESCE(d.expected_revenue, 0), d.company_id,
                   CASE WHEN r.state IN ('passed', 'lost') THEN r.days END,
                   d.team_id, d.user_id,
                   CASE WHEN r.state = 'lost' THEN d.lost_reason_id END,
                   d.create_date,
                   r.date_in, r.visits
              FROM step_row r
              JOIN deal_state d ON d.id = r.lead_id
            %(on_conflict)s
            """,
                on_conflict=SQL("ON CONFLICT (lead_id, step_id) DO NOTHING")
                if on_conflict
                else SQL(),
                only=only,
                only_lead=only_lead,
                milestones=milestones,
            )
        )

    def _no_milestones_sql(self):
        """``milestone`` as :meth:`_milestones_sql` gives it for deals without
        any order confirmed once: no row, the same columns."""
        return SQL(
            """
            milestone AS (
                SELECT NULL::integer AS lead_id, NULL::timestamp AS ordered_at,
                       NULL::boolean AS live, NULL::date AS invoiced_on, NULL::date AS paid_on,
                       NULL::boolean AS paid, NULL::integer AS rank
                 WHERE FALSE
            )
            """
        )

    def _milestones_sql(self):
        """``milestone``: per deal of ``deal`` with an order confirmed once, how far
        fulfilment went. ``rank`` is the sequence of the step reached: 1 Order,
        2 Invoiced, 3 Paid. Several orders of a deal count together.

        One aggregation over the orders, their lines and invoices, whose
        aggregates ignore the rows the joins repeat (min, max, and, or): its
        number of groups is estimated from ``sale_order``'s statistics, which
        keeps the joins on ``milestone`` hashed on a million deals."""
        return SQL(
            """
            billing AS (
                SELECT so.opportunity_id AS lead_id, so.funnel_confirmed_at, so.state,
                       sol.display_type, sol.qty_invoiced, sol.product_uom_qty,
                       m.id AS move_id, m.state AS move_state, m.invoice_date,
                       m.payment_state,
                       -- a posted customer invoice that no credit note reversed
                       COALESCE(m.move_type = 'out_invoice' AND m.state = 'posted'
                                AND m.payment_state <> 'reversed', FALSE) AS counted
                  FROM sale_order so
                  LEFT JOIN sale_order_line sol ON sol.order_id = so.id
                  LEFT JOIN sale_order_line_invoice_rel rel ON rel.order_line_id = sol.id
                  LEFT JOIN account_move_line aml ON aml.id = rel.invoice_line_id
                  LEFT JOIN account_move m ON m.id = aml.move_id
                 -- orders confirmed once; a cancelled one keeps its confirmation date
                 WHERE so.funnel_confirmed_at IS NOT NULL
                   AND so.opportunity_id IN (SELECT id FROM deal)
            ), fulfilment AS (
                SELECT lead_id,
                       min(funnel_confirmed_at) AS ordered_at,
                       bool_or(state = 'sale') AS live,
                       min(invoice_date) FILTER (WHERE counted) AS invoiced_on,
                       COALESCE(bool_and(payment_state IN ('paid', 'in_payment'))
                                FILTER (WHERE counted), FALSE) AS all_paid,
                       -- on confirmed orders: quantities not invoiced, invoices not posted
                       COALESCE(bool_or(state = 'sale' AND (
                           (display_type IS NULL AND qty_invoiced < product_uom_qty)
                           OR move_state = 'draft')), FALSE) AS unbilled,
                       max(CASE WHEN counted THEN %(settled)s END) AS paid_on
                  FROM billing
                 GROUP BY lead_id
            ), milestone AS (
                SELECT lead_id, ordered_at, live, invoiced_on,
                       COALESCE(paid_on, invoiced_on) AS paid_on, paid.paid,
                       CASE WHEN paid.paid THEN 3 WHEN invoiced_on IS NOT NULL THEN 2 ELSE 1 END
                           AS rank
                  FROM fulfilment
                 CROSS JOIN LATERAL (
                     SELECT invoiced_on IS NOT NULL AND all_paid AND live AND NOT unbilled
                            AS paid
                 ) paid
            )
            """,
            settled=SQL(
                """
                -- the invoice's last settlement: reconciliation of its receivable (a
                -- debit: a customer invoice's total is never negative), or a payment
                -- matched without a journal entry of its own
                GREATEST(
                    (SELECT max(p.max_date)
                       FROM account_move_line term
                       JOIN account_partial_reconcile p ON p.debit_move_id = term.id
                      WHERE term.move_id = billing.move_id AND term.display_type = 'payment_term'),
                    (SELECT max(pay.date)
                       FROM account_move__account_payment mp
                       JOIN account_payment pay ON pay.id = mp.payment_id
                      WHERE mp.invoice_id = billing.move_id AND pay.move_id IS NULL
                        AND pay.state IN ('in_process', 'paid')))
                """
            ),
        )
