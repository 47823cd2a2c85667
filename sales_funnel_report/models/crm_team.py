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
        before = {team.id: bool(team.funnel_own_stages_only) for team in self}
        res = super().write(vals)
        changed = self.filtered(lambda team: bool(team.funnel_own_stages_only) != before[team.id])
        if changed:
            self.env["sales.funnel.queue"]._enqueue_pipeline(team_ids=changed.ids)
        return res

    def unlink(self):
        # the deals lose their team, and with it their pipeline: they cannot be
        # told by their team any more once it is gone
        ids = self.ids
        if ids:
            self.env["sales.funnel.queue"]._enqueue_pipeline(all_deals=True)
        res = super().unlink()
        self.env["sales.funnel.recorded.mixin"].sudo()._forget_deleted("team_id", ids)
        return res
