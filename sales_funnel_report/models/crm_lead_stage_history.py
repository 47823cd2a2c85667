from odoo import api, fields, models
from odoo.tools import SQL


class CrmLeadStageHistory(models.Model):
    """One stay of a deal in a stage.

    Rows are written only by :meth:`_record`, which reconciles the history of
    a set of deals with their current state in one statement; nobody edits
    them by hand (see the access rights).
    """

    _name = "crm.lead.stage.history"
    _description = "Stay of a deal in a stage"
    _order = "lead_id, date_in, id"
    _rec_name = "stage_id"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, ondelete="cascade", index=True, readonly=True
    )
    # A stage that is deleted takes the stays of the deals that visited it along.
    stage_id = fields.Many2one(
        "crm.stage", string="Stage", required=True, ondelete="cascade", index=True, readonly=True
    )
    date_in = fields.Datetime(string="Entered", required=True, readonly=True)
    date_out = fields.Datetime(string="Left", readonly=True)
    duration_days = fields.Float(
        string="Days", readonly=True, aggregator="avg",
        help="Exact time spent in the stage, in days; empty while the deal is still there.",
    )
    outcome = fields.Selection(
        [
            ("open", "Still there"),
            ("forward", "Moved forward"),
            ("back", "Moved back"),
            ("lost", "Lost"),
        ],
        required=True, default="open", readonly=True,
    )
    lost_reason_id = fields.Many2one(
        "crm.lost.reason", string="Loss Reason", ondelete="set null", readonly=True
    )
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    company_id = fields.Many2one("res.company", string="Company", readonly=True)

    _sql_constraints = [
        (
            "one_open_stay",
            "EXCLUDE (lead_id WITH =) WHERE (date_out IS NULL)",
            "A deal can only sit in one stage at a time.",
        ),
        (
            "closed_after_entered",
            "CHECK (date_out IS NULL OR date_out >= date_in)",
            "A stay cannot end before it began.",
        ),
    ]

    @api.model
    def _record(self, lead_ids):
        """Bring the stays of ``lead_ids`` in line with the deals' current state.

        One statement whatever the number of deals, at the transaction's time
        (``cr.now()``, the clock of Odoo's tracking):

        - an open stay whose deal was archived (lost) closes as ``lost``, with
          the deal's loss reason;
        - an open stay whose deal now sits in another stage closes as
          ``forward`` or ``back``, by stage order (sequence, id) at this moment;
        - an active deal with a stage and no open stay gets a new open stay;
        - a later write of the loss reason on a lost deal lands on its last
          lost stay (the lost wizard archives first, then writes the reason).

        Archived deals whose stage changes are not recorded: they stay lost
        where they were lost until restored.
        """
        if not lead_ids:
            return
        self.env.flush_all()
        now = self.env.cr.now()
        uid = self.env.uid
        self.env.cr.execute(SQL(
            """
            WITH lead AS (
                SELECT id, stage_id, active, lost_reason_id, user_id, team_id, company_id
                  FROM crm_lead
                 WHERE id = ANY(%(ids)s)
            ), closed AS (
                UPDATE crm_lead_stage_history h
                   SET date_out = %(now)s,
                       duration_days = EXTRACT(EPOCH FROM (%(now)s - h.date_in)) / 86400.0,
                       outcome = CASE
                           WHEN NOT lead.active THEN 'lost'
                           WHEN (ns.sequence, ns.id) > (os.sequence, os.id) THEN 'forward'
                           ELSE 'back' END,
                       lost_reason_id = CASE WHEN NOT lead.active THEN lead.lost_reason_id END,
                       write_uid = %(uid)s,
                       write_date = %(now)s
                  FROM lead
                  JOIN crm_stage os ON TRUE
                  LEFT JOIN crm_stage ns ON ns.id = lead.stage_id
                 WHERE h.lead_id = lead.id
                   AND h.date_out IS NULL
                   AND os.id = h.stage_id
                   AND (NOT lead.active OR lead.stage_id IS DISTINCT FROM h.stage_id)
             RETURNING h.id
            ), reason AS (
                UPDATE crm_lead_stage_history h
                   SET lost_reason_id = lead.lost_reason_id,
                       write_uid = %(uid)s,
                       write_date = %(now)s
                  FROM lead
                 WHERE h.lead_id = lead.id
                   AND NOT lead.active
                   AND h.outcome = 'lost'
                   AND h.lost_reason_id IS DISTINCT FROM lead.lost_reason_id
                   AND h.date_out = (SELECT max(last.date_out)
                                       FROM crm_lead_stage_history last
                                      WHERE last.lead_id = lead.id AND last.outcome = 'lost')
             RETURNING h.id
            )
            INSERT INTO crm_lead_stage_history (
                lead_id, stage_id, date_in, outcome, user_id, team_id, company_id,
                create_uid, create_date, write_uid, write_date)
            SELECT lead.id, lead.stage_id, %(now)s, 'open', lead.user_id, lead.team_id,
                   lead.company_id, %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM lead
             WHERE lead.active
               AND lead.stage_id IS NOT NULL
               AND NOT EXISTS (
                    SELECT 1
                      FROM crm_lead_stage_history h
                     WHERE h.lead_id = lead.id
                       AND h.date_out IS NULL
                       AND h.id NOT IN (SELECT id FROM closed))
            """,
            ids=list(lead_ids), now=now, uid=uid,
        ))
        self.invalidate_model()
