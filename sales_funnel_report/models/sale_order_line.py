from odoo import api, models


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    # What is left to invoice decides whether a deal is paid in full.
    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines.order_id._queue_funnel()
        return lines

    def write(self, vals):
        res = super().write(vals)
        if "product_uom_qty" in vals:
            self.order_id._queue_funnel()
        return res

    def unlink(self):
        self.order_id._queue_funnel()
        return super().unlink()
