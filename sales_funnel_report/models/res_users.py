from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def unlink(self):
        self.env["sales.funnel.fact"].sudo()._forget_deleted("user_id", self.ids)
        return super().unlink()
