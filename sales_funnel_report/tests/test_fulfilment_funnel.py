from odoo.tests import tagged

from ..report.sales_funnel_report import WON_MEANS_PARAM
from .common import MEASURES, day, funnel_table
from .fulfilment_common import FulfilmentCase

WON = "Won (Funnel team)"


@tagged("post_install", "-at_install")
class TestFulfilmentFunnel(FulfilmentCase):
    """Six deals through the whole funnel, counted step by step."""

    def setUp(self):
        super().setUp()
        # P: A → B day 2 → won day 4 → ordered day 5 → invoiced day 7 → paid day 10
        self.p = self.deal(day(0), name="P")
        self.move(self.p, self.stage_b, day(2))
        with self.at(day(4)):
            self.p.action_set_won()
        self.pay(self.invoice(self.order(self.p, day(5)), day(7)), day(10))
        # N: A → C day 2 → ordered and invoiced day 3 → paid day 5; never marked won
        self.n = self.deal(day(0), name="N")
        self.move(self.n, self.stage_c, day(2))
        self.pay(self.invoice(self.order(self.n, day(3)), day(3)), day(5))
        # Q: A → ordered day 3 → invoiced day 4 → paid in part day 6
        self.q = self.deal(day(0), name="Q")
        invoice = self.invoice(self.order(self.q, day(3), qty=2), day(4))
        self.pay(invoice, day(6), amount=50.0)
        # X: A → B day 1 → ordered day 2 → order cancelled day 3
        self.x = self.deal(day(0), name="X")
        self.move(self.x, self.stage_b, day(1))
        self.cancel(self.order(self.x, day(2)), day(3))
        # W: A → won day 1, no order yet
        self.w = self.deal(day(0), name="W")
        with self.at(day(1)):
            self.w.action_set_won()
        # L: A → lost day 1
        self.lost = self.deal(day(0), name="L")
        self.lose(self.lost, self.reason_price, day(1))
        self.deals = self.p | self.n | self.q | self.x | self.w | self.lost

    def funnel(self, domain=(), groupby=("step_id",)):
        rows = (
            self.env["sales.funnel.report"]
            .with_user(self.manager)
            .read_group(
                [("lead_id", "in", self.deals.ids), *domain],
                MEASURES,
                list(groupby),
                lazy=False,
            )
        )
        return funnel_table(rows, groupby[0] if groupby else None)

    def test_funnel_by_step_won_stage_meaning(self):
        funnel = self.funnel()
        # Odoo's own (parked) stages have a "Won" too: the step names its pipeline
        self.assertEqual(list(funnel), ["A", "B", "C", WON, "Order", "Invoiced", "Paid"])
        self.assertEqual(
            funnel,
            {
                # reached, passed, lost, open, won, conversion, win rate, avg days, median days
                "A": (6, 5, 1, 0, 0, 83.3, 66.7, 1.6667, 1.5),
                "B": (5, 5, 0, 0, 0, 100.0, 80.0, 1.5, 1.5),
                "C": (5, 5, 0, 0, 0, 100.0, 80.0, 1.0, 1.0),
                # W won there; P, N, Q and X went on to their orders
                WON: (5, 4, 0, 0, 1, 80.0, 80.0, 1.0, 1.0),
                # X lost when its order was cancelled
                "Order": (4, 3, 1, 0, 0, 75.0, 75.0, 1.0, 1.0),
                # Q, ordered and not paid yet, is won: a confirmed order wins a deal
                "Invoiced": (3, 2, 0, 0, 1, 66.7, 100.0, 2.5, 2.5),
                # the funnel ends: no conversion
                "Paid": (2, 0, 0, 0, 2, None, 100.0, None, None),
            },
        )
        for reached, passed, lost, open_, won, *_rest in funnel.values():
            self.assertEqual(reached, passed + lost + open_ + won)
        # the six deals once each: L and X lost, W, Q, P and N won
        self.assertEqual(self.funnel(groupby=())["total"][:7], (6, False, 2, 0, 4, None, 66.7))

    def test_won_means_paid(self):
        self.env["ir.config_parameter"].set_param(WON_MEANS_PARAM, "paid")
        funnel = self.funnel()
        self.assertEqual(
            {step: row[3:7] for step, row in funnel.items()},
            {
                # open, won, conversion, win rate: only P and N, paid in full, are
                # won; W in the won stage and Q invoiced are open where they are
                "A": (0, 0, 83.3, 33.3),
                "B": (0, 0, 100.0, 40.0),
                "C": (0, 0, 100.0, 40.0),
                WON: (1, 0, 80.0, 40.0),
                "Order": (0, 0, 75.0, 50.0),
                "Invoiced": (1, 0, 66.7, 66.7),
                "Paid": (0, 2, None, 100.0),
            },
        )
        for reached, passed, lost, open_, won, *_rest in funnel.values():
            self.assertEqual(reached, passed + lost + open_ + won)
        self.assertEqual(self.funnel(groupby=())["total"][:7], (6, False, 2, 2, 2, None, 33.3))
        # the list shows the same meaning, row by row
        paid_rows = self.env["sales.funnel.report"].search(
            [("lead_id", "in", self.deals.ids), ("won_count", "=", 1)]
        )
        self.assertEqual(set(paid_rows.mapped("step_id.name")), {"Paid"})
        # back to the default (no parameter): the won stage counts again
        self.env["ir.config_parameter"].set_param(WON_MEANS_PARAM, False)
        self.assertEqual(self.funnel()[WON][4], 1)

    def test_filters_on_fulfilment_outcome_and_deal_status(self):
        lost = self.funnel([("state", "=", "lost"), ("is_fulfilment", "=", True)])
        self.assertEqual(lost, {"Order": (1, 0, 1, 0, 0, 0.0, 0.0, None, None)})
        paid = self.env["sales.funnel.report"].search(
            [("lead_id", "in", self.deals.ids), ("deal_state", "=", "paid")]
        )
        self.assertEqual(set(paid.lead_id.mapped("name")), {"P", "N"})
        self.assertEqual(
            {deal.name: self.deal_state(deal) for deal in self.deals},
            {"P": "paid", "N": "paid", "Q": "won", "X": "lost", "W": "won", "L": "lost"},
        )

    def test_pipeline_stages_grouped_as_before(self):
        by_stage = self.funnel([("is_fulfilment", "=", False)], groupby=("stage_id",))
        self.assertEqual(list(by_stage), ["A", "B", "C", "Won"])
        self.assertEqual(by_stage["Won"], self.funnel()[WON])
