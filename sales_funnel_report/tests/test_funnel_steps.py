from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import FunnelCase, day

STEP_ERROR = (
    "Funnel steps follow the CRM stages, then Order, Invoiced and Paid: only the name of a "
    "fulfilment step can be changed here. Rename or reorder the stages in the CRM configuration."
)


@tagged("post_install", "-at_install")
class TestFunnelSteps(FunnelCase):
    """Funnel steps follow the CRM stages; Order, Invoiced and Paid come last."""

    def steps(self):
        """The funnel's steps of the team's pipeline and fulfilment, in order."""
        return (
            self.env["sales.funnel.step"]
            .search(
                [
                    "|",
                    ("stage_id.team_id", "=", self.team.id),
                    ("is_fulfilment", "=", True),
                ]
            )
            .mapped("name")
        )

    def funnel_axis(self, deal):
        return [
            step.name
            for (step,) in self.env["sales.funnel.report"]._read_group(
                [("lead_id", "=", deal.id)],
                ["step_id"],
                order="step_id",
            )
        ]

    def test_stages_then_fulfilment(self):
        self.assertEqual(self.steps(), ["A", "B", "C", "Won", "Order", "Invoiced", "Paid"])
        step = self.env["sales.funnel.step"].search([("stage_id", "=", self.stage_b.id)])
        self.assertEqual((step.sequence, step.is_fulfilment, step.code), (2, False, False))

    def test_create_rename_resequence_delete(self):
        deal = self.new_deal(day(0))
        self.move(deal, self.stage_won, day(1))
        Stage = self.env["crm.stage"].with_user(self.manager)
        qualified = Stage.create({"name": "Qualified", "sequence": 2, "team_id": self.team.id})
        # same sequence as B: the older stage (lower id) comes first
        self.assertEqual(
            self.steps(), ["A", "B", "Qualified", "C", "Won", "Order", "Invoiced", "Paid"]
        )
        self.run_funnel_jobs()  # the deals' rows follow in the background
        self.assertEqual(self.funnel_axis(deal), ["A", "B", "Qualified", "C", "Won"])
        qualified.write({"name": "Needs analysis", "sequence": 0})
        self.assertEqual(
            self.steps(), ["Needs analysis", "A", "B", "C", "Won", "Order", "Invoiced", "Paid"]
        )
        self.run_funnel_jobs()
        self.assertEqual(self.funnel_axis(deal), ["Needs analysis", "A", "B", "C", "Won"])
        qualified.unlink()
        self.assertEqual(self.steps(), ["A", "B", "C", "Won", "Order", "Invoiced", "Paid"])
        self.run_funnel_jobs()
        self.assertEqual(self.funnel_axis(deal), ["A", "B", "C", "Won"])

    def test_step_name_follows_stage_translations(self):
        self.env["res.lang"]._activate_lang("ru_RU")
        self.stage_b.with_context(lang="ru_RU").name = "Переговоры"
        step = self.env["sales.funnel.step"].search([("stage_id", "=", self.stage_b.id)])
        self.assertEqual(step.with_context(lang="ru_RU").name, "Переговоры")
        self.assertEqual(step.with_context(lang="en_US").name, "B")

    def test_only_fulfilment_names_are_edited_here(self):
        Step = self.env["sales.funnel.step"].with_user(self.manager)
        pipeline = Step.search([("stage_id", "=", self.stage_a.id)])
        paid = self.env.ref("sales_funnel_report.sales_funnel_step_paid").with_user(self.manager)
        with self.assertRaises(UserError) as caught:
            pipeline.name = "Renamed"
        self.assertEqual(caught.exception.args[0], STEP_ERROR)
        with self.assertRaises(UserError) as caught:
            paid.sequence = 0
        self.assertEqual(caught.exception.args[0], STEP_ERROR)
        with self.assertRaises(UserError) as caught:
            paid.sudo().unlink()
        self.assertEqual(
            caught.exception.args[0],
            "The fulfilment steps Order, Invoiced and Paid cannot be deleted.",
        )
        paid.name = "Paid in full"
        self.assertEqual(self.steps()[-1], "Paid in full")
        self.assertEqual(pipeline.name, "A")
