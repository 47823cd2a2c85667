from odoo import fields, models


class MailMessage(models.Model):
    _inherit = "mail.message"

    # Merging deals moves the merged deals' chatter onto the deal they merge into;
    # the stage tracking in it is the merged deals' history, not this deal's, and
    # the rebuild from the chatter leaves it out (see crm.lead's merge).
    funnel_merged_from_id = fields.Integer(
        string="Merged From Deal",
        readonly=True,
        copy=False,
        groups="base.group_system",
    )
