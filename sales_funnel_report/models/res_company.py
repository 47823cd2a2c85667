from odoo import models


class ResCompany(models.Model):
    _inherit = "res.company"

    def unlink(self):
        self.env["sales.funnel.fact"].sudo()._forget_deleted("company_id", self.ids)
        return super().unlink()
