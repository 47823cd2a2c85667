from odoo import models
from odoo.tools import SQL

from ..models.lost_race import execute_racing
from .sales_funnel_milestone import milestones_cte, no_milestones_cte
from .sales_funnel_outcomes import FLAGS

# The columns of a funnel row, as the statement below writes them.
ROW_COLUMNS = (
    "step_id",
    "is_fulfilment",
    "stage_id",
    "stage_sequence",
    "lead_id",
    *FLAGS,
    "skipped",
    "expected_revenue",
    "company_id",
    "duration_days",
    "team_id",
    "user_id",
    "lost_reason_id",
    "create_date",
    "date_in",
    "visit_count",
)
COLUMNS = SQL(", ").join(map(SQL.identifier, ROW_COLUMNS))
# A row already there is updated only when it changed (composed once: it is the
# same for every statement).
KEPT_COLUMNS = [column for column in ROW_COLUMNS if column not in ("lead_id", "step_id")]
UPDATE_CHANGED = SQL(
    "ON CONFLICT (lead_id, step_id) DO UPDATE SET %s WHERE (%s) IS DISTINCT FROM (%s)",
    SQL(", ").join(
        SQL("%s = EXCLUDED.%s", SQL.identifier(c), SQL.identifier(c)) for c in KEPT_COLUMNS
    ),
    SQL(", ").join(SQL.identifier("f", c) for c in KEPT_COLUMNS),
    SQL(", ").join(SQL.identifier("excluded", c) for c in KEPT_COLUMNS),
)


class SalesFunnelFact(models.Model):
    """The counting rules of the funnel rows, as the parts of the one statement
    that writes them (:meth:`_write_rows`): one CTE per rule, the rule in its
    docstring. The milestones are in ``sales_funnel_milestone.py``; the storage
    and when rows are rewritten, in ``sales_funnel_fact.py``."""

    _inherit = "sales.funnel.fact"

    def _write_rows(self, only, only_lead, fulfilling=True, bulk=False, invoiced=True, guard=None):
        """Write the funnel rows of the deals ``only_lead`` selects (statement of
        :meth:`_rows_sql`), in ``guard``, the ``lost_race.RaceGuard`` to write
        them in."""
        execute_racing(
            self.env.cr,
            self._rows_sql(only, only_lead, fulfilling, bulk=bulk, invoiced=invoiced),
            guard,
            fetched=False,
        )

    def _rows_sql(self, only, only_lead, fulfilling=True, bulk=False, invoiced=True, few=False):
        """The statement that writes the funnel rows of the deals ``only_lead``
        selects (alias ``l``), ``only`` selecting their stays and rows, from the
        query parts below, one CTE each. ``fulfilling=False`` says that none of
        them has an order confirmed once: their milestones are then known empty;
        ``invoiced=False``, that none of those orders has an invoice line (see
        ``sales_funnel_milestone.py``); ``few``, that they are a handful (see
        ``sales.funnel.queue._record_at_once``): the rows are then gathered
        apart from the deals' status, which takes a twentieth off planning the
        statement.

        Live, the deals' rows are brought in line: a row no longer reached is
        deleted, a new one inserted, a changed one updated; a row that did not
        change is not written at all (a stage move changes two or three rows of
        the deal's five or so). ``bulk=True`` only inserts, into the table the
        bulk load emptied and freed of its unique key (see
        :meth:`_refresh_all_bulk`): a speculative insertion per row made it 2.5
        times slower at a million deals.

        Each row's outcome is a flag: passed, lost or open at the step; *won* at
        the last won stage of the pipeline for a won or paid deal; the deal's
        status as flags too. The loss reason is on the lost row only, durations
        on passed and lost rows only."""
        return SQL(
            """
            WITH %(deal)s, %(milestone)s, %(stay)s, %(reached)s, %(deal_state)s,
            step_row AS %(fenced)s(
                %(pipeline_rows)s
                %(fulfilment_rows)s
            ), fact_row AS (
                SELECT r.step_id, r.fulfilment AS is_fulfilment, r.stage_id,
                       r.sequence AS stage_sequence, r.lead_id,
                       r.state = 'passed' AS is_passed, r.state = 'lost' AS is_lost,
                       r.state = 'open' AS is_open,
                       r.last_won AND d.deal_state IN ('won', 'paid') AS is_won,
                       d.deal_state IN ('won', 'paid') AS is_deal_won,
                       d.deal_state = 'paid' AS is_deal_paid,
                       d.deal_state = 'lost' AS is_deal_lost,
                       d.type IS NOT DISTINCT FROM 'lead' AS is_lead,
                       r.skipped, COALESCE(d.expected_revenue, 0) AS expected_revenue,
                       d.company_id,
                       CASE WHEN r.state IN ('passed', 'lost') THEN r.days END AS duration_days,
                       d.team_id, d.user_id,
                       CASE WHEN r.state = 'lost' THEN d.lost_reason_id END AS lost_reason_id,
                       d.create_date, r.date_in, r.visits AS visit_count
                  FROM step_row r
                  JOIN deal_state d ON d.id = r.lead_id
            )%(gone)s
            INSERT INTO sales_funnel_fact AS f (%(columns)s)
            SELECT %(columns)s FROM fact_row
            %(on_conflict)s
            """,
            fenced=SQL("MATERIALIZED ") if few else SQL(),
            deal=self._deals_cte(only_lead),
            milestone=milestones_cte(invoiced) if fulfilling else no_milestones_cte(),
            stay=self._stays_cte(only),
            reached=self._reached_cte(),
            deal_state=self._deal_status_cte(),
            pipeline_rows=self._pipeline_rows_sql(),
            # without milestones there are no fulfilment rows: nothing to plan
            fulfilment_rows=SQL("UNION ALL %s", self._fulfilment_rows_sql())
            if fulfilling
            else SQL(),
            columns=COLUMNS,
            gone=SQL() if bulk else self._gone_rows_sql(only),
            on_conflict=SQL() if bulk else UPDATE_CHANGED,
        )

    def _gone_rows_sql(self, only):
        """``gone``: the deals' rows of steps they no longer reached."""
        return SQL(
            """, gone AS (
                DELETE FROM sales_funnel_fact old
                 WHERE %s
                   AND NOT EXISTS (SELECT 1 FROM fact_row new
                                    WHERE new.lead_id = old.lead_id AND new.step_id = old.step_id)
            )""",
            only,
        )

    def _deals_cte(self, only_lead):
        """``deal``: the deals whose rows are written, with their position's
        stage: where an open or won deal is now, the stage a lost deal was lost
        in (Odoo keeps it). A deal without a stage has no rows. Unset booleans
        are stored NULL and mean false; a deal is won when active in a won
        stage."""
        return SQL(
            """
            deal AS (
                SELECT l.id, l.stage_id, l.team_id, l.user_id, l.company_id,
                       l.lost_reason_id, l.type, l.create_date, l.expected_revenue,
                       pos.sequence AS pos_sequence,
                       COALESCE(l.active, FALSE) AS active,
                       COALESCE(l.active AND pos.is_won, FALSE) AS won
                  FROM crm_lead l
                  JOIN crm_stage pos ON pos.id = l.stage_id
                 WHERE %s
            )
            """,
            only_lead,
        )

    def _stays_cte(self, only):
        """``stay``: a deal's stays in a stage, taken together (moving back and
        forth counts a stage once): first entry, visits, and the days of the
        finished ones. Once the deal has an order, its open stay ends at the
        first confirmation, so the won stage shows the days from winning to the
        order; without an order, an open stay has no days yet."""
        return SQL(
            """
            stay AS (
                SELECT h.lead_id, h.stage_id, min(h.date_in) AS date_in, count(*) AS visits,
                       sum(COALESCE(h.duration_days, GREATEST(
                           EXTRACT(EPOCH FROM (m.ordered_at - h.date_in)) / 86400.0, 0)
                       )) AS days
                  FROM (SELECT * FROM crm_lead_stage_history WHERE %s) h
                  LEFT JOIN milestone m ON m.lead_id = h.lead_id
                 GROUP BY h.lead_id, h.stage_id
            )
            """,
            only,
        )

    def _reached_cte(self):
        """``reached``, ``visited``, ``ordered``: the stages a deal reached.

        A deal's pipeline is the stages of its team and of no team (only its
        team's own with *Funnel of Own Stages Only*), in order of
        ``(sequence, id)``. It reached every stage of it up to and including its
        position, and the position even outside its pipeline; a deal with a
        milestone reached its whole pipeline, marked won or not. Stages it
        visited beyond its position and came back from are not reached, but
        date the stages it jumped over: from its first later stay, else from its
        first order (``later_in``). ``later_won`` finds the last won stage."""
        return SQL(
            """
            reached AS (
                SELECT deal.id AS lead_id, s.id AS stage_id, s.sequence,
                       COALESCE(s.is_won, FALSE) AS is_won
                  FROM deal
                  LEFT JOIN crm_team team ON team.id = deal.team_id
                  LEFT JOIN milestone m ON m.lead_id = deal.id
                  JOIN crm_stage s
                    ON (s.team_id = deal.team_id
                        OR (s.team_id IS NULL AND NOT COALESCE(team.funnel_own_stages_only, FALSE))
                        OR s.id = deal.stage_id)
                   AND ((s.sequence, s.id) <= (deal.pos_sequence, deal.stage_id)
                        OR m.lead_id IS NOT NULL)
            ), visited AS (
                SELECT lead_id, stage_id, sequence, is_won, TRUE AS reached FROM reached
                 UNION ALL
                SELECT stay.lead_id, stay.stage_id, s.sequence, COALESCE(s.is_won, FALSE), FALSE
                  FROM stay
                  JOIN crm_stage s ON s.id = stay.stage_id
                 WHERE NOT EXISTS (SELECT 1 FROM reached r
                                    WHERE r.lead_id = stay.lead_id
                                      AND r.stage_id = stay.stage_id)
            ), ordered AS (
                SELECT v.lead_id, v.stage_id, v.sequence, v.reached, v.is_won,
                       stay.date_in, stay.visits, stay.days,
                       min(stay.date_in) OVER later AS later_in,
                       count(*) FILTER (WHERE v.reached AND v.is_won) OVER later AS later_won
                  FROM visited v
                  LEFT JOIN stay ON stay.lead_id = v.lead_id AND stay.stage_id = v.stage_id
                WINDOW later AS (
                    PARTITION BY v.lead_id ORDER BY v.sequence DESC, v.stage_id DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
            )
            """
        )

    def _deal_status_cte(self):
        """``deal_state``: the deal's status. Paid when it reached Paid; lost when
        archived or when all its orders were cancelled; won when in a won stage
        or with a confirmed order; otherwise open."""
        return SQL(
            """
            deal_state AS (
                SELECT d.*, m.lead_id IS NOT NULL AS fulfilling, m.ordered_at,
                       CASE WHEN m.paid THEN 'paid'
                            WHEN NOT d.active THEN 'lost'
                            WHEN m.lead_id IS NOT NULL AND NOT m.live THEN 'lost'
                            WHEN d.won OR m.lead_id IS NOT NULL THEN 'won'
                            ELSE 'open' END AS deal_state
                  FROM deal d
                  LEFT JOIN milestone m ON m.lead_id = d.id
            )
            """
        )

    def _pipeline_rows_sql(self):
        """A row per reached stage. Every stage before the position was passed,
        and the whole pipeline of a deal with a milestone; at its position the
        deal is lost when archived, won in a won stage, else open. A stage never
        visited is skipped. It is dated at the first entry, else when the deal
        jumped over it, else at the deal's creation."""
        return SQL(
            """
                SELECT o.lead_id, st.id AS step_id, FALSE AS fulfilment,
                       o.stage_id, o.sequence, o.is_won AND o.later_won = 0 AS last_won,
                       CASE WHEN o.stage_id <> d.stage_id OR d.fulfilling THEN 'passed'
                            WHEN NOT d.active THEN 'lost'
                            WHEN d.won THEN 'won'
                            ELSE 'open' END AS state,
                       o.visits IS NULL AS skipped, o.days,
                       COALESCE(o.date_in, o.later_in, d.ordered_at, d.create_date) AS date_in,
                       COALESCE(o.visits, 0) AS visits
                  FROM ordered o
                  JOIN deal_state d ON d.id = o.lead_id
                  JOIN sales_funnel_step st ON st.stage_id = o.stage_id
                 WHERE o.reached
            """
        )

    def _fulfilment_rows_sql(self):
        """A row per fulfilment step up to the deal's milestone. Steps before it
        were passed; at it the deal is won at Paid, lost when its status is
        lost, else open. Days at *Order*: from the first confirmation to the
        first invoice date; at *Invoiced*: to the last settlement; whole days,
        never negative, empty while there is no end date; none at *Paid*. Each
        is dated at its milestone."""
        return SQL(
            """
                SELECT m.lead_id, st.id, TRUE, NULL, st.sequence, FALSE,
                       CASE WHEN st.sequence < m.rank THEN 'passed'
                            WHEN m.paid THEN 'won'
                            WHEN d.deal_state = 'lost' THEN 'lost'
                            ELSE 'open' END,
                       FALSE,
                       CASE st.code
                           WHEN 'order' THEN CASE WHEN m.invoiced_on < m.ordered_at::date
                                                  THEN 0 ELSE m.invoiced_on - m.ordered_at::date
                                             END
                           WHEN 'invoiced' THEN CASE WHEN m.paid_on < m.invoiced_on THEN 0
                                                     ELSE m.paid_on - m.invoiced_on END
                       END,
                       CASE st.code WHEN 'order' THEN m.ordered_at
                                    WHEN 'invoiced' THEN m.invoiced_on::timestamp
                                    ELSE m.paid_on::timestamp END,
                       1
                  FROM milestone m
                  JOIN deal_state d ON d.id = m.lead_id
                  JOIN sales_funnel_step st ON st.code IS NOT NULL AND st.sequence <= m.rank
            """
        )
