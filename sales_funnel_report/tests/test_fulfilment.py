from unittest.mock import patch

from odoo.tests import tagged

from .common import day
from .fulfilment_common import FulfilmentCase, midnight


@tagged("post_install", "-at_install")
class TestFulfilmentSteps(FulfilmentCase):
    """Pipeline A → B → C → Won, then Order → Invoiced → Paid. With the default
    meaning of won (the won stage), a deal with a confirmed order is won where
    it stands, at Order or Invoiced, until it is paid or lost."""

    def test_paid_in_full(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_b, day(2))
        with self.at(day(4)):
            deal.action_set_won()
        order = self.order(deal, day(5))
        invoice = self.invoice(order, day(7))
        self.pay(invoice, day(10))
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(
            self.steps(deal),
            [
                ("A", "passed", False, 2.0, day(0)),
                ("B", "passed", False, 2.0, day(2)),
                ("C", "passed", True, None, day(4)),
                # from winning to the confirmed order
                ("Won", "passed", False, 1.0, day(4)),
                # accounting dates from here: whole days
                ("Order", "passed", False, 2.0, day(5)),
                ("Invoiced", "passed", False, 3.0, midnight(day(7))),
                ("Paid", "won", False, None, midnight(day(10))),
            ],
        )

    def test_partial_payment_stops_at_invoiced(self):
        deal = self.deal(day(0))
        order = self.order(deal, day(3), qty=2)
        invoice = self.invoice(order, day(4))
        self.pay(invoice, day(6), amount=150.0)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(
            self.steps(deal),
            [
                # the open stay in A ends when the order is confirmed
                ("A", "passed", False, 3.0, day(0)),
                # jumped over by the confirmed order
                ("B", "passed", True, None, day(3)),
                ("C", "passed", True, None, day(3)),
                ("Won", "passed", True, None, day(3)),
                ("Order", "passed", False, 1.0, day(3)),
                ("Invoiced", "won", False, None, midnight(day(4))),
            ],
        )
        self.pay(invoice, day(9), amount=50.0)
        self.assertEqual(
            self.steps(deal)[-2:],
            [
                ("Invoiced", "passed", False, 5.0, midnight(day(4))),
                ("Paid", "won", False, None, midnight(day(9))),
            ],
        )

    def test_order_cancelled_after_confirmation_is_lost_at_order(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_b, day(1))
        order = self.order(deal, day(2))
        self.cancel(order, day(3))
        self.assertEqual(order.state, "cancel")
        self.assertEqual(
            self.steps(deal),
            [
                ("A", "passed", False, 1.0, day(0)),
                ("B", "passed", False, 1.0, day(1)),
                ("C", "passed", True, None, day(2)),
                ("Won", "passed", True, None, day(2)),
                ("Order", "lost", False, None, day(2)),
            ],
        )
        self.assertEqual(self.deal_state(deal), "lost")

    def test_two_orders_one_paid_one_not(self):
        deal = self.deal(day(0))
        first = self.order(deal, day(1))
        second = self.order(deal, day(2), price=300.0)
        self.pay(self.invoice(first, day(3)), day(4))
        unpaid = self.invoice(second, day(5))
        self.assertEqual(
            self.steps(deal)[-2:],
            [
                # from the first confirmation to the first invoice
                ("Order", "passed", False, 2.0, day(1)),
                ("Invoiced", "won", False, None, midnight(day(3))),
            ],
        )
        self.pay(unpaid, day(8))
        self.assertEqual(
            self.steps(deal)[-3:],
            [
                ("Order", "passed", False, 2.0, day(1)),
                # from the first invoice to the last payment
                ("Invoiced", "passed", False, 5.0, midnight(day(3))),
                ("Paid", "won", False, None, midnight(day(8))),
            ],
        )

    def test_invoices_are_planned_only_for_deals_with_some(self):
        """A confirmation whose deal has no invoice yet is recorded without the
        joins over invoices; once one of its orders is invoiced, with them: the
        steps are right both ways."""
        Fact = type(self.env["sales.funnel.fact"])
        deal = self.deal(day(0))
        with patch.object(Fact, "_write_rows", autospec=True, side_effect=Fact._write_rows) as spy:
            first = self.order(deal, day(1))
        self.assertEqual([call.kwargs["invoiced"] for call in spy.call_args_list], [False])
        self.assertEqual(self.steps(deal)[-1], ("Order", "won", False, None, day(1)))
        self.pay(self.invoice(first, day(3)), day(4))
        with patch.object(Fact, "_write_rows", autospec=True, side_effect=Fact._write_rows) as spy:
            self.order(deal, day(5), price=300.0)
        self.assertEqual([call.kwargs["invoiced"] for call in spy.call_args_list], [True])
        # the second order, confirmed and not invoiced, holds the deal at Invoiced
        self.assertEqual(
            self.steps(deal)[-2:],
            [
                ("Order", "passed", False, 2.0, day(1)),
                ("Invoiced", "won", False, None, midnight(day(3))),
            ],
        )

    def test_credit_note_reversing_the_invoice(self):
        deal = self.deal(day(0))
        order = self.order(deal, day(1))
        invoice = self.invoice(order, day(2))
        self.refund(invoice, day(3))
        self.assertEqual(invoice.payment_state, "reversed")
        # nothing invoiced any more: back to Order, still open
        self.assertEqual(self.steps(deal)[-1:], [("Order", "won", False, None, day(1))])
        self.assertEqual(order.invoice_status, "to invoice")
        self.pay(self.invoice(order, day(4)), day(6))
        self.assertEqual(
            self.steps(deal)[-3:],
            [
                ("Order", "passed", False, 3.0, day(1)),
                ("Invoiced", "passed", False, 2.0, midnight(day(4))),
                ("Paid", "won", False, None, midnight(day(6))),
            ],
        )

    def test_paid_deal_never_marked_won(self):
        deal = self.deal(day(0))
        self.move(deal, self.stage_c, day(2))
        order = self.order(deal, day(3))
        self.pay(self.invoice(order, day(3)), day(5))
        self.assertEqual(deal.stage_id, self.stage_c)
        self.assertEqual(
            self.steps(deal),
            [
                ("A", "passed", False, 2.0, day(0)),
                ("B", "passed", True, None, day(2)),
                ("C", "passed", False, 1.0, day(2)),
                ("Won", "passed", True, None, day(3)),
                ("Order", "passed", False, 0.0, day(3)),
                ("Invoiced", "passed", False, 2.0, midnight(day(3))),
                ("Paid", "won", False, None, midnight(day(5))),
            ],
        )
        self.assertEqual(self.deal_state(deal), "paid")


@tagged("post_install", "-at_install")
class TestFulfilmentEdges(FulfilmentCase):
    def test_deal_lost_after_its_order_is_lost_at_order(self):
        # the seed's case: terms agreed, order prepared, the goods could not be supplied
        deal = self.deal(day(0))
        self.order(deal, day(1))
        self.lose(deal, self.reason_price, day(4))
        self.assertEqual(self.steps(deal)[-1], ("Order", "lost", False, None, day(1)))
        row = self.env["sales.funnel.report"].search(
            [("lead_id", "=", deal.id), ("state", "=", "lost")]
        )
        self.assertEqual((row.step_code, row.lost_reason_id), ("order", self.reason_price))

    def test_foreign_currency_paid_in_full(self):
        eur = self.env.ref("base.EUR")
        eur.active = True
        self.env["res.currency.rate"].create(
            {
                "name": "2025-01-01",
                "rate": 0.5,
                "currency_id": eur.id,
                "company_id": self.company.id,
            }
        )
        deal = self.deal(day(0))
        order = self.order(deal, day(1), price=80.0, currency=eur)
        invoice = self.invoice(order, day(2))
        self.assertEqual((invoice.currency_id, invoice.amount_total), (eur, 80.0))
        self.pay(invoice, day(3), amount=40.0)
        self.assertEqual(self.steps(deal)[-1], ("Invoiced", "won", False, None, midnight(day(2))))
        self.pay(invoice, day(5), amount=40.0)
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(
            self.steps(deal)[-2:],
            [
                ("Invoiced", "passed", False, 3.0, midnight(day(2))),
                ("Paid", "won", False, None, midnight(day(5))),
            ],
        )

    def test_quantity_left_to_invoice_is_not_paid(self):
        deal = self.deal(day(0))
        order = self.order(deal, day(1), qty=3)
        with self.at(day(2)):
            invoice = order.with_user(self.billing)._create_invoices()
            invoice.invoice_line_ids.quantity = 1
            invoice.invoice_date = day(2).date()
            invoice.action_post()
        self.pay(invoice, day(3))
        self.assertEqual(invoice.payment_state, "paid")
        # one of three days invoiced and paid: the deal is not paid in full
        self.assertEqual(self.steps(deal)[-1], ("Invoiced", "won", False, None, midnight(day(2))))
        self.pay(self.invoice(order, day(6)), day(7))
        self.assertEqual(
            self.steps(deal)[-2:],
            [
                ("Invoiced", "passed", False, 5.0, midnight(day(2))),
                ("Paid", "won", False, None, midnight(day(7))),
            ],
        )

    def test_draft_credit_note_holds_paid_back_until_deleted(self):
        deal = self.deal(day(0))
        order = self.order(deal, day(1))
        invoice = self.invoice(order, day(2))
        self.pay(invoice, day(3))
        self.assertEqual(self.steps(deal)[-1][:2], ("Paid", "won"))
        with self.at(day(4)):
            draft = invoice.with_user(self.billing)._reverse_moves(
                [{"invoice_date": day(4).date()}]
            )
        self.assertEqual(draft.state, "draft")
        # an invoice not yet posted on the order: not paid in full
        self.assertEqual(self.steps(deal)[-1], ("Invoiced", "won", False, None, midnight(day(2))))
        with self.at(day(5)):
            draft.with_user(self.billing).unlink()
        self.assertEqual(self.steps(deal)[-1], ("Paid", "won", False, None, midnight(day(3))))

    def test_recording_orders_is_a_constant_number_of_queries(self):
        few = [self.deal(day(0), name=f"few {i}") for i in range(2)]
        many = [self.deal(day(0), name=f"many {i}") for i in range(12)]

        def confirm_orders(deals):
            orders = self.env["sale.order"].create(
                [
                    {
                        "partner_id": self.customer.id,
                        "opportunity_id": deal.id,
                        "order_line": [(0, 0, {"product_id": self.product.id})],
                    }
                    for deal in deals
                ]
            )
            for order in orders:  # one confirmation per order
                order.action_confirm()

        self.assert_recording_queries_constant(confirm_orders, few, many, day(1))
        orders = self.env["sales.funnel.report"].search_count(
            [("lead_id", "in", [deal.id for deal in many]), ("step_code", "=", "order")]
        )
        self.assertEqual(orders, 12)

    def test_salesman_sees_only_the_orders_of_his_deals(self):
        mine = self.deal(day(0), name="Mine")
        theirs = self.new_deal(
            day(0), name="Theirs", user=self.other_salesman, partner_id=self.customer.id
        )
        self.order(mine, day(1))
        self.order(theirs, day(1), user=self.other_salesman)
        seen = (
            self.env["sales.funnel.report"]
            .with_user(self.salesman)
            .search([("step_code", "=", "order")])
        )
        self.assertEqual(seen.lead_id, mine)

    def test_confirmations_dated_from_the_chatter_on_install(self):
        deal = self.deal(day(0))
        kept = self.order(deal, day(1))
        cancelled = self.order(deal, day(2))
        self.cancel(cancelled, day(3))
        with self.at(day(4)):
            kept._action_cancel()
        with self.at(day(4, hours=1)):
            kept.action_draft()
        with self.at(day(5)):
            kept.action_confirm()
        later = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "opportunity_id": deal.id,
                "order_line": [(0, 0, {"product_id": self.product.id})],
            }
        )
        with self.at(day(6)):
            later.action_confirm()
        # as before the module was installed
        orders = kept | cancelled | later
        self.env.cr.execute(
            "UPDATE sale_order SET funnel_confirmed_at = NULL WHERE id IN %s",
            [tuple(orders.ids)],
        )
        orders.invalidate_recordset()
        self.env["sale.order"]._fill_funnel_confirmed_at()
        # created confirmed; cancelled later
        self.assertEqual(kept.funnel_confirmed_at, day(1))
        self.assertEqual(cancelled.funnel_confirmed_at, day(2))
        # a quotation confirmed later
        self.assertEqual(later.funnel_confirmed_at, day(6))
        self.env["sales.funnel.rebuild"]._run()
        self.assertEqual(self.steps(deal)[-1], ("Order", "won", False, None, day(1)))

    def test_order_created_confirmed_counts_from_its_creation(self):
        # as an import or another module creates it, without action_confirm
        deal = self.deal(day(0))
        with self.at(day(2)):
            self.env["sale.order"].create(
                {
                    "partner_id": self.customer.id,
                    "opportunity_id": deal.id,
                    "state": "sale",
                    "date_order": day(2),
                    "order_line": [(0, 0, {"product_id": self.product.id})],
                }
            )
        self.assertEqual(self.steps(deal)[-1], ("Order", "won", False, None, day(2)))
