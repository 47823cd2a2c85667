import logging

from odoo import api, models
from odoo.tools import SQL

from .lost_race import LOST_RACE, RaceGuard, execute_racing

_logger = logging.getLogger(__name__)

# Deals, orders and invoices waiting to be recorded, in the transaction's precommit data.
FUNNEL_QUEUE = "sales_funnel_report.queue"
# Pipeline changes waiting to become one background job, in the same place.
PIPELINE_QUEUE = "sales_funnel_report.job_scope"
# Whether one of the deals recorded at once has an order confirmed once: a setting
# of the transaction, written and read by the statements of one round trip.
ORDERED_SETTING = "sales_funnel_report.ordered"
# Up to this many deals, the recording's statements are planned with nested loops
# only: over a few deals' rows they are the plans chosen anyway, and not costing
# hash and merge joins takes a tenth off planning them. Over many, the anti-joins
# against a CTE would compare every row with every other.
FEW_DEALS = 20
NESTED_LOOPS_ONLY = SQL(
    "SELECT set_config('enable_hashjoin', 'off', TRUE), set_config('enable_mergejoin', 'off', TRUE)"
)
PLANNER_RESET = SQL("RESET enable_hashjoin; RESET enable_mergejoin")


class SalesFunnelQueue(models.AbstractModel):
    """What a transaction changed that the funnel must record.

    Every event that changes a deal's stays or funnel rows is noted here, and
    nothing else is done while the transaction runs:

    - deal writes and creations (``crm_lead.py``): the deals, with their stays
      when the stage, archive state, loss reason, team or type changed;
    - sale orders (``sale_order.py``): confirmations, cancellations, a changed
      deal, deletions;
    - order lines (``sale_order_line.py``): what is left to invoice;
    - customer invoices (``account_move.py``): their payment status, which
      posting, paying, reversing and cancelling recompute, their date, their
      deletion;
    - stages (``crm_stage.py``) and teams (``crm_team.py``): pipeline changes,
      which concern many deals and become one background job
      (``sales.funnel.job``).

    Deals, orders and invoices are recorded once per transaction, before it
    commits, or earlier when stays or funnel rows are read
    (``sales.funnel.recorded.mixin``): a fixed number of statements whatever
    the number of deals and writes, and the stays take each transaction's
    outcome at its time, as the chatter's tracking does.
    """

    _name = "sales.funnel.queue"
    _description = "Sales Funnel Recording Queue"

    @api.model
    def _enqueue_deals(self, lead_ids, stays=True, reasons=False):
        """Queue these deals' funnel rows, and their stays with ``stays``;
        ``reasons`` says that their loss reason was written."""
        if not lead_ids:
            return
        queue = self._pending()
        if stays:
            queue["history"].update(lead_ids)
        if reasons:
            queue["reasons"] = True
        queue["facts"].update(lead_ids)

    @api.model
    def _enqueue_orders(self, order_ids):
        """Queue the deals of these sale orders, looked up when the queue is processed."""
        if order_ids:
            self._pending()["orders"].update(order_ids)

    @api.model
    def _enqueue_invoices(self, move_ids):
        """Queue the deals of the orders these customer invoices bill, looked up
        when the queue is processed."""
        if move_ids:
            self._pending()["moves"].update(move_ids)

    @api.model
    def _enqueue_pipeline(self, team_ids=(), stage_ids=(), all_deals=False):
        """Queue the recompute of the funnel rows of the deals of ``team_ids``
        and those in, through or with rows on ``stage_ids`` (every deal with
        ``all_deals``). Everything queued in one transaction makes one job,
        created before commit."""
        data = self.env.cr.precommit.data
        scope = data.get(PIPELINE_QUEUE)
        if scope is None:
            scope = data[PIPELINE_QUEUE] = {
                "all_deals": False,
                "team_ids": set(),
                "stage_ids": set(),
            }
            self.env.cr.precommit.add(self._create_pipeline_job)
        scope["all_deals"] |= bool(all_deals)
        scope["team_ids"].update(team_ids)
        scope["stage_ids"].update(stage_ids)

    @api.model
    def _create_pipeline_job(self):
        scope = self.env.cr.precommit.data.pop(PIPELINE_QUEUE, None)
        if scope and (scope["all_deals"] or scope["team_ids"] or scope["stage_ids"]):
            self.env["sales.funnel.job"]._create_job("facts", scope)

    @api.model
    def _pending(self):
        data = self.env.cr.precommit.data
        queue = data.get(FUNNEL_QUEUE)
        if queue is None:
            queue = data[FUNNEL_QUEUE] = {
                "history": set(),
                "reasons": False,
                "facts": set(),
                "orders": set(),
                "moves": set(),
            }
            self.env.cr.precommit.add(self.env["sales.funnel.queue"].sudo()._process)
        return queue

    @api.model
    def _process(self):
        """Record what is queued: the stays, then the funnel rows.

        Deal writes alone, the usual case, are recorded in one round trip
        (:meth:`_record_at_once`). A background batch (``sales.funnel.job``)
        that changed some of these deals' stays or rows after this transaction
        began makes writing them fail to serialize: the round trip is undone and
        the deals recorded step by step (:meth:`_record_step_by_step`), which
        tells the stays' race from the rows'.
        """
        # Taken out of the queue first: what is queued from now on registers anew.
        queue = self.env.cr.precommit.data.pop(FUNNEL_QUEUE, None)
        if not queue:
            return
        # The transaction's own writes are flushed before any savepoint: a conflict
        # on them is the user's, and fails the request as usual.
        self.env.flush_all()
        guard = RaceGuard(self.env.cr)
        if not (queue["orders"] or queue["moves"]):
            try:
                self._record_at_once(queue, guard)
            except LOST_RACE:
                if not guard.lost:
                    raise
                guard.rollback()
                self._invalidate_recorded()
            else:
                guard.close()
                return
        self._record_step_by_step(queue, guard)
        guard.close()

    @api.model
    def _record_at_once(self, queue, guard):
        """Record written deals in one round trip: their stays, then their funnel
        rows without milestones, unless one of them has an order confirmed once;
        the rows of those deals are then written by a second statement, with
        their milestones.

        The stays' statement and the rows' are each planned anew in every
        transaction (Odoo's pooled connections drop cached plans), and the
        milestones' joins more than double the rows' planning: most deals written
        have no order, and whether any has is only known once the statements
        run. So the answer is kept in a setting of the transaction that the
        rows' statement reads as it runs, the last statement returns it, and
        only then are the milestones planned, when needed."""
        facts = sorted(queue["facts"])
        if not facts:
            return
        few = len(facts) <= FEW_DEALS
        parts = [NESTED_LOOPS_ONLY] if few else []
        ask_ordered = SQL(
            """SELECT set_config(%s, EXISTS (
                   SELECT 1 FROM sale_order
                    WHERE opportunity_id = ANY(%s) AND funnel_confirmed_at IS NOT NULL
               )::text, TRUE)""",
            ORDERED_SETTING,
            facts,
        )
        if queue["history"]:
            # asked as the result of the stays' statement: one statement less
            parts.append(
                self.env["crm.lead.stage.history"]._record_sql(
                    sorted(queue["history"]), reasons=queue["reasons"], result=ask_ordered
                )
            )
        else:
            parts.append(ask_ordered)
        none_ordered = SQL("current_setting(%s) = 'false'", ORDERED_SETTING)
        parts += [
            self.env["sales.funnel.fact"]._rows_sql(
                SQL("lead_id = ANY(%s) AND %s", facts, none_ordered),
                SQL("l.id = ANY(%s) AND %s", facts, none_ordered),
                fulfilling=False,
                few=few,
            ),
        ]
        result = SQL("SELECT current_setting(%s)::boolean", ORDERED_SETTING)
        execute_racing(
            self.env.cr,
            SQL(";\n").join(parts),
            guard,
            # after the savepoint's release, in the same round trip
            then=SQL("%s; %s", PLANNER_RESET, result) if few else result,
        )
        [ordered] = self.env.cr.fetchone()
        self._invalidate_recorded()
        if ordered:
            self._refresh_facts(set(facts), True, True, guard)

    @api.model
    def _record_step_by_step(self, queue, guard):
        """Record the stays, then the funnel rows, each statement in its savepoint:
        the one that loses a race with a background batch is rolled back alone,
        and what it should have written is left to a job over those deals, done
        first, from what this transaction commits: their funnel rows, and their
        stays replayed from the chatter when the stays raced a rebuild of every
        deal's history (as its batches replay every deal). Stays that raced
        anything else (a replay of a few deals, the removal of a deleted user
        from them) are recorded, not replayed: the request fails and Odoo runs it
        again, as for any conflict, since a replay would give those deals' stays
        the salesperson and team of today. Failing the request for the rows
        would make Odoo run it again after a random wait of up to 2 s."""
        history, facts = sorted(queue["history"]), set(queue["facts"])
        try:
            self.env["crm.lead.stage.history"]._record(
                history, reasons=queue["reasons"], guard=guard
            )
        except LOST_RACE as error:
            if not guard.lost:
                raise
            guard.rollback()
            if not self.env["sales.funnel.job"]._rebuilding_history():
                raise
            self.env["crm.lead.stage.history"].invalidate_model()
            self._leave_to_job("history", history, error)
            facts -= set(history)
        fulfilling, invoiced = None, True
        if queue["orders"] or queue["moves"]:
            facts |= self._deals_of(queue["orders"], queue["moves"])
            if self._confirmed_in_cache(queue["orders"]):
                # a confirmation: asking whether the deals have invoices costs less
                # than planning the joins over them
                fulfilling, invoiced = True, None
        self._refresh_facts(facts, fulfilling, invoiced, guard)

    @api.model
    def _refresh_facts(self, facts, fulfilling, invoiced, guard):
        """Rewrite the funnel rows of ``facts`` in ``guard``; if that loses a race,
        leave them to a job (see :meth:`_record_step_by_step`)."""
        try:
            self.env["sales.funnel.fact"]._refresh(
                sorted(facts), fulfilling=fulfilling, invoiced=invoiced, guard=guard
            )
        except LOST_RACE as error:
            if not guard.lost:
                raise
            guard.rollback()
            self.env["sales.funnel.fact"].invalidate_model()
            self._leave_to_job("facts", facts, error)

    @api.model
    def _invalidate_recorded(self):
        self.env["crm.lead.stage.history"].invalidate_model()
        self.env["sales.funnel.fact"].invalidate_model()

    @api.model
    def _leave_to_job(self, kind, lead_ids, error):
        """Queue the recording of ``lead_ids`` that lost a race: a job of
        ``kind`` over those deals only (``sales.funnel.job._queue_recording``)."""
        if not lead_ids:
            return
        self.env["sales.funnel.job"]._queue_recording(kind, lead_ids)
        self.env.flush_all()
        _logger.info(
            "Funnel recording of %s deals lost a race with a background batch (%s); "
            "left to a job (%s)",
            len(lead_ids),
            error.pgcode,
            kind,
        )

    @api.model
    def _confirmed_in_cache(self, order_ids):
        """Whether one of these orders is known, from the cache, to have been
        confirmed once (the confirmation just written, usually)."""
        orders = self.env["sale.order"].browse(sorted(order_ids))
        field = orders._fields["funnel_confirmed_at"]
        return any(self.env.cache.get_values(orders, field))

    @api.model
    def _deals_of(self, order_ids, move_ids):
        """The deals of these sale orders and of the orders these invoices bill."""
        # An order's deal is usually in the cache (the order was just written):
        # only the others and the invoices' orders are looked up.
        orders = self.env["sale.order"].browse(sorted(order_ids))
        field = orders._fields["opportunity_id"]
        deals = {deal_id for deal_id in self.env.cache.get_values(orders, field) if deal_id}
        order_ids = list(self.env.cache.get_missing_ids(orders, field))
        if not order_ids and not move_ids:
            return deals
        self.env.flush_all()
        lookups = []
        if order_ids:
            lookups.append(
                SQL(
                    """
                SELECT so.opportunity_id
                  FROM sale_order so
                 WHERE so.id = ANY(%s) AND so.opportunity_id IS NOT NULL
                """,
                    order_ids,
                )
            )
        if move_ids:
            lookups.append(
                SQL(
                    """
                SELECT so.opportunity_id
                  FROM account_move_line aml
                  JOIN sale_order_line_invoice_rel rel ON rel.invoice_line_id = aml.id
                  JOIN sale_order_line sol ON sol.id = rel.order_line_id
                  JOIN sale_order so ON so.id = sol.order_id
                 WHERE aml.move_id = ANY(%s) AND so.opportunity_id IS NOT NULL
                """,
                    sorted(move_ids),
                )
            )
        self.env.cr.execute(SQL(" UNION ").join(lookups))
        return deals | {deal_id for (deal_id,) in self.env.cr.fetchall()}


class SalesFunnelRecordedMixin(models.AbstractModel):
    """Tables the queue writes: reading them records what the transaction has
    queued so far, so that a read in the middle of a transaction sees its own
    changes."""

    _name = "sales.funnel.recorded.mixin"
    _description = "Sales Funnel Rows Recorded from the Queue"

    def flush_model(self, fnames=None):
        self.env["sales.funnel.queue"].sudo()._process()
        return super().flush_model(fnames)

    @api.model
    def _forget_deleted(self, fname, ids):
        """Empty, in each table of the mixin that has it, the copies of ``fname``
        (``user_id``, ``team_id``, ``company_id``: kept without foreign keys)
        that name the deleted records ``ids``, as ``ON DELETE SET NULL`` did."""
        if not ids:
            return
        for name in self.env.registry.descendants([self._name], "_inherit"):
            model = self.env[name]
            if model._abstract or fname not in model._fields:
                continue
            model.flush_model([fname])
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET %s = NULL WHERE %s = ANY(%s)",
                    SQL.identifier(model._table),
                    SQL.identifier(fname),
                    SQL.identifier(fname),
                    list(ids),
                )
            )
            model.invalidate_model([fname])
