from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def write(self, vals):
        res = super().write(vals)
        if "invoice_date" in vals:
            self._queue_funnel()
        return res

    def unlink(self):
        # looked up now: once deleted, an invoice no longer says whose it was
        queue = self.env["sales.funnel.queue"]
        queue._enqueue_deals(queue._deals_of(set(), self._funnel_invoice_ids()), stays=False)
        return super().unlink()

    def _compute_payment_state(self):
        # Posting, cancelling, paying and reversing all recompute the payment
        # state, whatever the path: the one place to hear of them. Queuing only
        # notes the ids; the deals are looked up once, before commit.
        self._queue_funnel()
        return super()._compute_payment_state()

    def _queue_funnel(self):
        self.env["sales.funnel.queue"]._enqueue_invoices(self._funnel_invoice_ids())

    def _funnel_invoice_ids(self):
        return [
            move.id
            for move in self
            if isinstance(move.id, int) and move.move_type in ("out_invoice", "out_refund")
        ]
