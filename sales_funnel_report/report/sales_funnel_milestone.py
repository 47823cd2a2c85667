"""The fulfilment milestones of the funnel rows: how far each deal's sale orders went.

A deal's milestones come from its sale orders, several counting together:

- *Order*: an order was confirmed, even if cancelled since; dated at its first
  confirmation (``sale_order.funnel_confirmed_at``, kept on cancellation);
- *Invoiced*: a posted customer invoice of those orders that credit notes did not
  reverse in full; dated at the earliest invoice date;
- *Paid*: every such invoice is paid or in payment (Odoo's status, in each
  invoice's currency), an order is still confirmed, and nothing is left to invoice
  (no quantity ordered but not invoiced, no draft invoice); dated at the last
  settlement, or the invoice date for an invoice with nothing to pay.

Both functions give the CTE ``milestone`` (one row per deal with an order
confirmed once; ``rank`` is the sequence of the step reached: 1 Order,
2 Invoiced, 3 Paid) for ``sales.funnel.fact``'s statement, which names the deals
in a CTE ``deal``.
"""

from odoo.tools import SQL

# An invoice's last settlement: reconciliation of its receivable (a debit: a
# customer invoice's total is never negative), or a payment matched without a
# journal entry of its own.
SETTLED = SQL(
    """
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
)


def milestones_cte(invoiced=True):
    """``milestone`` of the deals of ``deal``.

    One aggregation over the orders, their lines and invoices, whose aggregates
    ignore the rows the joins repeat (min, max, and, or): its number of groups is
    estimated from ``sale_order``'s statistics, which keeps the joins on
    ``milestone`` hashed on a million deals.

    ``invoiced=False`` says that no line of the deals' orders confirmed once
    has an invoice line: the invoices' columns are then empty, as the joins
    would leave them, and PostgreSQL does not plan those joins (half the
    planning of a confirmation's statement)."""
    if invoiced:
        invoice_columns = SQL(
            """m.id AS move_id, m.state AS move_state, m.invoice_date, m.payment_state,
                   -- a posted customer invoice that no credit note reversed
                   COALESCE(m.move_type = 'out_invoice' AND m.state = 'posted'
                            AND m.payment_state <> 'reversed', FALSE) AS counted"""
        )
        invoice_joins = SQL(
            """LEFT JOIN sale_order_line_invoice_rel rel ON rel.order_line_id = sol.id
              LEFT JOIN account_move_line aml ON aml.id = rel.invoice_line_id
              LEFT JOIN account_move m ON m.id = aml.move_id"""
        )
        settled = SETTLED
    else:
        invoice_columns = SQL(
            """NULL::integer AS move_id, NULL::varchar AS move_state,
                   NULL::date AS invoice_date, NULL::varchar AS payment_state,
                   FALSE AS counted"""
        )
        invoice_joins = SQL()
        settled = SQL("NULL::date")
    return SQL(
        """
        billing AS (
            SELECT so.opportunity_id AS lead_id, so.funnel_confirmed_at, so.state,
                   sol.display_type, sol.qty_invoiced, sol.product_uom_qty,
                   %(invoice_columns)s
              FROM sale_order so
              LEFT JOIN sale_order_line sol ON sol.order_id = so.id
              %(invoice_joins)s
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
        invoice_columns=invoice_columns,
        invoice_joins=invoice_joins,
        settled=settled,
    )


def invoiced_sql(lead_ids):
    """Whether a line of an order confirmed once of ``lead_ids`` has an invoice
    line: else their milestones need no join over invoices."""
    return SQL(
        """EXISTS (SELECT 1 FROM sale_order so
                     JOIN sale_order_line sol ON sol.order_id = so.id
                     JOIN sale_order_line_invoice_rel rel ON rel.order_line_id = sol.id
                    WHERE so.opportunity_id = ANY(%s) AND so.funnel_confirmed_at IS NOT NULL)""",
        list(lead_ids),
    )


def no_milestones_cte():
    """``milestone`` for deals none of which has an order confirmed once: no row,
    the same columns. PostgreSQL then does not plan the joins over orders and
    invoices, which took most of a stage write's refresh (planning, not running)."""
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
