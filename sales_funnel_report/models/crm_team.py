from odoo import fields, models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    funnel_own_stages_only = fields.Boolean(
        string="Funnel of Own Stages Only",
        help="The team's funnel shows only the stages of this team. By default it also "
        "shows the stages shared by all teams, as the pipeline does; deals that never "
        "used them count them as skipped.",
    )

    def write(self, vals):
        res = super().write(vals)
        if "funnel_own_stages_only" in vals:
            self.env["sales.funnel.fact"]._refresh_teams(self.ids)
        return res
