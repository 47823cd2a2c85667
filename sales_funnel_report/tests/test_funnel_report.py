from odoo.exceptions import AccessError
from odoo.tests import tagged, users

from .common import MEASURES, FunnelCase, day, empty_or_rounded, funnel_table, rate


@tagged("post_install", "-at_install")
class TestFunnelReport(FunnelCase):
    """The funnel's worked example (``funnel-example.md`` of the team's design
    notes, outside this repository), number for number."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reason_other = cls.env["crm.lost.reason"].create({"name": "Other"})

    def setUp(self):
        super().setUp()
        # D1: A day 0 → B day 2 → C day 3 → won day 6
        self.d1 = self.new_deal(day(0), name="D1", expected_revenue=1000)
        self.move(self.d1, self.stage_b, day(2))
        self.move(self.d1, self.stage_c, day(3))
        with self.at(day(6)):
            self.d1.action_set_won()
        # D2: A day 0 → C day 4 (jumps over B) → lost day 5, Price
        self.d2 = self.new_deal(day(0), name="D2", expected_revenue=200)
        self.move(self.d2, self.stage_c, day(4))
        self.lose(self.d2, self.reason_price, day(5))
        # D3: A day 0 → B day 1 → back to A day 3 → B day 4, still there
        self.d3 = self.new_deal(day(0), name="D3", expected_revenue=30)
        self.move(self.d3, self.stage_b, day(1))
        self.move(self.d3, self.stage_a, day(3))
        self.move(self.d3, self.stage_b, day(4))
        # D4: A day 2 → lost day 3, No answer (another salesman's deal)
        self.d4 = self.new_deal(day(2), name="D4", user=self.other_salesman, expected_revenue=4)
        self.lose(self.d4, self.reason_no_answer, day(3))
        self.deals = self.d1 | self.d2 | self.d3 | self.d4
        self.Report = self.env["sales.funnel.report"]

    def funnel(self, domain=(), groupby=("stage_id",), report=None):
        report = self.Report if report is None else report
        rows = report.read_group(
            [("lead_id", "in", self.deals.ids), *domain],
            MEASURES,
            list(groupby),
            lazy=False,
        )
        return rows

    def test_funnel_by_stage_and_total(self):
        rows = self.funnel()
        self.assertEqual([row["stage_id"][1] for row in rows], ["A", "B", "C", "Won"])
        self.assertEqual(
            funnel_table(rows, "stage_id"),
            {
                "A": (4, 3, 1, 0, 0, 75.0, 25.0, 2.25, 2.0),
                "B": (3, 2, 0, 1, 0, 66.7, 33.3, 1.0, 1.0),
                "C": (2, 1, 1, 0, 0, 50.0, 50.0, 2.0, 2.0),
                "Won": (1, 0, 0, 0, 1, 0.0, 100.0, None, None),
            },
        )
        # each deal once, at its position: 4 deals, 2 lost, 1 open, 1 won; nobody
        # passes the whole funnel (the worked example's total row)
        self.assertEqual(
            funnel_table(self.funnel(groupby=())),
            {
                "total": (4, False, 2, 1, 1, None, 25.0, 2.0, 2.0),
            },
        )

    def test_rows_per_deal_and_stage(self):
        rows = self.Report._read_group(
            [("lead_id", "in", self.deals.ids)],
            ["lead_id", "stage_id", "state", "skipped", "visit_count", "lost_reason_id"],
            ["duration_days:max", "date_in:min"],
        )
        got = {
            (lead.name, stage.name): (
                state,
                skipped,
                visits,
                empty_or_rounded(days),
                reason.name or None,
                date_in,
            )
            for lead, stage, state, skipped, visits, reason, days, date_in in rows
        }
        self.assertEqual(
            got,
            {
                ("D1", "A"): ("passed", False, 1, 2.0, None, day(0)),
                ("D1", "B"): ("passed", False, 1, 1.0, None, day(2)),
                ("D1", "C"): ("passed", False, 1, 3.0, None, day(3)),
                ("D1", "Won"): ("won", False, 1, None, None, day(6)),
                ("D2", "A"): ("passed", False, 1, 4.0, None, day(0)),
                ("D2", "B"): ("passed", True, 0, None, None, day(4)),
                ("D2", "C"): ("lost", False, 1, 1.0, "Price", day(4)),
                ("D3", "A"): ("passed", False, 2, 2.0, None, day(0)),
                ("D3", "B"): ("open", False, 2, None, None, day(1)),
                ("D4", "A"): ("lost", False, 1, 1.0, "No answer", day(2)),
            },
        )

    def test_strict_funnel_excludes_skipped_stages(self):
        counts = {
            row["stage_id"][1]: (row["lead_count"], row["passed_count"])
            for row in self.funnel(domain=[("skipped", "=", False)])
        }
        self.assertEqual(counts, {"A": (4, 3), "B": (2, 1), "C": (2, 1), "Won": (1, 0)})

    def test_loss_reasons_per_stage(self):
        rows = self.Report.read_group(
            [("lead_id", "in", self.deals.ids), ("lost_count", ">", 0)],
            ["lost_count:sum"],
            ["stage_id", "lost_reason_id"],
            lazy=False,
        )
        self.assertEqual(
            [(r["stage_id"][1], r["lost_reason_id"][1], r["lost_count"]) for r in rows],
            [("A", "No answer", 1), ("C", "Price", 1)],
        )

    def test_cohort_and_activity_periods(self):
        # Cohort: deals created on day 2 or later (D4 only).
        cohort = funnel_table(self.funnel(domain=[("create_date", ">=", day(1))]), "stage_id")
        self.assertEqual(cohort, {"A": (1, 0, 1, 0, 0, 0.0, 0.0, 1.0, 1.0)})
        # Activity: stages entered (or jumped over) from day 3 to day 4.
        active = self.funnel(
            domain=[("date_in", ">=", day(3)), ("date_in", "<=", day(4))],
        )
        self.assertEqual(
            {row["stage_id"][1]: row["lead_count"] for row in active}, {"B": 1, "C": 2}
        )

    def test_grouping_by_salesperson_counts_deals_once(self):
        rows = self.Report.read_group(
            [("lead_id", "in", self.deals.ids)],
            ["lead_count:sum", "passed_count:sum", "conversion_rate:avg", "win_rate:avg"],
            ["user_id"],
            lazy=False,
        )
        got = {
            r["user_id"][1]: (
                r["lead_count"],
                r["passed_count"],
                rate(r["conversion_rate"]),
                rate(r["win_rate"]),
            )
            for r in rows
        }
        # D1, D2 and D3, of which D1 won; D4
        self.assertEqual(
            got,
            {
                "Funnel Salesman": (3, False, None, 33.3),
                "Other Salesman": (1, False, None, 0.0),
            },
        )

    def test_step_by_salesperson_keeps_ratios_of_sums(self):
        rows = self.Report.read_group(
            [("lead_id", "in", self.deals.ids)],
            ["lead_count:sum", "passed_count:sum", "conversion_rate:avg"],
            ["stage_id", "user_id"],
            lazy=False,
        )
        got = {
            (r["stage_id"][1], r["user_id"][1]): (
                r["lead_count"],
                r["passed_count"],
                rate(r["conversion_rate"]),
            )
            for r in rows
        }
        self.assertEqual(got[("A", "Funnel Salesman")], (3, 3, 100.0), "D1, D2 and D3 passed A")
        self.assertEqual(got[("A", "Other Salesman")], (1, 0, 0.0))
        # A over both: (3 + 0) / (3 + 1), not the mean of 100 and 0
        [a_total] = self.Report.read_group(
            [("lead_id", "in", self.deals.ids), ("stage_id", "=", self.stage_a.id)],
            ["conversion_rate:avg"],
            [],
        )
        self.assertEqual(a_total["conversion_rate"], 75.0)

    @users("funnel_other")
    def test_salesman_sees_the_funnel_of_own_deals(self):
        funnel = funnel_table(self.funnel(report=self.env["sales.funnel.report"]), "stage_id")
        self.assertEqual(funnel, {"A": (1, 0, 1, 0, 0, 0.0, 0.0, 1.0, 1.0)})

    def test_revenue_funnel(self):
        rows = self.Report.read_group(
            [("lead_id", "in", self.deals.ids)],
            ["expected_revenue:sum"],
            ["stage_id"],
            lazy=False,
        )
        self.assertEqual(
            {r["stage_id"][1]: r["expected_revenue"] for r in rows},
            {"A": 1234.0, "B": 1230.0, "C": 1200.0, "Won": 1000.0},
        )
        # the deals' own revenue in the total, each deal once
        [total] = self.Report.read_group(
            [("lead_id", "in", self.deals.ids)], ["expected_revenue:sum"], []
        )
        self.assertEqual(total["expected_revenue"], 1234.0)

    def test_follows_later_changes(self):
        # Restoring D4 makes it open in A; resequencing C before B changes what D2 skipped.
        with self.at(day(8)):
            self.d4.action_unarchive()
        self.stage_c.sequence = 2
        self.stage_b.sequence = 3
        self.run_funnel_jobs()
        rows = {
            (r.lead_id.name, r.stage_id.name): (r.state, r.skipped)
            for r in self.Report.search([("lead_id", "in", (self.d2 | self.d4).ids)])
        }
        self.assertEqual(
            rows,
            {
                ("D2", "A"): ("passed", False),
                ("D2", "C"): ("lost", False),
                ("D4", "A"): ("open", False),
            },
        )

    def test_nobody_writes_the_report(self):
        row = self.Report.search([("lead_id", "=", self.d1.id)], limit=1)
        with self.assertRaises(AccessError):
            row.with_user(self.manager).write({"visit_count": 5})


@tagged("post_install", "-at_install")
class TestMedianQuery(FunnelCase):
    def test_median_alone_with_others_and_with_a_limit_agree(self):
        deals = self.env["crm.lead"]
        for index, days in enumerate((0, 1, 4, 10)):
            deal = self.new_deal(day(0), name=f"m{index}")
            self.move(deal, self.stage_b, day(days))
            deals |= deal
        Report = self.env["sales.funnel.report"]
        domain = [("lead_id", "in", deals.ids)]
        alone = Report._read_group(domain, ["stage_id"], ["duration_median_days:avg"])
        mixed = Report._read_group(
            domain, ["stage_id"], ["lead_count:sum", "duration_median_days:avg", "__count"]
        )
        limited = Report._read_group(
            domain, ["stage_id"], ["lead_count:sum", "duration_median_days:avg"], limit=5
        )
        # A: 0, 1, 4 and 10 days (the zero-length stay counts); B: still open, no
        # duration (False, as Odoo gives an aggregate over nothing).
        self.assertEqual(alone, [(self.stage_a, 2.5), (self.stage_b, False)])
        self.assertEqual(mixed, [(self.stage_a, 4, 2.5, 4), (self.stage_b, 4, False, 4)])
        self.assertEqual(limited, [(self.stage_a, 4, 2.5), (self.stage_b, 4, False)])


@tagged("post_install", "-at_install")
class TestFunnelAccessAndDrillDown(FunnelCase):
    def test_other_company_deals_are_not_in_the_funnel_nor_history(self):
        other_company = self.env["res.company"].create({"name": "Other company"})
        self.salesman_all = self.env["res.users"].create(
            {
                "name": "All Leads",
                "login": "funnel_all_leads",
                "groups_id": [
                    (6, 0, [self.env.ref("sales_team.group_sale_salesman_all_leads").id])
                ],
            }
        )
        here = self.new_deal(day(0), name="here", user=self.salesman_all)
        with self.at(day(0)):
            there = self.env["crm.lead"].create(
                {
                    "name": "there",
                    "type": "opportunity",
                    "company_id": other_company.id,
                    "user_id": False,
                    "team_id": False,
                    "stage_id": self.stage_a.id,
                }
            )
        Report = self.env["sales.funnel.report"].with_user(self.salesman_all)
        History = self.env["crm.lead.stage.history"].with_user(self.salesman_all)
        domain = [("lead_id", "in", (here | there).ids)]
        self.assertEqual(Report.search(domain).lead_id, here)
        self.assertEqual(History.search(domain).lead_id, here)
        self.salesman_all.company_ids = [(4, other_company.id)]
        both = Report.with_context(allowed_company_ids=[self.env.company.id, other_company.id])
        self.assertEqual(both.search(domain).lead_id, here | there)

    def test_a_funnel_row_opens_its_deal(self):
        deal = self.new_deal(day(0), name="drill")
        row = (
            self.env["sales.funnel.report"]
            .with_user(self.salesman)
            .search([("lead_id", "=", deal.id)])
        )
        self.assertEqual(
            row.action_open_lead(),
            {
                "type": "ir.actions.act_window",
                "res_model": "crm.lead",
                "res_id": deal.id,
                "views": [(False, "form")],
            },
        )


@tagged("post_install", "-at_install")
class TestGroupOrder(FunnelCase):
    def test_salespeople_in_name_order_and_teams_in_their_order(self):
        zed = self.env["res.users"].create(
            {
                "name": "Zed Seller",
                "login": "zed_seller",
                "groups_id": [(6, 0, [self.env.ref("sales_team.group_sale_salesman").id])],
            }
        )
        abe = self.env["res.users"].create(
            {
                "name": "Abe Seller",
                "login": "abe_seller",
                "groups_id": [(6, 0, [self.env.ref("sales_team.group_sale_salesman").id])],
            }
        )
        self.assertLess(zed.id, abe.id)
        deals = self.new_deal(day(0), name="z", user=zed)
        deals |= self.new_deal(day(0), name="a", user=abe)
        Report = self.env["sales.funnel.report"]
        by_user = Report.read_group(
            [("lead_id", "in", deals.ids)], ["lead_count:sum"], ["user_id"], lazy=False
        )
        self.assertEqual([row["user_id"][1] for row in by_user], ["Abe Seller", "Zed Seller"])
        by_user_desc = Report.read_group(
            [("lead_id", "in", deals.ids)],
            ["lead_count:sum"],
            ["user_id"],
            lazy=False,
            orderby="user_id desc",
        )
        self.assertEqual([row["user_id"][1] for row in by_user_desc], ["Zed Seller", "Abe Seller"])
        by_stage_user = Report.read_group(
            [("lead_id", "in", deals.ids)],
            ["lead_count:sum"],
            ["stage_id", "user_id"],
            lazy=False,
        )
        self.assertEqual(
            [(row["stage_id"][1], row["user_id"][1], row["lead_count"]) for row in by_stage_user],
            [("A", "Abe Seller", 1), ("A", "Zed Seller", 1)],
        )


@tagged("post_install", "-at_install")
class TestMedianFunction(FunnelCase):
    def test_uninstall_drops_it_and_init_creates_it(self):
        Report = self.env["sales.funnel.report"]
        exists = "SELECT count(*) FROM pg_proc WHERE proname = 'sales_funnel_median'"
        Report._drop_median_function()
        self.env.cr.execute(exists)
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        Report.init()
        self.env.cr.execute(exists)
        self.assertEqual(self.env.cr.fetchone()[0], 1)
        self.env.cr.execute("SELECT sales_funnel_median(ARRAY[4, 1, 10, 0]::float8[])")
        self.assertEqual(self.env.cr.fetchone()[0], 2.5)
