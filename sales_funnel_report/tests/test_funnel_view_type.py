from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestFunnelViewType(TransactionCase):
    def test_the_action_opens_on_the_funnel_view(self):
        action = self.env.ref("sales_funnel_report.sales_funnel_report_action")
        self.assertEqual([mode for __, mode in action.views], ["funnel", "graph", "pivot", "list"])
        views = self.env["sales.funnel.report"].get_views([(False, "funnel")])["views"]
        self.assertEqual(
            views["funnel"]["id"],
            self.env.ref("sales_funnel_report.sales_funnel_report_view_funnel").id,
        )
        info = self.env["ir.ui.view"].get_view_info()["funnel"]
        self.assertEqual(info["icon"], "fa fa-filter")
        self.assertTrue(info["multi_record"])

    def test_a_funnel_arch_holds_fields_only(self):
        View = self.env["ir.ui.view"]
        arch = '<funnel string="F"><field name="lead_count" type="measure"/></funnel>'
        view = View.create({"name": "ok", "model": "sales.funnel.report", "arch": arch})
        self.assertEqual(view.type, "funnel")
        for bad in (
            '<funnel><group><field name="lead_count"/></group></funnel>',
            '<funnel colour="red"><field name="lead_count"/></funnel>',
            '<funnel><field name="no_such_field"/></funnel>',
        ):
            with self.subTest(arch=bad), self.assertRaises(ValidationError):
                View.create({"name": "bad", "model": "sales.funnel.report", "arch": bad})
