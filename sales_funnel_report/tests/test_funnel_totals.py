from odoo.tests import tagged, users

from ..report.sales_funnel_report import WON_MEANS_PARAM
from .common import MEASURES, day, funnel_row, funnel_table
from .fulfilment_common import FulfilmentCase

# Every dimension the search view and "Add Custom Group" offer.
DIMENSIONS = [
    "stage_id",
    "team_id",
    "user_id",
    "company_id",
    "partner_id",
    "lost_reason_id",
    "source_id",
    "medium_id",
    "campaign_id",
    "type",
    "state",
    "deal_state",
    "step_code",
    "is_fulfilment",
    "skipped",
    "create_date:month",
    "date_in:day",
]


@tagged("post_install", "-at_install")
class TestFunnelTotals(FulfilmentCase):
    """Two pipelines and the fulfilment steps: every cell adds up, every total
    counts deals once, every number opens exactly its deals."""

    def setUp(self):
        super().setUp()
        # pipeline 1 (A, B, C, Won, then Order, Invoiced, Paid)
        self.p = self.deal(day(0), name="P")
        with self.at(day(2)):
            self.p.action_set_won()
        self.pay(self.invoice(self.order(self.p, day(3)), day(4)), day(6))
        self.q = self.deal(day(0), name="Q")
        self.invoice(self.order(self.q, day(2)), day(3))
        self.x = self.deal(day(0), name="X")
        self.cancel(self.order(self.x, day(1)), day(2))
        self.w = self.deal(day(0), name="W")
        with self.at(day(1)):
            self.w.action_set_won()
        self.lost = self.deal(day(0), name="L")
        self.lose(self.lost, self.reason_price, day(1))
        self.o = self.deal(day(0), name="O", stage=self.stage_b)
        # pipeline 2 (Call, Done), another salesman's deals
        self.team2 = self.env["crm.team"].create({"name": "Second pipeline"})
        self.call = self.env["crm.stage"].create(
            {"name": "Call", "sequence": 1, "team_id": self.team2.id}
        )
        self.done = self.env["crm.stage"].create(
            {"name": "Done", "sequence": 2, "team_id": self.team2.id, "is_won": True}
        )
        second = {"team_id": self.team2.id, "user": self.other_salesman}
        self.t1 = self.new_deal(day(0), stage=self.call, name="T1", **second)
        self.t2 = self.new_deal(day(0), stage=self.call, name="T2", **second)
        with self.at(day(1)):
            self.t2.with_user(self.other_salesman).action_set_won()
        self.t3 = self.new_deal(day(0), stage=self.call, name="T3", **second)
        self.lose(self.t3.with_user(self.other_salesman), self.reason_no_answer, day(2))
        self.deals = self.p | self.q | self.x | self.w | self.lost | self.o
        self.deals |= self.t1 | self.t2 | self.t3
        self.domain = [("lead_id", "in", self.deals.ids)]
        self.Report = self.env["sales.funnel.report"].with_user(self.manager)

    def groups(self, groupby, domain=()):
        return self.Report.read_group([*self.domain, *domain], MEASURES, list(groupby), lazy=False)

    def assert_adds_up(self, group, where):
        passed = group["passed_count"] or 0
        self.assertEqual(
            group["lead_count"],
            passed + group["lost_count"] + group["open_count"] + group["won_count"],
            f"reached = passed + lost + open + won in {where}: {group}",
        )

    def test_identity_in_every_cell_under_both_settings(self):
        for won_means in ("stage", "paid"):
            self.env["ir.config_parameter"].set_param(WON_MEANS_PARAM, won_means)
            for dimension in DIMENSIONS:
                where = f"{won_means}, step x {dimension}"
                for group in self.groups(["step_id", dimension]):
                    self.assert_adds_up(group, where)
                for group in self.groups([dimension]):
                    self.assert_adds_up(group, f"{won_means}, {dimension}")
                    if group["lead_count"] and dimension not in ("stage_id", "step_code"):
                        # a group spanning steps: each deal once, nobody passed
                        self.assertIs(group["passed_count"], False, where)
                        self.assertIs(group["conversion_rate"], False, where)

    def test_totals_count_each_deal_once(self):
        for won_means, won, open_, win_rate in (("stage", 4, 2, 44.4), ("paid", 1, 5, 11.1)):
            self.env["ir.config_parameter"].set_param(WON_MEANS_PARAM, won_means)
            [total] = self.groups([])
            self.assertEqual(
                # reached, passed, lost, open, won, conversion, win rate
                funnel_row(total)[:7],
                # L, X and T3 lost; stage: P, Q, W and T2 won, O and T1 open;
                # paid: only P won
                (9, False, 3, open_, won, None, win_rate),
                won_means,
            )
        by_team = {
            group["team_id"][1]: (group["lead_count"], group["won_count"])
            for group in self.groups(["team_id"])
        }
        self.assertEqual(by_team, {"Funnel team": (6, 1), "Second pipeline": (3, 0)})

    def test_steps_per_pipeline_and_blank_conversion_at_paid(self):
        self.env["ir.config_parameter"].set_param(WON_MEANS_PARAM, "stage")
        # reached, passed, lost, open, won, conversion
        funnel = {
            step: row[:6]
            for step, row in funnel_table(
                self.groups(["step_id"], [("team_id", "=", self.team2.id)]), "step_id"
            ).items()
        }
        self.assertEqual(
            funnel,
            {
                "Call": (3, 1, 1, 1, 0, 33.3),
                "Done": (1, 0, 0, 0, 1, 0.0),
            },
        )
        paid = self.groups(["step_id"], [("step_code", "=", "paid")])
        self.assertEqual(
            [(g["lead_count"], g["won_count"], g["conversion_rate"]) for g in paid],
            [(1, 1, False)],
        )
        # revenue: per step the deals of the step, in total each deal once
        self.deals.sudo().write({"expected_revenue": 100})
        self.run_funnel_jobs()
        [total] = self.Report.read_group(self.domain, ["expected_revenue:sum"], [])
        self.assertEqual(total["expected_revenue"], 900.0)
        by_step = self.Report.read_group(
            [*self.domain, ("team_id", "=", self.team2.id)], ["expected_revenue:sum"], ["step_id"]
        )
        self.assertEqual([g["expected_revenue"] for g in by_step], [300.0, 100.0])

    def drill(self, user, domain, measure):
        action = (
            self.env["sales.funnel.report"]
            .with_user(user)
            .get_deals_action([*self.domain, *domain], measure)
        )
        deals = (
            self.env["crm.lead"]
            .with_user(user)
            .with_context(**action["context"])
            .search(action["domain"])
        )
        return action["name"], set(deals.mapped("name"))

    def test_drill_down_opens_exactly_the_deals_counted(self):
        step_a = self.env["sales.funnel.step"].search([("stage_id", "=", self.stage_a.id)])
        at_a = [("step_id", "=", step_a.id)]
        self.assertEqual(self.drill(self.manager, at_a, "lost_count"), ("A · Lost", {"L"}))
        self.assertEqual(
            self.drill(self.manager, at_a, "passed_count"),
            ("A · Passed", {"P", "Q", "X", "W", "O"}),
        )
        self.assertEqual(
            self.drill(self.manager, at_a, "lead_count"),
            ("A", {"P", "Q", "X", "W", "L", "O"}),
        )
        # the total: the deals, as counted once each
        self.assertEqual(
            self.drill(self.manager, [], "won_count"),
            ("Won", {"P", "Q", "W", "T2"}),
        )
        self.assertEqual(
            self.drill(self.manager, [("team_id", "=", self.team2.id)], "lead_count"),
            ("Deals in the Funnel", {"T1", "T2", "T3"}),
        )
        # a salesman's drill-down holds the deals he may see only
        call = self.env["sales.funnel.step"].search([("stage_id", "=", self.call.id)])
        self.assertEqual(
            self.drill(self.salesman, [("step_id", "=", call.id)], "lead_count"),
            ("Deals in the Funnel", set()),
        )
        self.assertEqual(
            self.drill(self.other_salesman, [("step_id", "=", call.id)], "lost_count"),
            ("Call · Lost", {"T3"}),
        )
        action = self.env["sales.funnel.report"].get_deals_action(at_a, "lost_count")
        self.assertEqual(action["res_model"], "crm.lead")
        self.assertEqual(
            [view_type for _view, view_type in action["views"]], ["list", "kanban", "form"]
        )


@tagged("post_install", "-at_install")
class TestStepNamesFollowStages(FulfilmentCase):
    def step(self, stage, lang):
        return (
            self.env["sales.funnel.step"]
            .with_context(lang=lang)
            .search([("stage_id", "=", stage.id)])
            .name
        )

    def test_step_names_follow_a_language_loaded_after_install(self):
        new = self.env.ref("crm.stage_lead1")
        self.env["res.lang"]._activate_lang("ru_RU")
        self.assertEqual(self.step(new, "ru_RU"), "New", "nothing loaded yet")
        self.env["ir.module.module"].search([("name", "=", "crm")])._update_translations("ru_RU")
        self.assertEqual(new.with_context(lang="ru_RU").name, "Новый")
        self.assertEqual(self.step(new, "ru_RU"), "Новый")
        self.assertEqual(self.step(new, "en_US"), "New")

    def test_stage_renamed_in_a_language(self):
        self.env["res.lang"]._activate_lang("ru_RU")
        self.stage_a.with_context(lang="ru_RU").name = "Первичный контакт"
        self.assertEqual(self.step(self.stage_a, "ru_RU"), "Первичный контакт")
        self.assertEqual(self.step(self.stage_a, "en_US"), "A")
        # the translation dialog writes past write()
        self.stage_a.update_field_translations("name", {"ru_RU": "Первый звонок"})
        self.assertEqual(self.step(self.stage_a, "ru_RU"), "Первый звонок")

    def test_pipeline_named_where_a_name_is_ambiguous(self):
        team2 = self.env["crm.team"].create({"name": "Second pipeline"})
        won2 = self.env["crm.stage"].create(
            {"name": "Won", "sequence": 5, "team_id": team2.id, "is_won": True}
        )
        steps = self.env["sales.funnel.step"].search(
            [("stage_id", "in", (won2 | self.stage_won | self.stage_a).ids)]
        )
        self.assertEqual(
            sorted(steps.mapped("display_name")),
            ["A", "Won (Funnel team)", "Won (Second pipeline)"],
        )


@tagged("post_install", "-at_install")
class TestMeasuresAndGroupBys(FulfilmentCase):
    @users("funnel_salesman")
    def test_custom_group_by_offers_dimensions_only(self):
        fields = self.env["sales.funnel.report"].fields_get()
        groupable = {name for name, field in fields.items() if field.get("groupable")}
        for measure in ("lead_count", "lost_count", "conversion_rate", "duration_days"):
            self.assertNotIn(measure, groupable)
        for technical in ("is_passed", "is_deal_won", "stage_sequence", "visit_count"):
            self.assertNotIn(technical, groupable)
        for dimension in ("step_id", "team_id", "user_id", "lost_reason_id", "state"):
            self.assertIn(dimension, groupable)
        # rates and days with one decimal
        self.assertEqual(fields["conversion_rate"]["digits"], (16, 1))
        self.assertEqual(fields["duration_median_days"]["digits"], (16, 1))

    def test_empty_durations_sort_last_both_ways(self):
        deal = self.deal(day(0), name="S")
        self.move(deal, self.stage_c, day(3))
        Report = self.env["sales.funnel.report"].with_user(self.salesman)
        for order in ("duration_days asc", "duration_days desc"):
            rows = Report.search([("lead_id", "=", deal.id)], order=order)
            # A 3 days; B skipped and C still open: no duration
            self.assertEqual(
                [(row.step_id.name, row.has_duration) for row in rows][0], ("A", True), order
            )


@tagged("post_install", "-at_install")
class TestPipelinesNeverInterleave(FulfilmentCase):
    def test_each_own_pipeline_keeps_its_steps_together(self):
        Stage = self.env["crm.stage"]
        teams = self.env["crm.team"].create(
            [
                {"name": "North", "sequence": 1, "funnel_own_stages_only": True},
                {"name": "South", "sequence": 2, "funnel_own_stages_only": True},
            ]
        )
        # sequences interleave: N1 1, S1 2, N2 3, S2 4
        stages = Stage.create(
            [
                {"name": "N1", "sequence": 1, "team_id": teams[0].id},
                {"name": "S1", "sequence": 2, "team_id": teams[1].id},
                {"name": "N2", "sequence": 3, "team_id": teams[0].id},
                {"name": "S2", "sequence": 4, "team_id": teams[1].id},
            ]
        )
        deals = self.env["crm.lead"]
        for team, stage in ((teams[0], stages[2]), (teams[1], stages[3])):
            deals |= self.new_deal(day(0), stage=stage, name=stage.name, team_id=team.id)
        rows = (
            self.env["sales.funnel.report"]
            .with_user(self.manager)
            .read_group([("lead_id", "in", deals.ids)], ["lead_count:sum"], ["step_id"])
        )
        self.assertEqual([row["step_id"][1] for row in rows], ["N1", "N2", "S1", "S2"])
        order = self.env["sales.funnel.step"].with_user(self.salesman).get_funnel_order()
        names = self.env["sales.funnel.step"].browse(order).mapped("name")
        self.assertLess(names.index("N2"), names.index("S1"))
        self.assertEqual(names[-3:], ["Order", "Invoiced", "Paid"])
