from contextlib import ExitStack, contextmanager
from unittest.mock import patch

from odoo.tests import tagged

from .common import day
from .fulfilment_common import FulfilmentCase

FUNCTIONS = ("sales_funnel_record", "sales_funnel_refresh")
USERS_OF_FEW_DEALS = (
    "odoo.addons.sales_funnel_report.models.crm_lead_stage_history.FEW_DEALS",
    "odoo.addons.sales_funnel_report.report.sales_funnel_fact.FEW_DEALS",
)


@tagged("post_install", "-at_install")
class TestWriteFunctions(FulfilmentCase):
    """A transaction's few deals are recorded through SQL functions, larger sets
    through the same statements run directly: both give the same stays and rows."""

    @contextmanager
    def statements_only(self):
        with ExitStack() as stack:
            for target in USERS_OF_FEW_DEALS:
                stack.enter_context(patch(target, 0))
            yield

    @contextmanager
    def calls_to(self, *functions):
        calls = []
        execute = type(self.env.cr).execute

        def spy(cursor, query, params=None, log_exceptions=True):
            if any(function in str(query) for function in functions):
                calls.append(query)
            return execute(cursor, query, params, log_exceptions)

        with patch.object(type(self.env.cr), "execute", spy):
            yield calls

    def scenario(self, name):
        """Deals that moved, were lost with a reason given later, and were paid."""
        moved = self.deal(day(0), name=f"{name} moved")
        self.move(moved, self.stage_c, day(1))
        self.move(moved, self.stage_b, day(2))
        lost = self.deal(day(0), name=f"{name} lost")
        self.lose(lost, None, day(2))
        with self.at(day(3)):
            lost.lost_reason_id = self.reason_price
        paid = self.deal(day(0), name=f"{name} paid")
        self.move(paid, self.stage_won, day(1))
        order = self.order(paid, day(2))
        self.pay(self.invoice(order, day(3)), day(4))
        return [moved, lost, paid]

    def test_functions_and_statements_agree(self):
        with self.statements_only(), self.calls_to(*FUNCTIONS) as calls:
            direct = self.scenario("direct")
        self.assertEqual(calls, [])
        with self.calls_to("sales_funnel_record") as records, \
                self.calls_to("sales_funnel_refresh") as refreshes:
            through_functions = self.scenario("function")
        self.assertTrue(records and refreshes)
        for one, other in zip(direct, through_functions):
            self.assertEqual(self.stays(one), self.stays(other))
            self.assertEqual([row[1:] for row in self.funnel_rows(one)],
                             [row[1:] for row in self.funnel_rows(other)])
        deals = self.env["crm.lead"].browse([deal.id for deal in direct + through_functions])
        rows = self.funnel_rows(deals)
        with self.statements_only():
            self.env["sales.funnel.fact"]._refresh(deals.ids)
        self.assertEqual(self.funnel_rows(deals), rows)

    def test_uninstall_drops_them_and_init_creates_them(self):
        exists = "SELECT count(*) FROM pg_proc WHERE proname IN %s"
        History, Fact = self.env["crm.lead.stage.history"], self.env["sales.funnel.fact"]
        History._drop_record_function()
        Fact._drop_refresh_function()
        self.env.cr.execute(exists, [FUNCTIONS])
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        History.init()
        Fact.init()
        self.env.cr.execute(exists, [FUNCTIONS])
        self.assertEqual(self.env.cr.fetchone()[0], 2)
        deal = self.deal(day(0))
        self.move(deal, self.stage_b, day(1))
        self.assertEqual([stay[0] for stay in self.stays(deal)], ["A", "B"])
