from odoo import api, fields, models
from odoo.tools import SQL

# Writing any of these changes where the order's deal stands in fulfilment.
FULFILMENT_FIELDS = frozenset({"state", "opportunity_id", "funnel_confirmed_at"})


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # the funnel looks up a deal's orders on every write of the deal or its orders
    opportunity_id = fields.Many2one(index="btree_not_null")
    # Kept when the order is cancelled, which is how the funnel knows a cancelled
    # order had been confirmed: its deal was lost at fulfilment, not before.
    funnel_confirmed_at = fields.Datetime(
        string="First Confirmed",
        readonly=True,
        copy=False,
        help="When the order was first confirmed.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("state") == "sale" and not vals.get("funnel_confirmed_at"):
                vals["funnel_confirmed_at"] = vals.get("date_order") or fields.Datetime.now()
        orders = super().create(vals_list)
        orders._queue_funnel()
        return orders

    def write(self, vals):
        # Confirmation is the status becoming "Sales Order", whichever way it is
        # written (action_confirm also sets date_order to now in the same write).
        first = (
            self.filtered(lambda order: not order.funnel_confirmed_at)
            if vals.get("state") == "sale"
            else self.browse()
        )
        if "opportunity_id" in vals:
            self._queue_funnel_deals_now()
        res = super().write(vals)
        if first:
            first.funnel_confirmed_at = vals.get("date_order") or fields.Datetime.now()
        if FULFILMENT_FIELDS.intersection(vals):
            self._queue_funnel()
        return res

    def unlink(self):
        self._queue_funnel_deals_now()
        return super().unlink()

    def _queue_funnel(self):
        """Queue the deals of these orders, of those confirmed once (a quotation
        changes nothing in the funnel), looked up before commit."""
        self.env["sales.funnel.queue"]._enqueue_orders(self.filtered("funnel_confirmed_at").ids)

    def _queue_funnel_deals_now(self):
        # the deal an order leaves, or whose order is deleted: known only now
        self.env["sales.funnel.queue"]._enqueue_deals(
            self.filtered("funnel_confirmed_at").opportunity_id.ids, stays=False
        )

    @api.model
    def _fill_funnel_confirmed_at(self):
        """Date the first confirmation of existing orders, in one statement, from
        the chatter's tracking of their status:

        - first tracked change leaves "Sales Order": confirmed untracked, in the
          transaction that created it, so at its creation;
        - else the first tracked change to "Sales Order";
        - else, for an order still confirmed, ``date_order``, which confirmation sets.
        """
        state = self.env["ir.model.fields"]._get(self._name, "state")
        labels = sorted(
            {
                dict(
                    self._fields["state"]._description_selection(self.with_context(lang=lang).env)
                )["sale"]
                for lang, _name in self.env["res.lang"].get_installed()
            }
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
            WITH tracked AS (
                SELECT m.res_id, m.date, m.id, v.old_value_char, v.new_value_char
                  FROM mail_message m
                  JOIN mail_tracking_value v ON v.mail_message_id = m.id
                 WHERE m.model = 'sale.order' AND v.field_id = %(field)s
            )
            UPDATE sale_order so
               SET funnel_confirmed_at = COALESCE(
                       (SELECT CASE WHEN t.old_value_char = ANY(%(labels)s) THEN so.create_date END
                          FROM tracked t WHERE t.res_id = so.id
                         ORDER BY t.date, t.id LIMIT 1),
                       (SELECT min(t.date) FROM tracked t
                         WHERE t.res_id = so.id AND t.new_value_char = ANY(%(labels)s)),
                       CASE WHEN so.state = 'sale' THEN so.date_order END)
             WHERE so.funnel_confirmed_at IS NULL AND so.state IN ('sale', 'cancel')
            """,
                field=state.id,
                labels=labels,
            )
        )
        self.invalidate_model(["funnel_confirmed_at"])
