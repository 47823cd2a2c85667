from odoo import api, fields, models
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
# Config parameter: deals are marked lost only with a loss reason.
LOST_REASON_REQUIRED_PARAM = "sales_funnel_report.lost_reason_required"
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
        self.env["sales.funnel.queue"]._enqueue_deals(leads.ids)
        return leads

    def write(self, vals):
        if vals.get("active") is False:
            self._check_lost_reason(vals)
        res = super().write(vals)
        if FUNNEL_FIELDS.intersection(vals):
            self.env["sales.funnel.queue"]._enqueue_deals(
                self.ids,
                stays=bool(HISTORY_FIELDS.intersection(vals)),
                reasons="lost_reason_id" in vals,
            )
        return res

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
        return bool(self.env["ir.config_parameter"].sudo().get_param(LOST_REASON_REQUIRED_PARAM))

    @api.model
    def _lost_reason_missing_message(self):
        return self.env._(
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
