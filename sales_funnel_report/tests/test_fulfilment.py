from odoo.tests import tagged

from .common import day
from .fulfilment_common import FulfilmentCase, midnight


@tagged("post_install", "-at_install")
class TestFulfilmentSteps(FulfilmentCase):
    """Pipeline A → B → C → Won, then Order → Invoiced → Paid."""

    def test_paid_in_full(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_b, day(2))
        with self.at(day(4)):
            deal.action_set_won()
        order = self.order(deal, day(5))
        invoice = self.invoice(order, day(7))
        self.pay(invoice, day(10))
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(self.steps(deal), [
            ("A", "passed", False, 2.0, day(0)),
            ("B", "passed", False, 2.0, day(2)),
            ("C", "passed", True, None, day(4)),
            # from winning to the confirmed order
            ("Won", "passed", False, 1.0, day(4)),
            # accounting dates from here: whole days
            ("Order", "passed", False, 2.0, day(5)),
            ("Invoiced", "passed", False, 3.0, midnight(day(7))),
            ("Paid", "won", False, None, midnight(day(10))),
        ])

    def test_partial_payment_stops_at_invoiced(self):
        deal = self.deal(day(0))
        order = self.order(deal, day(3), qty=2)
        invoice = self.invoice(order, day(4))
        self.pay(invoice, day(6), amount=150.0)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(self.steps(deal), [
            # the open stay in A ends when the order is confirmed
            ("A", "passed", False, 3.0, day(0)),
            # jumped over by the confirmed order
            ("B", "passed", True, None, day(3)),
            ("C", "passed", True, None, day(3)),
            ("Won", "passed", True, None, day(3)),
            ("Order", "passed", False, 1.0, day(3)),
            ("Invoiced", "open", False, None, midnight(day(4))),
        ])
        self.pay(invoice, day(9), amount=50.0)
        self.assertEqual(self.steps(deal)[-2:], [
            ("Invoiced", "passed", False, 5.0, midnight(day(4))),
            ("Paid", "won", False, None, midnight(day(9))),
        ])

    def test_order_cancelled_after_confirmation_is_lost_at_order(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_b, day(1))
        order = self.order(deal, day(2))
        self.cancel(order, day(3))
        self.assertEqual(order.state, "cancel")
        self.assertEqual(self.steps(deal), [
            ("A", "passed", False, 1.0, day(0)),
            ("B", "passed", False, 1.0, day(1)),
            ("C", "passed", True, None, day(2)),
            ("Won", "passed", True, None, day(2)),
            ("Order", "lost", False, None, day(2)),
        ])
        self.assertEqual(self.deal_state(deal), "lost")

    def test_two_orders_one_paid_one_not(self):
        deal = self.deal(day(0))
        first = self.order(deal, day(1))
        second = self.order(deal, day(2), price=300.0)
        self.pay(self.invoice(first, day(3)), day(4))
        unpaid = self.invoice(second, day(5))
        self.assertEqual(self.steps(deal)[-2:], [
            # from the first confirmation to the first invoice
            ("Order", "passed", False, 2.0, day(1)),
            ("Invoiced", "open", False, None, midnight(day(3))),
        ])
        self.pay(unpaid, day(8))
        self.assertEqual(self.steps(deal)[-3:], [
            ("Order", "passed", False, 2.0, day(1)),
            # from the first invoice to the last payment
            ("Invoiced", "passed", False, 5.0, midnight(day(3))),
            ("Paid", "won", False, None, midnight(day(8))),
        ])

    def test_credit_note_reversing_the_invoice(self):
        deal = self.deal(day(0))
        order = self.order(deal, day(1))
        invoice = self.invoice(order, day(2))
        self.refund(invoice, day(3))
        self.assertEqual(invoice.payment_state, "reversed")
        # nothing invoiced any more: back to Order, still open
        self.assertEqual(self.steps(deal)[-1:], [("Order", "open", False, None, day(1))])
        self.assertEqual(order.invoice_status, "to invoice")
        self.pay(self.invoice(order, day(4)), day(6))
        self.assertEqual(self.steps(deal)[-3:], [
            ("Order", "passed", False, 3.0, day(1)),
            ("Invoiced", "passed", False, 2.0, midnight(day(4))),
            ("Paid", "won", False, None, midnight(day(6))),
        ])

    def test_paid_deal_never_marked_won(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_c, day(2))
        order = self.order(deal, day(3))
        self.pay(self.invoice(order, day(3)), day(5))
        self.assertEqual(deal.stage_id, self.stage_c)
        self.assertEqual(self.steps(deal), [
            ("A", "passed", False, 2.0, day(0)),
            ("B", "passed", True, None, day(2)),
            ("C", "passed", False, 1.0, day(2)),
            ("Won", "passed", True, None, day(3)),
            ("Order", "passed", False, 0.0, day(3)),
            ("Invoiced", "passed", False, 2.0, midnight(day(3))),
            ("Paid", "won", False, None, midnight(day(5))),
        ])
        self.assertEqual(self.deal_state(deal), "paid")

    def deal_state(self, deal):
        states = self.env["sales.funnel.report"].search([("lead_id", "=", deal.id)]).mapped(
            "deal_state"
        )
        self.assertEqual(len(set(states)), 1)
        return states[0]
