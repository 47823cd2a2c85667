from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

# Changing any of these moves deals' positions or reached stages in the funnel.
PIPELINE_FIELDS = ("sequence", "team_id", "is_won")
# A funnel step shows these of its stage.
STEP_FIELDS = frozenset({"name", "sequence"})
# The longest limit a stage accepts, in days (ten years): anything longer is a typo.
MAX_ROTTING_DAYS = 3650


class CrmStage(models.Model):
    _inherit = "crm.stage"

    # Odoo 19's name and unit (crm.stage.rotting_threshold_days, "Days to rot"), so
    # that a database upgraded to 19 keeps the managers' limits. Here it counts the
    # days a deal has spent in the stage, and 0 means "learned from the history".
    rotting_threshold_days = fields.Integer(
        string="Days to rot",
        default=0,
        help="A deal that has spent more whole days than this in the stage is stuck. "
        "0: the limit is learned from the history, the 75th percentile of the time deals "
        "spent in this stage over the last months (none with fewer than 10 stays).",
    )
    funnel_typical_time_ids = fields.One2many(
        "sales.funnel.typical.time", "stage_id", string="Typical Time", readonly=True
    )

    @api.constrains("rotting_threshold_days")
    def _check_rotting_threshold_days(self):
        for stage in self:
            if not 0 <= (stage.rotting_threshold_days or 0) <= MAX_ROTTING_DAYS:
                raise ValidationError(
                    self.env._(
                        "Days to rot of stage %(stage)s must be between 0 and %(max)s days "
                        "(0: learned from the history); %(days)s was given.",
                        stage=stage.name,
                        max=MAX_ROTTING_DAYS,
                        days=stage.rotting_threshold_days,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        stages = super().create(vals_list)
        self.env["sales.funnel.step"]._sync_with_stages(stages.ids)
        stages._queue_funnel_update()
        return stages

    def write(self, vals):
        # Only a real change queues work: the stage list saves every stage of a drag.
        before = {stage.id: stage._pipeline_key() for stage in self}
        res = super().write(vals)
        if STEP_FIELDS.intersection(vals):
            self.env["sales.funnel.step"]._sync_with_stages(self.ids)
        changed = self.filtered(lambda stage: stage._pipeline_key() != before[stage.id])
        if changed:
            teams_before = {before[stage.id][1] for stage in changed}
            changed._queue_funnel_update(teams_before)
        return res

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=None):
        # the translation dialog writes a name in SQL, past ``write``
        res = super()._update_field_translations(
            field_name, translations, digest=digest, source_lang=source_lang
        )
        if field_name in STEP_FIELDS:
            self.env["sales.funnel.step"]._sync_with_stages(self.ids)
        return res

    def unlink(self):
        self._queue_funnel_update()
        self._queue_deals_passed_through()
        return super().unlink()

    def _pipeline_key(self):
        # NULL is_won is false (unset booleans are stored NULL)
        return (self.sequence, self.team_id.id, bool(self.is_won))

    def _queue_deals_passed_through(self):
        """Queue the recompute of the funnel rows of the other teams' deals that
        had stays in these stages, before their stays go with them: the pipeline
        update finds deals by their stays, and these will have none left there
        (their remaining stays date the steps they skipped)."""
        if any(not stage.team_id for stage in self):
            return  # a stage in every pipeline: the update takes every deal
        self.env["crm.lead.stage.history"].flush_model(["stage_id", "lead_id"])
        self.env["crm.lead"].flush_model(["team_id"])
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT h.lead_id
                     FROM crm_lead_stage_history h
                     JOIN crm_lead l ON l.id = h.lead_id
                    WHERE h.stage_id = ANY(%s)
                      AND (l.team_id IS NULL OR l.team_id <> ALL(%s))""",
                self.ids,
                self.team_id.ids,
            )
        )
        lead_ids = [lead_id for (lead_id,) in self.env.cr.fetchall()]
        if lead_ids:
            self.env["sales.funnel.job"]._queue_recording("facts", lead_ids)

    def _queue_funnel_update(self, teams_before=()):
        """Queue the recompute of the funnel rows of every deal these stages
        concern: the deals of their teams (before and after the change), and the
        deals of other teams that sit in, went through or have rows on them (a
        deal keeps its stage when its team changes). A stage of no team is in
        every pipeline: every deal."""
        team_ids = set(self.team_id.ids) | set(teams_before)
        everyone = any(not stage.team_id for stage in self) or False in team_ids
        self.env["sales.funnel.queue"]._enqueue_pipeline(
            team_ids=team_ids - {False},
            stage_ids=self.ids,
            all_deals=everyone,
        )
