from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

# Writing any of these changes what the funnel shows for a deal.
FUNNEL_FIELDS = frozenset(
    {
        "stage_id",
        "active",
        "lost_reason_id",
        "team_id",
        "user_id",
        "company_id",
        "type",
        "expected_revenue",
    }
)
# Deals waiting to be recorded, in the transaction's precommit data.
FUNNEL_QUEUE = "sales_funnel_report.queue"
# Writing any of these may open or close a stay.
HISTORY_FIELDS = frozenset({"stage_id", "active", "lost_reason_id", "team_id", "type"})


class CrmLead(models.Model):
    _inherit = "crm.lead"

    stage_history_ids = fields.One2many("crm.lead.stage.history", "lead_id", readonly=True)
    stage_history_count = fields.Integer(compute="_compute_stage_history_count")
    # The deals behind a number of the funnel: those with a funnel row in the
    # number's domain (drill-down from the funnel's views, see static/src/views).
    funnel_report_ids = fields.One2many("sales.funnel.report", "lead_id", readonly=True)

    def _compute_stage_history_count(self):
        counts = dict(
            self.env["crm.lead.stage.history"]._read_group(
                [("lead_id", "in", self.ids)], ["lead_id"], ["__count"]
            )
        )
        for lead in self:
            lead.stage_history_count = counts.get(lead, 0)

    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        leads._record_funnel(history=True)
        return leads

    def write(self, vals):
        if vals.get("active") is False:
            self._check_lost_reason(vals)
        res = super().write(vals)
        if FUNNEL_FIELDS.intersection(vals):
            self._record_funnel(history=bool(HISTORY_FIELDS.intersection(vals)))
        return res

    def _record_funnel(self, history):
        """Queue these deals for recording. The queue is processed once per
        transaction, at commit, or earlier when stays or funnel rows are read
        (see ``_flush_funnel_queue``): a fixed number of statements whatever the
        number of deals and writes, and the stays reflect each transaction's
        outcome at its time, as the chatter's tracking does."""
        if not self:
            return
        queue = self._funnel_queue()
        if history:
            queue["history"].update(self.ids)
        queue["facts"].update(self.ids)

    @api.model
    def _record_funnel_of(self, kind, ids):
        """Queue the deals of these sale orders (``kind`` "orders") or customer
        invoices ("moves"), looked up when the queue is processed."""
        if ids:
            self._funnel_queue()[kind].update(ids)

    @api.model
    def _funnel_queue(self):
        data = self.env.cr.precommit.data
        queue = data.get(FUNNEL_QUEUE)
        if queue is None:
            queue = data[FUNNEL_QUEUE] = {
                "history": set(),
                "facts": set(),
                "orders": set(),
                "moves": set(),
            }
            self.env.cr.precommit.add(self.env["crm.lead"].sudo()._flush_funnel_queue)
        return queue

    @api.model
    def _flush_funnel_queue(self):
        # Taken out of the queue first: what is queued from now on registers anew.
        queue = self.env.cr.precommit.data.pop(FUNNEL_QUEUE, None)
        if not queue:
            return
        history, facts = sorted(queue["history"]), queue["facts"]
        self.env["crm.lead.stage.history"]._record(history)
        if queue["orders"] or queue["moves"]:
            facts |= self._deals_of_sales(queue["orders"], queue["moves"])
        self.env["sales.funnel.fact"]._refresh(sorted(facts))

    @api.model
    def _deals_of_sales(self, order_ids, move_ids):
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

    def _merge_dependences_history(self, opportunities):
        # Odoo moves the merged deals' chatter onto this deal. Their stage tracking
        # stays theirs: marked, the rebuild leaves it out, as live recording keeps
        # this deal's own stays and deletes theirs with them.
        self.env["mail.message"].flush_model(["model", "res_id"])
        self.env.cr.execute(
            SQL(
                """
            UPDATE mail_message SET funnel_merged_from_id = res_id
             WHERE model = 'crm.lead' AND res_id = ANY(%s) AND funnel_merged_from_id IS NULL
            """,
                opportunities.ids,
            )
        )
        self.env["mail.message"].invalidate_model(["funnel_merged_from_id"])
        return super()._merge_dependences_history(opportunities)

    def action_set_lost(self, **additional_values):
        # The reason arrives in a second write, after the archive: let the archive through.
        leads = self
        if additional_values.get("lost_reason_id"):
            leads = self.with_context(sales_funnel_lost_reason_given=True)
        elif self._lost_reason_required():
            raise UserError(self._lost_reason_missing_message())
        return super(CrmLead, leads).action_set_lost(**additional_values)

    def _check_lost_reason(self, vals):
        if (
            vals.get("lost_reason_id")
            or self.env.context.get("sales_funnel_lost_reason_given")
            or not self._lost_reason_required()
        ):
            return
        if any(lead.active and not lead.lost_reason_id for lead in self):
            raise UserError(self._lost_reason_missing_message())

    @api.model
    def _lost_reason_required(self):
        return bool(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("sales_funnel_report.lost_reason_required")
        )

    @api.model
    def _lost_reason_missing_message(self):
        return _(
            "A loss reason is required to mark a deal as lost. Use the Lost button of the "
            "deal and choose the reason in the window it opens."
        )

    def action_view_stage_history(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sales_funnel_report.crm_lead_stage_history_action"
        )
        action["domain"] = [("lead_id", "=", self.id)]
        action["context"] = {"create": False}
        return action
