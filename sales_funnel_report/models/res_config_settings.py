from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

from ..report.sales_funnel_report import WON_MEANS_PARAM
from .crm_lead import LOST_REASON_REQUIRED_PARAM
from .sales_funnel_typical_time import DEFAULT_WINDOW_MONTHS, MAX_WINDOW_MONTHS


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

    funnel_stuck_reminders = fields.Boolean(
        string="Stuck Deal Reminders",
        config_parameter="sales_funnel_report.stuck_reminders",
        help="Every day, schedule an activity for the salesperson of each deal that has "
        "just become stuck in its stage.",
    )
    funnel_typical_window_months = fields.Integer(
        string="Typical Stage Times Over (Months)",
        default=DEFAULT_WINDOW_MONTHS,
        config_parameter="sales_funnel_report.typical_window_months",
        help="How far back the typical time of each stage is learned from: the stays that "
        "ended in this many last months.",
    )

    @api.constrains("funnel_typical_window_months")
    def _check_funnel_typical_window_months(self):
        for settings in self:
            months = settings.funnel_typical_window_months
            if not 1 <= months <= MAX_WINDOW_MONTHS:
                raise ValidationError(
                    self.env._(
                        "Typical stage times are learned over 1 to %(max)s months; "
                        "%(months)s was given.",
                        max=MAX_WINDOW_MONTHS,
                        months=months,
                    )
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

    def action_learn_typical_times(self):
        """Learn the typical stage times again and send the due reminders now, in
        the background (the daily scheduled action, triggered): after a change of
        the window or of the stages."""
        # Callable over RPC by any user on an empty recordset.
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(self.env._("Only sales managers can update the typical stage times."))
        self.env.ref("sales_funnel_report.ir_cron_sales_funnel_stuck").sudo()._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "title": self.env._("Updating the typical stage times"),
                "message": self.env._(
                    "The typical time of every stage is being learned again from the stage "
                    "history, in the background."
                ),
                "sticky": False,
            },
        }
