from odoo import api, fields, models
from odoo.tools import SQL

from .lost_race import execute_racing
from .many2one_copy import Many2oneCopy


class CrmLeadStageHistory(models.Model):
    """One stay of a deal in a stage.

    Rows are written by :meth:`_record`, which reconciles the history of a
    set of deals with their current state in one statement, and by the
    rebuild from the chatter (``sales.funnel.rebuild``); nobody edits them by
    hand (see the access rights). A stay's times are its own (``date_in``,
    ``date_out``); who moved the deal is in the chatter: no author columns,
    whose keys were checked on every stay written.
    """

    _name = "crm.lead.stage.history"
    _inherit = ["sales.funnel.recorded.mixin"]
    _description = "Stay of a deal in a stage"
    _log_access = False
    _order = "lead_id, date_in, id"
    _rec_name = "stage_id"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, ondelete="cascade", index=True, readonly=True
    )
    # A stage that is deleted takes the stays of the deals that visited it along.
    stage_id = fields.Many2one(
        "crm.stage", required=True, ondelete="cascade", index=True, readonly=True
    )
    date_in = fields.Datetime(string="Entered", required=True, readonly=True)
    date_out = fields.Datetime(string="Left", readonly=True)
    duration_days = fields.Float(
        string="Days",
        readonly=True,
        aggregator="avg",
        help="Exact time spent in the stage, in days; empty while the deal is still there.",
    )
    # Kept apart from duration_days, so that averages stay over finished stays.
    age_days = fields.Float(
        string="Running For",
        compute="_compute_age_days",
        help="Days the deal has been in the stage so far, while it is still there (the "
        "stay is running); empty for finished stays.",
    )
    outcome = fields.Selection(
        [
            ("open", "Still there"),
            ("forward", "Moved forward"),
            ("back", "Moved back"),
            ("lost", "Lost"),
        ],
        required=True,
        default="open",
        readonly=True,
    )
    lost_reason_id = fields.Many2one(
        "crm.lost.reason", string="Loss Reason", ondelete="set null", readonly=True
    )
    # the deal's when the stay opened
    user_id = Many2oneCopy("res.users", string="Salesperson", readonly=True)
    team_id = Many2oneCopy("crm.team", string="Sales Team", readonly=True)
    company_id = Many2oneCopy("res.company", readonly=True)

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

    @api.depends("date_in", "date_out")
    def _compute_age_days(self):
        now = self.env.cr.now()
        for stay in self:
            running = stay.date_in and not stay.date_out
            stay.age_days = (
                max(0.0, (now - stay.date_in).total_seconds() / 86400.0) if running else 0.0
            )

    @api.model
    def _record(self, lead_ids, at=None, reasons=True, guard=None):
        """Bring the stays of ``lead_ids`` in line with the deals' current state
        (:meth:`_record_sql`). Returns how many stays were closed as lost,
        closed by a move, opened, and given a later reason. ``guard``: the
        ``lost_race.RaceGuard`` to run the statement in."""
        if lead_ids is not None and not lead_ids:
            return {}
        self.env.flush_all()
        execute_racing(self.env.cr, self._record_sql(lead_ids, at=at, reasons=reasons), guard)
        lost, moved, opened, later = self.env.cr.fetchone()
        self.invalidate_model()
        return {"lost": lost, "moved": moved, "opened": opened, "reasons": later}

    @api.model
    def _record_sql(self, lead_ids, at=None, reasons=True, result=None):
        """The statement that brings the stays of ``lead_ids`` in line with the
        deals' current state.

        Run for the deals a transaction changed, once before it commits (see
        ``sales.funnel.queue``). One statement whatever the number of deals,
        at the transaction's time (``cr.now()``, the clock of Odoo's tracking):

        - times never go back for a deal (a clock set back is clamped to its
          last recorded time);
        - an open stay whose deal was archived (lost) closes as ``lost``, with
          the deal's loss reason;
        - an open stay whose deal now sits in another stage closes as
          ``forward`` or ``back``, by stage order (sequence, id) at this moment;
          a deal whose stage was emptied keeps its stay until it gets a stage;
        - an active deal with a stage and no open stay gets a new open stay;
        - a later write of the loss reason on a lost deal lands on its last
          lost stay (the lost wizard archives first, then writes the reason).

        Archived deals whose stage changes are not recorded: they stay lost
        where they were lost until restored.

        ``lead_ids=None`` means every deal; ``at`` is an SQL time over the deal
        (alias ``l``) to use instead of the transaction's; ``reasons=False`` says
        that no deal's loss reason changed since it was last recorded, which
        leaves the later-reason rule out of the statement (planning it was a
        tenth of a stage write's recording). The statement returns how many
        stays it closed as lost, closed by a move, opened and gave a later
        reason, or what the ``SELECT`` ``result`` returns, when given: the
        statement's changes run all the same.
        """
        return SQL(
            """
            WITH lead AS (
                -- time never goes back for a deal: a clock set back is clamped
                -- an unset (NULL) active is archived, as Odoo's ('active', '=', True) reads it
                SELECT l.id, l.stage_id, COALESCE(l.active, FALSE) AS active, l.lost_reason_id,
                       l.user_id, l.team_id, l.company_id,
                       GREATEST(%(at)s, (
                           SELECT max(COALESCE(h.date_out, h.date_in))
                             FROM crm_lead_stage_history h
                            WHERE h.lead_id = l.id)) AS t
                  FROM crm_lead l
                 WHERE %(only)s
            ), closed AS (
                UPDATE crm_lead_stage_history h
                   SET date_out = lead.t,
                       duration_days = EXTRACT(EPOCH FROM (lead.t - h.date_in)) / 86400.0,
                       outcome = CASE
                           WHEN NOT lead.active THEN 'lost'
                           WHEN (ns.sequence, ns.id) > (os.sequence, os.id) THEN 'forward'
                           ELSE 'back' END,
                       lost_reason_id = CASE WHEN NOT lead.active THEN lead.lost_reason_id END
                  FROM lead
                  JOIN crm_stage os ON TRUE
                  LEFT JOIN crm_stage ns ON ns.id = lead.stage_id
                 WHERE h.lead_id = lead.id
                   AND h.date_out IS NULL
                   AND os.id = h.stage_id
                   -- a deal whose stage is emptied stays where it was, as the replay
                   -- of the chatter reads it (a stage can be emptied only by code)
                   AND (NOT lead.active OR lead.stage_id <> h.stage_id)
             RETURNING h.id, h.outcome
            )%(reason)s, opened AS (
                INSERT INTO crm_lead_stage_history (
                    lead_id, stage_id, date_in, outcome, user_id, team_id, company_id)
                SELECT lead.id, lead.stage_id, lead.t, 'open', lead.user_id, lead.team_id,
                       lead.company_id
                  FROM lead
                 WHERE lead.active
                   AND lead.stage_id IS NOT NULL
                   AND NOT EXISTS (
                        SELECT 1
                          FROM crm_lead_stage_history h
                         WHERE h.lead_id = lead.id
                           AND h.date_out IS NULL
                           AND NOT EXISTS (SELECT 1 FROM closed WHERE closed.id = h.id))
             RETURNING id
            )
            %(result)s
            """,
            only=SQL("TRUE") if lead_ids is None else SQL("l.id = ANY(%s)", list(lead_ids)),
            reason=SQL(", %s", self._later_reason_cte()) if reasons else SQL(),
            # a data-modifying CTE runs whether or not the result reads it
            result=result
            or SQL(
                """SELECT (SELECT count(*) FROM closed WHERE outcome = 'lost'),
                          (SELECT count(*) FROM closed WHERE outcome <> 'lost'),
                          (SELECT count(*) FROM opened),
                          %s""",
                SQL("(SELECT count(*) FROM reason)") if reasons else SQL("0"),
            ),
            at=at if at is not None else SQL("%s::timestamp", self.env.cr.now()),
        )

    @api.model
    def _later_reason_cte(self):
        """``reason``: the loss reason written on a deal after it was lost lands
        on its last lost stay (see :meth:`_record`)."""
        return SQL(
            """
            reason AS (
                UPDATE crm_lead_stage_history h
                   SET lost_reason_id = lead.lost_reason_id
                  FROM lead
                 WHERE h.lead_id = lead.id
                   AND NOT lead.active
                   AND h.outcome = 'lost'
                   AND h.lost_reason_id IS DISTINCT FROM lead.lost_reason_id
                   -- a deal lost by this very statement gets its reason from "closed"
                   AND NOT EXISTS (SELECT 1 FROM crm_lead_stage_history still
                                    WHERE still.lead_id = lead.id AND still.date_out IS NULL)
                   AND h.date_out = (SELECT max(last.date_out)
                                       FROM crm_lead_stage_history last
                                      WHERE last.lead_id = lead.id AND last.outcome = 'lost')
             RETURNING h.id
            )
            """
        )
