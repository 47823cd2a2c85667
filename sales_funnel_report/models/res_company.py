from odoo import models


class ResCompany(models.Model):
    _inherit = "res.company"

    def unlink(self):
        ids = self.ids
        res = super().unlink()
        # once deleted: a refusal raised by the unlink leaves the rows untouched
        self.env["sales.funnel.recorded.mixin"].sudo()._forget_deleted("company_id", ids)
        return res
