from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def unlink(self):
        ids = self.ids
        res = super().unlink()
        # once deleted: a refusal raised by the unlink leaves the rows untouched
        self.env["sales.funnel.recorded.mixin"].sudo()._forget_deleted("user_id", ids)
        return res
