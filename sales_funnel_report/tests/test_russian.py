from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import FunnelCase, day


@tagged("post_install", "-at_install")
class TestRussian(FunnelCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("ru_RU")
        cls.env["ir.module.module"]._load_module_terms(["sales_funnel_report"], ["ru_RU"])
        cls.salesman.lang = "ru_RU"

    def test_menu_measures_and_error_in_russian(self):
        env = self.env(user=self.salesman, context={"lang": "ru_RU"})
        menu = env.ref("sales_funnel_report.sales_funnel_report_menu_sale")
        self.assertEqual(menu.name, "Воронка продаж")
        action = env.ref("sales_funnel_report.sales_funnel_report_action").sudo()
        self.assertEqual(action.with_context(lang="ru_RU").name, "Воронка продаж")
        labels = {
            name: description["string"]
            for name, description in env["sales.funnel.report"]
            .fields_get(
                [
                    "lead_count",
                    "lost_count",
                    "conversion_rate",
                    "duration_days",
                    "duration_median_days",
                    "lost_reason_id",
                ],
                ["string"],
            )
            .items()
        }
        self.assertEqual(
            labels,
            {
                "lead_count": "Дошли до этапа",
                "lost_count": "Проиграно",
                "conversion_rate": "Конверсия (%)",
                "duration_days": "Средняя длительность, дн.",
                "duration_median_days": "Медиана, дн.",
                "lost_reason_id": "Причина потери",
            },
        )
        self.env["ir.config_parameter"].sudo().set_param(
            "sales_funnel_report.lost_reason_required", True
        )
        deal = self.new_deal(day(0))
        with self.assertRaisesRegex(UserError, "^Чтобы отметить сделку как проигранную"):
            deal.with_env(env).action_set_lost()
        with self.assertRaisesRegex(
            UserError,
            "^Фильтр «Застряла» принимает только = или != с True или False, а не > 0.$",
        ):
            env["crm.lead"].search([("is_stuck", ">", 0)])

    def test_fulfilment_in_russian(self):
        env = self.env(user=self.salesman, context={"lang": "ru_RU"})
        steps = env["sales.funnel.step"].search([("is_fulfilment", "=", True)])
        self.assertEqual(steps.mapped("name"), ["Заказ", "Счёт выставлен", "Оплачено"])
        labels = env["sales.funnel.report"].fields_get(["step_id", "deal_state"], ["string"])
        self.assertEqual(labels["step_id"]["string"], "Шаг")
        states = dict(env["sales.funnel.report"]._fields["deal_state"]._description_selection(env))
        self.assertEqual(states["paid"], "Оплачено")
        settings = env["res.config.settings"].fields_get(["funnel_won_means"], ["selection"])
        self.assertEqual(
            settings["funnel_won_means"]["selection"],
            [("stage", "Этап выигрыша"), ("paid", "Оплачена полностью")],
        )
        with self.assertRaisesRegex(UserError, "^Шаги исполнения «Заказ», «Счёт выставлен»"):
            steps[:1].with_env(env).sudo().unlink()
