from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

FULFILMENT_CODES = [("order", "Order"), ("invoiced", "Invoiced"), ("paid", "Paid")]


class SalesFunnelStep(models.Model):
    """The funnel's axis: one step per pipeline stage, in pipeline order, then
    the fulfilment steps Order, Invoiced and Paid.

    Pipeline steps mirror their ``crm.stage`` (name with its translations,
    sequence) and are kept in step by :meth:`_sync_with_stages`; they are not
    edited here. Fulfilment steps are data of this module.
    """

    _name = "sales.funnel.step"
    _description = "Sales Funnel Step"
    # pipeline steps are created in stage id order, so id breaks ties as the stages' id does
    _order = "is_fulfilment, sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(required=True, default=1)
    stage_id = fields.Many2one(
        "crm.stage", ondelete="cascade", readonly=True, index="btree_not_null"
    )
    team_id = fields.Many2one(related="stage_id.team_id")
    code = fields.Selection(FULFILMENT_CODES, readonly=True)
    is_fulfilment = fields.Boolean(compute="_compute_is_fulfilment", store=True)

    _sql_constraints = [
        ("stage_uniq", "UNIQUE(stage_id)", "A stage has one funnel step."),
        ("code_uniq", "UNIQUE(code)", "A fulfilment step exists once."),
        (
            "stage_or_code",
            "CHECK((stage_id IS NULL) <> (code IS NULL))",
            "A funnel step is either a pipeline stage or a fulfilment step.",
        ),
    ]

    @api.model
    def _funnel_order(self):
        """Every step in the order the funnel shows them: pipeline order (sequence,
        id), then Order, Invoiced and Paid; each team that keeps a funnel of its
        own stages has its steps together, after the shared ones, so that several
        pipelines on one screen never interleave."""
        steps = self.sudo().search([])

        def key(step):
            team = step.stage_id.team_id
            own = bool(team.funnel_own_stages_only)
            block = (1, team.sequence, team.id) if own else (0, 0, 0)
            return (step.is_fulfilment, block, step.sequence, step.id)

        return steps.sorted(key)

    @api.model
    @api.readonly
    def get_funnel_order(self):
        """The ids of the steps in the funnel's order, for the web client."""
        self.check_access("read")
        return self._funnel_order().ids

    @api.depends("name", "stage_id.team_id")
    @api.depends_context("lang")
    def _compute_display_name(self):
        # a stage's name says which pipeline it is of only when no other step has it
        names = [step.name for step in self.sudo().search([("stage_id", "!=", False)])]
        for step in self:
            if step.stage_id.team_id and names.count(step.name) > 1:
                step.display_name = f"{step.name} ({step.stage_id.team_id.name})"
            else:
                step.display_name = step.name

    @api.depends("code")
    def _compute_is_fulfilment(self):
        for step in self:
            step.is_fulfilment = bool(step.code)

    @api.model
    def _sync_with_stages(self, stage_ids=None):
        """Give every stage of ``stage_ids`` (all when ``None``) its step, with
        the stage's name, translations included, and sequence. Two statements."""
        self.env.flush_all()
        only = SQL("TRUE") if stage_ids is None else SQL("s.id = ANY(%s)", list(stage_ids))
        self.env.cr.execute(
            SQL(
                """
            UPDATE sales_funnel_step st
               SET name = s.name, sequence = s.sequence
              FROM crm_stage s
             WHERE st.stage_id = s.id AND %s
               AND (st.name IS DISTINCT FROM s.name OR st.sequence <> s.sequence)
            """,
                only,
            )
        )
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO sales_funnel_step (name, sequence, stage_id, is_fulfilment,
                                           create_uid, create_date, write_uid, write_date)
            SELECT s.name, s.sequence, s.id, FALSE,
                   %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
              FROM crm_stage s
             WHERE %(only)s
               AND NOT EXISTS (SELECT 1 FROM sales_funnel_step st WHERE st.stage_id = s.id)
             ORDER BY s.id
            """,
                uid=self.env.uid,
                only=only,
            )
        )
        self.invalidate_model()

    def write(self, vals):
        # fulfilment steps keep their order (the funnel's rules rely on it); pipeline
        # steps are written by their stage only. Whoever may not write steps at all
        # hears that first, not the rule.
        self.check_access("write")
        if any(
            self._field_changes(step, fname, value) and (fname != "name" or step.stage_id)
            for step in self
            for fname, value in vals.items()
        ):
            self._raise_follows_stages()
        return super().write(vals)

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=None):
        # The translation dialog writes the names in SQL, past ``write``: a pipeline
        # step's name, in every language, is its stage's (see _sync_with_stages).
        self.check_access("write")
        if self.stage_id:
            self._raise_follows_stages()
        return super()._update_field_translations(
            field_name, translations, digest=digest, source_lang=source_lang
        )

    @api.model
    def _raise_follows_stages(self):
        raise UserError(
            self.env._(
                "Funnel steps follow the CRM stages, then Order, Invoiced and Paid: "
                "only the name of a fulfilment step can be changed here. "
                "Rename or reorder the stages in the CRM configuration."
            )
        )

    @staticmethod
    def _field_changes(step, fname, value):
        current = step[fname]
        if isinstance(current, models.BaseModel):
            current = current.id
        return (current or False) != (value or False)

    @api.ondelete(at_uninstall=False)
    def _unlink_only_with_stage(self):
        if self.filtered("code"):
            raise UserError(
                self.env._("The fulfilment steps Order, Invoiced and Paid cannot be deleted.")
            )
