from odoo.tests import HttpCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestFunnelViewTour(HttpCase):
    """Sales > Funnel opens on the funnel view; a click on a lost part lists those deals.

    Pipeline Primary contact → Proposal → Won. In Primary contact: 2 open deals, 3 lost
    (2 "Not called back in time", 1 "Price"); in Proposal: 2 open, 1 lost ("Price");
    1 won. So Primary contact: reached 9, lost 3 (33.3%), passed 4 (44.4%); Proposal:
    reached 4, lost 1, passed 1 (25.0%); Won: reached 1.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        other_team = env["crm.team"].create({"name": "Other pipeline"})
        env["crm.stage"].search([("team_id", "=", False)]).write({"team_id": other_team.id})
        team = env["crm.team"].create({"name": "View tour team"})
        primary, proposal, won = env["crm.stage"].create(
            [
                {"name": "Primary contact", "sequence": 1, "team_id": team.id},
                {"name": "Proposal", "sequence": 2, "team_id": team.id},
                {"name": "Won", "sequence": 3, "team_id": team.id, "is_won": True},
            ]
        )
        not_called, price = env["crm.lost.reason"].create(
            [{"name": "Not called back in time"}, {"name": "Price"}]
        )
        salesman = new_test_user(
            env,
            login="funnel_view_tour",
            password="funnel_view_tour",
            groups="sales_team.group_sale_salesman",
            name="View Tour Salesman",
        )

        def deals(stage, names):
            return env["crm.lead"].create(
                [
                    {
                        "name": name,
                        "type": "opportunity",
                        "team_id": team.id,
                        "user_id": salesman.id,
                        "stage_id": stage.id,
                    }
                    for name in names
                ]
            )

        def lose(leads, reason):
            env["crm.lead.lost"].create(
                {"lead_ids": [(6, 0, leads.ids)], "lost_reason_id": reason.id}
            ).action_lost_reason_apply()

        deals(primary, ["Open 1", "Open 2"])
        lost = deals(primary, ["Lost 1", "Lost 2", "Lost 3"])
        lose(lost[:2], not_called)
        lose(lost[2], price)
        deals(proposal, ["Proposal 1", "Proposal 2"])
        lose(deals(proposal, ["Proposal lost"]), price)
        deals(won, ["Won 1"])
        env.cr.flush()

    def test_tour_funnel_view_lost_part_opens_the_lost_deals(self):
        self.start_tour("/odoo", "sales_funnel_view_tour", login="funnel_view_tour")
