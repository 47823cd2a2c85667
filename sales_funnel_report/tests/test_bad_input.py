from odoo.tests import tagged

from .common import FunnelCase, day


@tagged("post_install", "-at_install")
class TestBadInput(FunnelCase):
    """Filters on the outcome, deal status and type behave as on any stored
    selection field of Odoo (crm.lead's priority, res.partner's type): a scalar for
    "in" is refused, any other value is compared as text and False/None as NULL.
    Aggregates are parsed as core parses them."""

    def setUp(self):
        super().setUp()
        # D1: A day 0, B day 2, C day 3, won day 6 (rows A, B, C passed, Won won).
        # D2: A day 0, lost day 1 (row A lost).
        self.d1 = self.new_deal(day(0), name="D1")
        self.move(self.d1, self.stage_b, day(2))
        self.move(self.d1, self.stage_c, day(3))
        self.move(self.d1, self.stage_won, day(6))
        self.d2 = self.new_deal(day(0), name="D2")
        self.lose(self.d2, self.reason_price, day(1))
        self.report = self.env["sales.funnel.report"].with_user(self.salesman)
        self.ours = [("lead_id", "in", (self.d1 | self.d2).ids)]

    def count(self, *terms):
        return self.report.search_count(self.ours + list(terms))

    def test_scenario_rows_by_outcome_status_and_type(self):
        self.assertEqual(self.count(), 5)
        self.assertEqual(self.count(("state", "=", "passed")), 3)
        self.assertEqual(self.count(("state", "=", "won")), 1)
        self.assertEqual(self.count(("state", "=", "lost")), 1)
        self.assertEqual(self.count(("deal_state", "=", "won")), 4)
        self.assertEqual(self.count(("type", "=", "opportunity")), 5)

    def test_scalar_for_in_is_refused_as_core_refuses_it(self):
        for fname, operator, value in [
            ("state", "in", 5),
            ("state", "not in", 5),
            ("state", "in", "passed"),
            ("state", "in", {"passed"}),
            ("deal_state", "in", 5),
            ("deal_state", "not in", {"won": 1}),
            ("type", "in", "lead"),
        ]:
            term = (fname, operator, value)
            with self.subTest(term=term):
                with self.assertRaises(ValueError) as caught:
                    self.count(term)
                self.assertEqual(caught.exception.args[0], f"Invalid domain term {term!r}")
                # core, on a stored selection field
                with self.assertRaises(ValueError) as core:
                    self.env["crm.lead"].search_count([("priority", operator, value)])
                self.assertEqual(
                    core.exception.args[0], f"Invalid domain term {('priority', operator, value)!r}"
                )
        with self.assertRaises(ValueError) as caught:
            self.report._read_group(self.ours + [("state", "in", 5)], ["step_id"], ["__count"])
        self.assertEqual(caught.exception.args[0], "Invalid domain term ('state', 'in', 5)")

    def test_values_of_another_type_find_nothing(self):
        for term, expected in [
            (("state", "=", {"a": 1}), 0),
            (("state", "!=", {"a": 1}), 5),
            (("state", "in", [["passed"]]), 0),
            (("state", "not in", [["passed"]]), 5),
            (("state", "in", [["passed"], "lost"]), 1),
            (("state", "=", 1), 0),
            (("state", "!=", 1), 5),
            (("state", "=", "bogus"), 0),
            (("state", "in", ("passed", "won")), 4),
            (("deal_state", "=", {"won"}), 0),
            (("deal_state", "in", [["won"]]), 0),
            (("deal_state", "not in", [["won"]]), 5),
            (("type", "=", {"opportunity": 1}), 0),
            (("type", "in", [["opportunity"]]), 0),
            # normalized by core to = / != True, compared as the text "True"
            (("state", "in", True), 0),
            (("state", "not in", True), 5),
            (("deal_state", "in", False), 0),
        ]:
            with self.subTest(term=term):
                self.assertEqual(self.count(term), expected)

    def test_false_and_none_are_null(self):
        for fname in ("state", "deal_state", "type"):
            for term, expected in [
                ((fname, "=", False), 0),
                ((fname, "!=", False), 5),
                ((fname, "=", None), 0),
                ((fname, "!=", None), 5),
                ((fname, "in", [False]), 0),
                ((fname, "not in", [False]), 5),
                ((fname, "in", []), 0),
                ((fname, "not in", []), 5),
            ]:
                with self.subTest(term=term):
                    self.assertEqual(self.count(term), expected)
        self.assertEqual(self.count(("state", "in", [False, "passed"])), 3)
        self.assertEqual(self.count(("state", "not in", [None, "passed"])), 2)
        self.assertEqual(self.count(("deal_state", "in", [None, "lost"])), 1)

    def aggregate(self, *specs):
        [row] = self.report._read_group(self.ours, [], list(specs))
        # False: an aggregate that does not apply (Odoo's empty aggregate)
        return [value if value is False else round(value, 4) for value in row]

    def test_bad_aggregates_raise_core_value_error(self):
        for spec, message in [
            ("lead_count:bogus", "Invalid aggregate method 'bogus' for 'lead_count:bogus'."),
            (
                "conversion_rate:median",
                "Invalid aggregate method 'median' for 'conversion_rate:median'.",
            ),
            ("lead_count", "Aggregate method is mandatory for 'lead_count'"),
            ("lead_count.x:sum", "Invalid 'lead_count.x:sum', this dot notation is not supported"),
            (
                "lost_count:recordset",
                "Aggregate method 'recordset' can be only used on "
                "relational field (or id) (for 'lost_count:recordset').",
            ),
            ("bogus:sum", "Invalid field 'bogus' on model 'sales.funnel.report' for 'bogus:sum'."),
        ]:
            with self.subTest(spec=spec), self.assertRaises(ValueError) as caught:
                self.aggregate(spec)
            self.assertEqual(caught.exception.args[0], message)
        for spec in ["lead_count:sum) from x--", "lead_count:sum, 1", "won_count:sum;"]:
            with self.subTest(spec=spec), self.assertRaises(ValueError) as caught:
                self.aggregate(spec)
            self.assertTrue(
                caught.exception.args[0].startswith(
                    f"Invalid aggregate/groupby specification {spec!r}."
                )
            )

    def test_declared_aggregators_count(self):
        # rows of several steps: each deal once, at its position (D1 won, D2 lost);
        # durations: D1 A 2, B 1, C 3 days (Won: none yet); D2 A 1 day
        self.assertEqual(
            self.aggregate(
                "lead_count:sum",
                "passed_count:sum",
                "lost_count:sum",
                "open_count:sum",
                "won_count:sum",
                "won_deal_count:sum",
                "conversion_rate:avg",
                "win_rate:avg",
                "duration_days:avg",
                "duration_median_days:avg",
            ),
            [2, False, 1, 0, 1, 1, False, 50.0, 1.75, 1.5],
        )

    def test_other_functions_read_the_row_values(self):
        self.assertEqual(
            self.aggregate(
                "lead_count:max",
                "lead_count:min",
                "lead_count:count",
                "passed_count:max",
                "passed_count:avg",
                "conversion_rate:max",
                "conversion_rate:min",
                "conversion_rate:sum",
                "win_rate:sum",
                "duration_median_days:max",
                "duration_median_days:sum",
                "duration_days:sum",
            ),
            [1, 1, 5, 1, 0.6, 100.0, 0.0, 300.0, 400.0, 3.0, 7.0, 7.0],
        )
        # grouped, as the pivot asks
        self.assertEqual(
            [
                (step.name, count, top)
                for step, count, top in self.report._read_group(
                    self.ours,
                    ["step_id"],
                    ["lead_count:sum", "lead_count:max"],
                    order="step_id",
                )
            ],
            [("A", 2, 1), ("B", 1, 1), ("C", 1, 1), ("Won", 1, 1)],
        )
        # the web client's read_group
        self.assertEqual(
            self.report.read_group(self.ours, ["lead_count:max", "lost_count:sum"], []),
            [{"__count": 5, "lead_count": 1, "lost_count": 1, "__domain": self.ours}],
        )
