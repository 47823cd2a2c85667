from datetime import timedelta

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from .common import park_shared_stages


@tagged("post_install", "-at_install")
class TestStuckKanbanTour(HttpCase):
    """In Chromium: a salesman opens his CRM pipeline and sees which deals are late.

    Pipeline First call (Days to rot 5) → Proposal (no Days to rot; learned: usually
    3 days). "Late call" has been 9 days in First call, "Fresh call" 1 day, "Slow
    proposal" 4 days in Proposal: the first and the last are stuck, and only they
    stay under the Stuck filter."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        park_shared_stages(env)
        salesman = new_test_user(
            env,
            login="funnel_stuck_tour",
            password="funnel_stuck_tour",
            groups="sales_team.group_sale_salesman",
            name="Stuck Tour Salesman",
        )
        team = env["crm.team"].create(
            {"name": "Stuck tour team", "member_ids": [(6, 0, salesman.ids)]}
        )
        first_call, proposal = env["crm.stage"].create(
            [
                {
                    "name": "First call",
                    "sequence": 1,
                    "team_id": team.id,
                    "rotting_threshold_days": 5,
                },
                {"name": "Proposal", "sequence": 2, "team_id": team.id},
            ]
        )
        env["sales.funnel.typical.time"].create(
            {
                "stage_id": proposal.id,
                "team_id": team.id,
                "stay_count": 12,
                "median_days": 2.0,
                "p75_days": 2.5,
                "limit_days": 3,
                "window_months": 12,
            }
        )
        deals = env["crm.lead"].create(
            [
                {
                    "name": name,
                    "type": "opportunity",
                    "team_id": team.id,
                    "user_id": salesman.id,
                    "stage_id": stage.id,
                }
                for name, stage in [
                    ("Late call", first_call),
                    ("Fresh call", first_call),
                    ("Slow proposal", proposal),
                ]
            ]
        )
        # the deals' stays are recorded now (reading them records the queue)
        env["crm.lead.stage.history"].flush_model()
        now = env.cr.now()
        # the stays began that many days (and an hour) before the requests' clock
        cls.stays_moved = []
        for deal, days in zip(deals, (9, 1, 4), strict=True):
            env.cr.execute(
                SQL(
                    "UPDATE crm_lead_stage_history SET date_in = %s WHERE lead_id = %s",
                    now - timedelta(days=days, hours=1),
                    deal.id,
                )
            )
            cls.stays_moved.append(env.cr.rowcount)
        env.invalidate_all()
        cls.deals = deals

    def test_pipeline_shows_the_late_deals(self):
        self.assertEqual(self.stays_moved, [1, 1, 1])
        self.assertEqual(
            self.deals.with_user(self.deals.user_id).mapped("stage_age_label"),
            ["9 d · limit 5", "1 d · limit 5", "4 d · usually 3"],
        )
        stuck = self.env["crm.lead"].with_user(self.deals.user_id).search([("is_stuck", "=", True)])
        self.assertEqual(sorted(stuck.mapped("name")), ["Late call", "Slow proposal"])
        self.start_tour("/odoo", "sales_funnel_report_stuck_kanban_tour", login="funnel_stuck_tour")
