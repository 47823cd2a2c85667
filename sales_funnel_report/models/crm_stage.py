from odoo import api, models

# Changing any of these moves deals' positions or reached stages in the funnel.
PIPELINE_FIELDS = frozenset({"sequence", "team_id", "is_won"})
# A funnel step shows these of its stage.
STEP_FIELDS = frozenset({"name", "sequence"})


class CrmStage(models.Model):
    _inherit = "crm.stage"

    @api.model_create_multi
    def create(self, vals_list):
        stages = super().create(vals_list)
        self.env["sales.funnel.step"]._sync_with_stages(stages.ids)
        stages._refresh_funnel(stages._funnel_teams())
        return stages

    def write(self, vals):
        if not PIPELINE_FIELDS.intersection(vals):
            res = super().write(vals)
            if STEP_FIELDS.intersection(vals):
                self.env["sales.funnel.step"]._sync_with_stages(self.ids)
            return res
        teams_before = self._funnel_teams()
        res = super().write(vals)
        if STEP_FIELDS.intersection(vals):
            self.env["sales.funnel.step"]._sync_with_stages(self.ids)
        teams_after = self._funnel_teams()
        everyone = teams_before is None or teams_after is None
        self._refresh_funnel(None if everyone else teams_before | teams_after)
        return res

    def _funnel_teams(self):
        """Teams whose pipeline holds these stages; ``None`` when one of them has
        no team and so belongs to every pipeline."""
        if any(not stage.team_id for stage in self):
            return None
        return set(self.team_id.ids)

    @api.model
    def _refresh_funnel(self, team_ids):
        """Rebuild the funnel rows of the deals of ``team_ids`` (all deals when
        ``None``): set-based, but it grows with the number of deals concerned."""
        facts = self.env["sales.funnel.fact"]
        if team_ids is None:
            facts._refresh()
        elif team_ids:
            facts._refresh_teams(list(team_ids))
