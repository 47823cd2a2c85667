from odoo import fields, models


class CrmLeadLost(models.TransientModel):
    _inherit = "crm.lead.lost"

    lost_reason_required = fields.Boolean(
        default=lambda self: self.env["crm.lead"]._lost_reason_required()
    )
