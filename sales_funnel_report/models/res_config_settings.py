from odoo import fields, models
from odoo.exceptions import AccessError

from ..report.sales_funnel_report import WON_MEANS_PARAM
from .crm_lead import LOST_REASON_REQUIRED_PARAM


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    funnel_lost_reason_required = fields.Boolean(
        string="Loss Reason Required",
        config_parameter=LOST_REASON_REQUIRED_PARAM,
        help="Deals can only be marked as lost with a loss reason.",
    )
    funnel_won_means = fields.Selection(
        [("stage", "Won Stage"), ("paid", "Paid in Full")],
        string="A Deal Is Won When",
        default="stage",
        required=True,
        config_parameter=WON_MEANS_PARAM,
        help="What the funnel's Won and Win Rate count: deals in a won stage (as the CRM "
        "counts them), or deals whose orders are invoiced and fully paid.",
    )

    def action_rebuild_stage_history(self):
        """Queue the rebuild of every deal's stage history from the chatter; it runs
        in the background, in batches, and tells the administrator when it ends."""
        # Callable over RPC by any user on an empty recordset, so the button's
        # group in the view protects nothing: it replaces every company's stays.
        if not self.env.is_system():
            raise AccessError(
                self.env._("Only administrators (Settings access) can rebuild the stage history.")
            )
        self.env["sales.funnel.job"]._queue_rebuild()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "title": self.env._("Rebuilding the stage history"),
                "message": self.env._(
                    "The stage history of every deal is being rebuilt from the chatter, "
                    "in the background, while everyone keeps working. The funnel shows "
                    "its progress; you will be notified when it is done."
                ),
                "sticky": False,
            },
        }
