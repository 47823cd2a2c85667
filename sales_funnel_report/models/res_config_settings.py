from odoo import _, fields, models
from odoo.exceptions import AccessError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    funnel_lost_reason_required = fields.Boolean(
        string="Loss Reason Required",
        config_parameter="sales_funnel_report.lost_reason_required",
        help="Deals can only be marked as lost with a loss reason.",
    )
    funnel_won_means = fields.Selection(
        [("stage", "Won Stage"), ("paid", "Paid in Full")],
        string="A Deal Is Won When",
        default="stage",
        required=True,
        config_parameter="sales_funnel_report.won_means",
        help="What the funnel's Won and Win Rate count: deals in a won stage (as the CRM "
        "counts them), or deals whose orders are invoiced and fully paid.",
    )

    def action_rebuild_stage_history(self):
        # Callable over RPC by any user on an empty recordset, so the button's
        # group in the view protects nothing: it replaces every company's stays.
        if not self.env.is_system():
            raise AccessError(self.env._(
                "Only administrators (Settings access) can rebuild the stage history."
            ))
        counts = self.env["crm.lead.stage.history"]._rebuild_from_tracking()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": _("Stage history rebuilt"),
                "message": _(
                    "%(stays)s stays rebuilt from the chatter of the deals; "
                    "%(replaced)s stays replaced.",
                    stays=counts["stays_rebuilt"] + counts["untracked_stays_opened"],
                    replaced=counts["stays_replaced"],
                ),
                "sticky": False,
            },
        }
