from odoo import models


class IrModuleModule(models.Model):
    _inherit = "ir.module.module"

    def _update_translations(self, filter_lang=None, overwrite=False):
        # Loading a language (or a module's terms) translates the stages in SQL:
        # the pipeline steps take their stages' names again, in every language.
        res = super()._update_translations(filter_lang=filter_lang, overwrite=overwrite)
        if "sales.funnel.step" in self.env:
            self.env["sales.funnel.step"]._sync_with_stages()
        return res
