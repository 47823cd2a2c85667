from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    funnel_lost_reason_required = fields.Boolean(
        string="Loss Reason Required",
        config_parameter="sales_funnel_report.lost_reason_required",
        help="Deals can only be marked as lost with a loss reason.",
    )
