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
