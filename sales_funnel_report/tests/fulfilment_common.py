from datetime import timedelta

from odoo import Command

from .common import FunnelCase


class FulfilmentCase(FunnelCase):
    """The funnel team's deals, sold by a company with its own chart of accounts:
    the salesman quotes and confirms orders, a billing clerk invoices them and
    registers payments through the bank journal's outstanding receipts, as an
    accountant would (the payment's journal entry is reconciled with the invoice)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.company = env["res.company"].create(
            {
                "name": "Funnel Trading",
                "currency_id": env.ref("base.USD").id,
            }
        )
        env["account.chart.template"].try_loading(
            "generic_coa", company=cls.company, install_demo=False
        )
        cls.env = env = env(context=dict(env.context, allowed_company_ids=[cls.company.id]))
        cls.billing = cls._company_user("funnel_billing", "account.group_account_invoice")
        for user in (cls.salesman, cls.other_salesman, cls.manager):
            user.write(
                {"company_ids": [Command.link(cls.company.id)], "company_id": cls.company.id}
            )
        cls.team.company_id = cls.company
        cls.bank = env["account.journal"].search(
            [("company_id", "=", cls.company.id), ("type", "=", "bank")], limit=1
        )
        cls.bank.inbound_payment_method_line_ids[:1].payment_account_id = (
            env["account.chart.template"]
            .with_company(cls.company)
            .ref("account_journal_payment_debit_account_id")
        )
        cls.customer = env["res.partner"].create({"name": "Customer"})
        cls.product = env["product.product"].create(
            {
                "name": "Consulting day",
                "type": "service",
                "invoice_policy": "order",
                "list_price": 100.0,
                "taxes_id": [Command.clear()],
            }
        )

    @classmethod
    def _company_user(cls, login, group):
        return (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                {
                    "name": login.replace("_", " ").title(),
                    "login": login,
                    "email": f"{login}@example.com",
                    "company_id": cls.company.id,
                    "company_ids": [Command.set(cls.company.ids)],
                    "groups_id": [Command.set(cls.env.ref(group).ids)],
                }
            )
        )

    def deal(self, when, stage=None, name="Deal"):
        return self.new_deal(when, stage=stage, name=name, partner_id=self.customer.id)

    def order(self, deal, when, qty=1.0, price=100.0, currency=None, user=None):
        """The salesman quotes the deal and the customer confirms at ``when``."""
        with self.at(when):
            vals = {
                "partner_id": self.customer.id,
                "opportunity_id": deal.id,
                "team_id": self.team.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": self.product.id,
                            "product_uom_qty": qty,
                            "price_unit": price,
                        }
                    )
                ],
            }
            if currency:
                vals["pricelist_id"] = (
                    self.env["product.pricelist"]
                    .create({"name": currency.name, "currency_id": currency.id})
                    .id
                )
            order = self.env["sale.order"].with_user(user or self.salesman).create(vals)
            order.action_confirm()
        return order

    def cancel(self, order, when):
        with self.at(when):
            order.with_user(self.salesman)._action_cancel()

    def invoice(self, order, when):
        """Invoice what is left to invoice, dated ``when``, and post it."""
        with self.at(when):
            invoice = order.with_user(self.billing)._create_invoices()
            invoice.invoice_date = when.date()
            invoice.action_post()
        return invoice

    def pay(self, invoice, when, amount=None):
        with self.at(when):
            wizard = (
                self.env["account.payment.register"]
                .with_user(self.billing)
                .with_context(active_model="account.move", active_ids=invoice.ids)
                .create(
                    {
                        "payment_date": when.date(),
                        "journal_id": self.bank.id,
                        **({"amount": amount} if amount is not None else {}),
                    }
                )
            )
            wizard._create_payments()

    def refund(self, invoice, when):
        """A credit note for the whole invoice, reconciled with it."""
        with self.at(when):
            invoice.with_user(self.billing)._reverse_moves(
                [{"invoice_date": when.date(), "date": when.date()}], cancel=True
            )

    def steps(self, deal, user=None):
        """The deal's funnel rows as the salesman sees them, in funnel order:
        (step, outcome, skipped, days or None, entered)."""
        rows = (
            self.env["sales.funnel.report"]
            .with_user(user or self.salesman)
            ._read_group(
                [("lead_id", "=", deal.id)],
                ["step_id", "state", "skipped"],
                ["duration_days:array_agg", "date_in:min"],
                order="step_id",
            )
        )
        return [
            (step.name, state, skipped, None if days[0] is None else round(days[0], 6), entered)
            for step, state, skipped, days, entered in rows
        ]


def midnight(moment):
    """The accounting date of ``moment``, as the funnel dates invoices and payments."""
    return moment - timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)
