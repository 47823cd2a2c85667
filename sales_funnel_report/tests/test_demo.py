from odoo.tests import tagged

from .common import FunnelCase, day


@tagged("post_install", "-at_install")
class TestDemoStory(FunnelCase):
    """The demo generator, run on this test's own team, tells the seed's story."""

    def test_generated_funnel_reads_like_the_seed(self):
        env = self.env
        team = env["crm.team"].create({"name": "Story team", "funnel_own_stages_only": True})
        names = ["Primary contact", "Proposal", "Negotiation", "Fulfilment", "Closed"]
        stages = env["crm.stage"].create(
            [
                {
                    "name": name,
                    "sequence": 200 + index,
                    "team_id": team.id,
                    "is_won": name == "Closed",
                }
                for index, name in enumerate(names)
            ]
        )
        reasons = env["crm.lost.reason"].create(
            [
                {"name": name}
                for name in (
                    "Not called back",
                    "Offer did not fit",
                    "Goods not available",
                    "Too expensive",
                    "Other",
                )
            ]
        )
        with self.at(day(400)):
            leads = env["sales.funnel.rebuild"]._generate_demo(
                team.id,
                stages.ids,
                reasons.ids,
                [self.salesman.id, self.other_salesman.id],
                [],
                deals=300,
            )
        self.assertEqual(len(leads), 300)
        rows = env["sales.funnel.report"].read_group(
            [("team_id", "=", team.id)],
            ["lead_count:sum", "lost_count:sum", "duration_days:avg"],
            ["step_id"],
            lazy=False,
        )
        funnel = {
            row["step_id"][1]: (
                row["lead_count"],
                row["lost_count"],
                round(row["duration_days"] or 0, 1),
            )
            for row in rows
        }
        self.assertEqual(
            list(funnel),
            [*names, "Order", "Invoiced", "Paid"],
            "own stages only, in pipeline order, then fulfilment",
        )
        lost = {name: values[1] for name, values in funnel.items()}
        days = {name: values[2] for name, values in funnel.items()}
        self.assertEqual(max(lost, key=lost.get), "Primary contact")
        self.assertEqual(sorted(lost, key=lost.get, reverse=True)[1], "Proposal")
        self.assertGreater(lost["Fulfilment"], 0)
        self.assertEqual(max(days, key=days.get), "Proposal")
        self.assertTrue(4.5 <= days["Primary contact"] <= 5.5, days)
        by_reason = env["sales.funnel.report"].read_group(
            [("team_id", "=", team.id), ("stage_id", "=", stages[0].id), ("lost_count", ">", 0)],
            ["lost_count:sum"],
            ["lost_reason_id"],
            lazy=False,
        )
        top = max(by_reason, key=lambda row: row["lost_count"])
        self.assertEqual(top["lost_reason_id"][1], "Not called back")
        # The same seed and clock give the same funnel, number for number.
        self.assertEqual(funnel, FUNNEL_AT_DAY_400)
        history = env["crm.lead.stage.history"].search([("lead_id", "in", leads.ids)])
        self.assertTrue(all(stay.date_in >= stay.lead_id.create_date for stay in history))
        self.assertEqual(
            len(history.filtered(lambda s: s.outcome == "open")), len(leads.filtered("active"))
        )


FUNNEL_AT_DAY_400 = {
    "Primary contact": (300, 89, 5.1),
    "Proposal": (208, 44, 11.3),
    "Negotiation": (155, 15, 6.5),
    "Fulfilment": (139, 9, 4.0),
    # from winning to the order
    "Closed": (126, 0, 1.7),
    # a few orders cancelled: goods not available
    "Order": (124, 4, 3.3),
    # waiting for the money
    "Invoiced": (119, 0, 10.9),
    "Paid": (111, 0, 0),
}
