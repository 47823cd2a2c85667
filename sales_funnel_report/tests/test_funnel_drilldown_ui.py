from odoo.tests import HttpCase, new_test_user, tagged

from .common import park_shared_stages


@tagged("post_install", "-at_install")
class TestFunnelDrillDownUi(HttpCase):
    """In Chromium: a salesman opens Sales > Funnel on his team's pipeline,
    clicks Lost at a step in the pivot and lands on exactly those deals."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        park_shared_stages(env)
        cls.salesman = new_test_user(
            env,
            login="funnel_drill",
            password="funnel_drill",
            groups="sales_team.group_sale_salesman",
            name="Drill Salesman",
        )
        team = env["crm.team"].create(
            {"name": "Drill team", "member_ids": [(6, 0, cls.salesman.ids)]}
        )
        first, second = env["crm.stage"].create(
            [
                {"name": "Drill first", "sequence": 1, "team_id": team.id},
                {"name": "Drill second", "sequence": 2, "team_id": team.id},
            ]
        )
        deals = env["crm.lead"].create(
            [
                {
                    "name": name,
                    "type": "opportunity",
                    "team_id": team.id,
                    "user_id": cls.salesman.id,
                    "stage_id": stage.id,
                }
                for name, stage in [
                    ("Drill lost 1", first),
                    ("Drill lost 2", first),
                    ("Drill open", first),
                    ("Drill lost later", second),
                ]
            ]
        )
        deals.filtered(lambda deal: "lost" in deal.name).action_set_lost()

    def test_lost_at_a_step_opens_those_deals(self):
        self.start_tour("/odoo", "sales_funnel_report_drilldown_tour", login="funnel_drill")
