import io
import json
from urllib.parse import urlencode

from openpyxl import load_workbook

from odoo.tests import HttpCase, new_test_user, tagged

from .common import park_shared_stages, rate


@tagged("post_install", "-at_install")
class TestFunnelUi(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        park_shared_stages(env)
        team = env["crm.team"].create({"name": "Tour team"})
        Stage = env["crm.stage"]
        cls.stages = Stage.create(
            [
                {"name": "Zulu first", "sequence": 1, "team_id": team.id},
                {"name": "Alpha second", "sequence": 2, "team_id": team.id},
                {"name": "Mike third", "sequence": 3, "team_id": team.id},
                {"name": "Bravo won", "sequence": 4, "team_id": team.id, "is_won": True},
            ]
        )
        cls.salesman = new_test_user(
            env,
            login="funnel_tour",
            password="funnel_tour",
            groups="sales_team.group_sale_salesman",
            name="Tour Salesman",
        )
        Lead = env["crm.lead"]
        for index, stage in enumerate(cls.stages):
            deals = Lead.create(
                [
                    {
                        "name": f"Deal {index}.{n}",
                        "type": "opportunity",
                        "team_id": team.id,
                        "user_id": cls.salesman.id,
                        "stage_id": stage.id,
                    }
                    for n in range(4 - index)
                ]
            )
        cls._sell_and_get_paid(deals)

    @classmethod
    def _sell_and_get_paid(cls, deal):
        """The won deal's order, confirmed, invoiced and paid: the funnel's last steps."""
        env = cls.env
        customer = env["res.partner"].create({"name": "Tour customer"})
        product = env["product.product"].create(
            {"name": "Tour service", "type": "service", "invoice_policy": "order"}
        )
        order = env["sale.order"].create(
            {
                "partner_id": customer.id,
                "opportunity_id": deal.id,
                "order_line": [(0, 0, {"product_id": product.id, "price_unit": 100.0})],
            }
        )
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()

    def test_tour_graph_then_pivot_in_pipeline_order(self):
        self.start_tour("/odoo", "sales_funnel_report_tour", login="funnel_tour")

    def test_pivot_xlsx_export_holds_the_numbers(self):
        """Read the funnel over JSON-RPC as the pivot does, send the table the pivot
        builds from it to the xlsx download route and read the file back."""
        self.authenticate("funnel_tour", "funnel_tour")
        measures = ["lead_count:sum", "lost_count:sum", "conversion_rate:avg"]
        groups = self.make_jsonrpc_request(
            "/web/dataset/call_kw/sales.funnel.report/read_group",
            {
                "model": "sales.funnel.report",
                "method": "read_group",
                "args": [[["type", "=", "opportunity"]], measures, ["step_id"]],
                "kwargs": {"lazy": False},
            },
        )
        table = [
            (
                group["step_id"][1],
                group["lead_count"],
                group["lost_count"],
                rate(group["conversion_rate"]),
            )
            for group in groups
        ]
        self.assertEqual(
            table,
            [
                ("Zulu first", 10, 0, 60.0),
                ("Alpha second", 6, 0, 50.0),
                ("Mike third", 3, 0, 33.3),
                ("Bravo won", 1, 0, 100.0),
                ("Order", 1, 0, 100.0),
                ("Invoiced", 1, 0, 100.0),
                # the funnel ends at Paid: no conversion, an empty cell
                ("Paid", 1, 0, None),
            ],
        )
        payload = {
            "title": "Sales Funnel",
            "model": "sales.funnel.report",
            "measure_count": 3,
            "origin_count": 1,
            "col_group_headers": [[{"title": "Total", "width": 3, "height": 1}]],
            "measure_headers": [
                {"title": title, "width": 1, "height": 1, "is_bold": False}
                for title in ("Reached", "Lost", "Conversion (%)")
            ],
            "origin_headers": [],
            "rows": [
                {
                    "title": name,
                    "indent": 1,
                    # as the funnel's pivot sends them (FunnelPivotModel.exportData)
                    "values": [
                        {"value": "" if value is None else value, "is_bold": False}
                        for value in values
                    ],
                }
                for name, *values in table
            ],
        }
        response = self.url_open(
            "/web/pivot/export_xlsx?" + urlencode({"data": json.dumps(payload)})
        )
        self.assertEqual(response.status_code, 200)
        sheet = load_workbook(io.BytesIO(response.content)).active
        cells = [
            [cell.value for cell in row]
            for row in sheet.iter_rows(min_row=3, max_row=9, min_col=1, max_col=4)
        ]
        self.assertEqual(
            [[row[0].strip(), *row[1:]] for row in cells],
            [[name, *values] for name, *values in table],
        )
