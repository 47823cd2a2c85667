from contextlib import contextmanager

from odoo import api, fields, models
from odoo.tools import SQL


class SalesFunnelFact(models.Model):
    """The funnel rows, kept up to date at write time.

    One row per deal and funnel stage it reached, with the deal's dimensions
    copied in, so that the report reads a single narrow table. The counting
    rules are those of :class:`~.sales_funnel_report.SalesFunnelReport`;
    :meth:`_refresh` is their only implementation.
    """

    _name = "sales.funnel.fact"
    _description = "Sales Funnel Row (storage)"
    _log_access = False
    _order = "lead_id, stage_sequence, stage_id"

    # The report counts on these boolean flags (COUNT(*) FILTER), which is cheaper
    # per row than comparing the text of ``state``.
    stage_id = fields.Many2one("crm.stage", required=True, ondelete="cascade", index=True)
    stage_sequence = fields.Integer(required=True)
    lead_id = fields.Many2one("crm.lead", required=True, ondelete="cascade", index=True)
    is_passed = fields.Boolean(required=True)
    is_lost = fields.Boolean(required=True)
    is_open = fields.Boolean(required=True)
    is_won = fields.Boolean(required=True)
    is_deal_won = fields.Boolean(required=True)
    skipped = fields.Boolean(required=True)
    expected_revenue = fields.Float(required=True)
    company_id = fields.Many2one("res.company", ondelete="set null")
    type = fields.Char(required=True)
    duration_days = fields.Float()
    state = fields.Char(required=True)
    deal_state = fields.Char(required=True)
    team_id = fields.Many2one("crm.team", ondelete="set null")
    user_id = fields.Many2one("res.users", ondelete="set null")
    partner_id = fields.Many2one("res.partner", ondelete="set null")
    lost_reason_id = fields.Many2one("crm.lost.reason", ondelete="set null")
    source_id = fields.Many2one("utm.source", ondelete="set null")
    medium_id = fields.Many2one("utm.medium", ondelete="set null")
    campaign_id = fields.Many2one("utm.campaign", ondelete="set null")
    create_date = fields.Datetime()
    date_in = fields.Datetime()
    visit_count = fields.Integer()

    def flush_model(self, fnames=None):
        # The report reads these rows (``_depends``): record waiting deals first.
        self.env["crm.lead"].sudo()._flush_funnel_queue()
        return super().flush_model(fnames)

    @api.model
    def _refresh_teams(self, team_ids):
        """Rewrite the funnel rows of the deals of ``team_ids``, selected in SQL."""
        self.env.flush_all()
        of_teams = SQL("l.team_id = ANY(%s)", list(team_ids))
        self.env.cr.execute(SQL(
            "DELETE FROM sales_funnel_fact f USING crm_lead l WHERE f.lead_id = l.id AND %s",
            of_teams,
        ))
        self._insert_rows(SQL("lead_id IN (SELECT l.id FROM crm_lead l WHERE %s)", of_teams),
                          of_teams)
        self.invalidate_model()

    @api.model
    def _refresh(self, lead_ids=None):
        """Rewrite the funnel rows of ``lead_ids`` (all deals when ``None``)
        from the deals, their stays and the stages, in two statements."""
        if lead_ids is not None and not lead_ids:
            return
        self.env.flush_all()
        only = SQL("TRUE") if lead_ids is None else SQL("lead_id = ANY(%s)", list(lead_ids))
        only_lead = SQL("TRUE") if lead_ids is None else SQL("l.id = ANY(%s)", list(lead_ids))
        if lead_ids is None:
            with self._foreign_keys_checked_once():
                self.env.cr.execute("TRUNCATE sales_funnel_fact")
                self._insert_rows(only, only_lead)
            # fresh statistics, or the planner misjudges the report's first queries
            self.env.cr.execute("ANALYZE sales_funnel_fact")
        else:
            self.env.cr.execute(SQL("DELETE FROM sales_funnel_fact WHERE %s", only))
            self._insert_rows(only, only_lead)
        self.invalidate_model()

    @contextmanager
    def _foreign_keys_checked_once(self):
        """Drop the table's foreign keys for a bulk load and put them back after:
        PostgreSQL then checks them in one pass each instead of row by row."""
        cr = self.env.cr
        cr.execute(SQL(
            """
            SELECT conname, pg_get_constraintdef(oid)
              FROM pg_constraint
             WHERE conrelid = %s::regclass AND contype = 'f'
            """,
            self._table,
        ))
        keys = cr.fetchall()
        for name, _definition in keys:
            cr.execute(SQL(
                "ALTER TABLE %s DROP CONSTRAINT %s",
                SQL.identifier(self._table), SQL.identifier(name),
            ))
        yield
        for name, definition in keys:
            # the definition is PostgreSQL's own text of the constraint it just dropped
            cr.execute(SQL(
                "ALTER TABLE %s ADD CONSTRAINT %s %s",
                SQL.identifier(self._table), SQL.identifier(name), SQL(definition),
            ))

    def _insert_rows(self, only, only_lead):
        self.env.cr.execute(SQL(
            """
            WITH deal AS (
                SELECT l.id, l.stage_id, l.active, l.team_id, l.user_id, l.company_id,
                       l.partner_id, l.lost_reason_id, l.source_id, l.medium_id,
                       l.campaign_id, l.type, l.create_date, l.expected_revenue,
                       pos.sequence AS pos_sequence,
                       l.active AND COALESCE(pos.is_won, FALSE) AS won
                  FROM crm_lead l
                  JOIN crm_stage pos ON pos.id = l.stage_id
                 WHERE %(only_lead)s
            ), stay AS (
                SELECT lead_id, stage_id, min(date_in) AS date_in, count(*) AS visits,
                       sum(duration_days) AS days
                  FROM crm_lead_stage_history
                 WHERE %(only)s
                 GROUP BY lead_id, stage_id
            ), reached AS (
                SELECT deal.id AS lead_id, s.id AS stage_id, s.sequence
                  FROM deal
                  LEFT JOIN crm_team team ON team.id = deal.team_id
                  JOIN crm_stage s
                    ON (s.team_id = deal.team_id
                        OR (s.team_id IS NULL AND NOT COALESCE(team.funnel_own_stages_only, FALSE))
                        OR s.id = deal.stage_id)
                   AND (s.sequence, s.id) <= (deal.pos_sequence, deal.stage_id)
            ), visited AS (
                -- reached stages, and stages visited beyond the position (moved back
                -- from there): a stage jumped over dates from the first later stay
                SELECT lead_id, stage_id, sequence, TRUE AS reached FROM reached
                 UNION ALL
                SELECT stay.lead_id, stay.stage_id, s.sequence, FALSE
                  FROM stay
                  JOIN crm_stage s ON s.id = stay.stage_id
                 WHERE NOT EXISTS (SELECT 1 FROM reached r
                                    WHERE r.lead_id = stay.lead_id
                                      AND r.stage_id = stay.stage_id)
            ), ordered AS (
                SELECT v.lead_id, v.stage_id, v.sequence, v.reached,
                       stay.date_in, stay.visits, stay.days,
                       min(stay.date_in) OVER (
                           PARTITION BY v.lead_id ORDER BY v.sequence DESC, v.stage_id DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS later_in
                  FROM visited v
                  LEFT JOIN stay ON stay.lead_id = v.lead_id AND stay.stage_id = v.stage_id
            )
            INSERT INTO sales_funnel_fact (
                stage_id, stage_sequence, lead_id, is_passed, is_lost, is_open, is_won,
                is_deal_won, skipped, expected_revenue, company_id, type, duration_days,
                state, deal_state, team_id, user_id, partner_id, lost_reason_id, source_id,
                medium_id, campaign_id, create_date, date_in, visit_count)
            SELECT o.stage_id, o.sequence, o.lead_id,
                   o.state = 'passed', o.state = 'lost', o.state = 'open', o.state = 'won',
                   o.deal_state = 'won', o.visits IS NULL, COALESCE(o.expected_revenue, 0),
                   o.company_id, COALESCE(o.type, 'opportunity'),
                   CASE WHEN o.state IN ('passed', 'lost') THEN o.days END,
                   o.state, o.deal_state, o.team_id, o.user_id, o.partner_id,
                   CASE WHEN o.state = 'lost' THEN o.lost_reason_id END,
                   o.source_id, o.medium_id, o.campaign_id, o.create_date,
                   COALESCE(o.date_in, o.later_in, o.create_date),
                   COALESCE(o.visits, 0)
              FROM (
                SELECT o.*, d.team_id, d.user_id, d.company_id, d.partner_id, d.lost_reason_id,
                       d.source_id, d.medium_id, d.campaign_id, d.type, d.create_date,
                       d.expected_revenue,
                       CASE WHEN o.stage_id <> d.stage_id THEN 'passed'
                            WHEN NOT d.active THEN 'lost'
                            WHEN d.won THEN 'won'
                            ELSE 'open' END AS state,
                       CASE WHEN NOT d.active THEN 'lost'
                            WHEN d.won THEN 'won'
                            ELSE 'open' END AS deal_state
                  FROM ordered o
                  JOIN deal d ON d.id = o.lead_id
                 WHERE o.reached
              ) o
            """,
            only=only, only_lead=only_lead,
        ))
