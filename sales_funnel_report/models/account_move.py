from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def write(self, vals):
        res = super().write(vals)
        if "invoice_date" in vals:
            self._queue_funnel()
        return res

    def _compute_payment_state(self):
        # Posting, cancelling, paying and reversing all recompute the payment
        # state, whatever the path: the one place to hear of them. Queuing only
        # notes the ids; the deals are looked up once, before commit.
        self._queue_funnel()
        return super()._compute_payment_state()

    def _queue_funnel(self):
        ids = [
            move.id for move in self
            if isinstance(move.id, int) and move.move_type in ("out_invoice", "out_refund")
        ]
        self.env["crm.lead"]._record_funnel_of("moves", ids)
