from odoo.tests import TransactionCase, new_test_user, tagged, users


@tagged("post_install", "-at_install")
class TestMenus(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, login="menu_salesman", groups="sales_team.group_sale_salesman")

    @users("menu_salesman")
    def test_sales_app_still_opens_on_quotations(self):
        # what the web client opens when the Sales app is clicked
        menus = self.env["ir.ui.menu"].load_web_menus(debug=False)
        sales = menus[self.env.ref("sale.sale_menu_root").id]
        quotations = self.env.ref("sale.action_quotations_with_onboarding")
        self.assertEqual(sales["actionID"], quotations.id)
        # Sales > Funnel stays a top-level entry, right after Orders
        children = [menus[child]["xmlid"] for child in sales["children"]]
        funnel = children.index("sales_funnel_report.sales_funnel_report_menu_sale")
        self.assertEqual(children[funnel - 1], "sale.sale_order_menu")

    def test_funnel_opens_on_the_readers_team_without_sample_data(self):
        salesman = new_test_user(
            self.env, login="menu_team_salesman", groups="sales_team.group_sale_salesman"
        )
        team = self.env["crm.team"].create(
            {"name": "Menu team", "member_ids": [(6, 0, salesman.ids)]}
        )
        action = (
            self.env.ref("sales_funnel_report.sales_funnel_report_action_open")
            .with_user(salesman)
            .run()
        )
        self.assertEqual(action["res_model"], "sales.funnel.report")
        self.assertEqual(action["context"]["search_default_team_id"], team.id)
        # an empty funnel says what fills it and links to the pipeline, no fake numbers
        self.assertIn("crm.crm_lead_action_pipeline", action["help"])
        for view_type in ("graph", "pivot"):
            arch = self.env["sales.funnel.report"].get_view(view_type=view_type)["arch"]
            self.assertNotIn("sample=", arch)
