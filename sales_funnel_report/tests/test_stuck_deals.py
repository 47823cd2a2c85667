import tempfile
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from odoo.exceptions import UserError, ValidationError
from odoo.tests import freeze_time, new_test_user, tagged
from odoo.tools import file_open
from odoo.tools.translate import (
    PYTHON_TRANSLATION_COMMENT,
    CodeTranslations,
    TranslationImporter,
    code_translations,
)

from .common import FunnelCase, day

REMINDERS = "sales_funnel_report.stuck_reminders"
WINDOW = "sales_funnel_report.typical_window_months"


class StuckCase(FunnelCase):
    """FunnelCase's pipeline A → B → C → Won (every move at 09:00 of its day),
    read and run at frozen times."""

    @contextmanager
    def reading_at(self, when):
        """Reads at ``when``: the age is ``cr.now()``-based."""
        self.env.invalidate_all()
        with freeze_time(when), patch.object(self.env.cr, "now", lambda: when):
            yield
        self.env.invalidate_all()

    def history_in_a(self, days, lost_last=False, start=0, user=None):
        """One deal per number of ``days``: created in A on day ``start``, and
        moved to B that many days later (the last one lost then instead)."""
        deals = self.env["crm.lead"]
        for index, length in enumerate(days):
            deal = self.new_deal(day(start), name=f"H{index}", user=user)
            if lost_last and index == len(days) - 1:
                self.lose(deal, self.reason_price, day(start + length))
            else:
                self.move(deal, self.stage_b, day(start + length))
            deals |= deal
        return deals

    def learned(self, when):
        with self.reading_at(when):
            self.env["sales.funnel.typical.time"]._learn()
        rows = self.env["sales.funnel.typical.time"].search([("team_id", "=", self.team.id)])
        return {
            row.stage_id.name: (
                row.stay_count,
                round(row.median_days, 6),
                round(row.p75_days, 6),
                row.limit_days,
            )
            for row in rows
        }

    def stuck_view(self, deals):
        return {
            deal.name: (
                deal.stage_age_days,
                deal.stage_limit_days,
                deal.is_stuck,
                deal.stage_age_label,
            )
            for deal in deals.with_env(self.env)
        }

    def run_daily(self, when):
        """The daily scheduled action at ``when`` (its commits kept in the test)."""
        with self.reading_at(when), patch.object(self.env.cr, "commit", lambda: None):
            self.env["sales.funnel.stuck.reminder"]._cron_stuck_deals()

    def reminders(self, deals):
        """The to-dos on ``deals`` (the reminders are to-dos; the deals' own
        planned activities here are calls)."""
        activities = self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", deals.ids),
                ("activity_type_id", "=", self.env.ref("mail.mail_activity_data_todo").id),
            ]
        )
        return sorted(
            (a.res_name, a.user_id.login, a.summary, a.date_deadline, a.automated)
            for a in activities
        )


@tagged("post_install", "-at_install")
class TestStuckDeals(StuckCase):
    """Age in stage, typical stage times learned from the history, stuck deals
    and their reminders."""

    # --- age in stage ------------------------------------------------------------

    def test_age_in_stage_frozen_time(self):
        deal = self.new_deal(day(0), name="Aging")
        self.move(deal, self.stage_b, day(2))
        with self.reading_at(day(11, hours=-1)):  # 08:00 on day 11: 8 days and 23 hours
            self.assertEqual(self.stuck_view(deal), {"Aging": (8, 0, False, "8 d")})
        with self.reading_at(day(11)):
            self.assertEqual(self.stuck_view(deal), {"Aging": (9, 0, False, "9 d")})
            stays = self.env["crm.lead.stage.history"].search([("lead_id", "=", deal.id)])
            # the open stay shows its age so far; the finished one only its duration
            self.assertEqual(
                [
                    (s.stage_id.name, s.outcome, s.duration_days, round(s.age_days, 6))
                    for s in stays
                ],
                [("A", "forward", 2.0, 0.0), ("B", "open", 0.0, 9.0)],
            )
            group = self.env["crm.lead.stage.history"].read_group(
                [("lead_id", "=", deal.id)], ["duration_days:avg"], []
            )
            self.assertEqual(group[0]["duration_days"], 2.0, "averages over finished stays only")
        # a lost deal has no open stay, no age
        self.lose(deal, self.reason_price, day(12))
        with self.reading_at(day(20)):
            self.assertEqual(
                self.stuck_view(deal.with_context(active_test=False)),
                {"Aging": (0, 0, False, False)},
            )

    def test_age_across_midnight_and_time_zones(self):
        moscow = new_test_user(
            self.env,
            login="funnel_moscow",
            groups="sales_team.group_sale_salesman",
            tz="Europe/Moscow",
        )
        honolulu = new_test_user(
            self.env,
            login="funnel_honolulu",
            groups="sales_team.group_sale_salesman_all_leads",
            tz="Pacific/Honolulu",
        )
        # entered at 23:30 in Moscow (20:30 UTC); read at 00:30 the next day there
        entered = day(0).replace(hour=20, minute=30)
        deal = self.new_deal(entered, name="Midnight", user=moscow)
        with self.reading_at(entered + timedelta(hours=1)):
            for user in (moscow, honolulu, self.env.user):
                self.assertEqual(deal.with_user(user).stage_age_days, 0, user.tz)
        with self.reading_at(entered + timedelta(days=1)):
            for user in (moscow, honolulu, self.env.user):
                self.assertEqual(deal.with_user(user).stage_age_days, 1, user.tz)

    # --- learned typical times -------------------------------------------------------

    def test_learned_median_and_p75_even_count(self):
        # 10 finished stays in A of 1..10 days, the last one lost: all count
        self.history_in_a(range(1, 11), lost_last=True)
        self.assertEqual(self.learned(day(20)), {"A": (10, 5.5, 7.75, 8)})
        stage = self.stage_a
        self.assertEqual(
            [(t.team_id, t.stay_count, t.window_months) for t in stage.funnel_typical_time_ids],
            [(self.team, 10, 12)],
        )

    def test_learned_median_and_p75_odd_count(self):
        self.history_in_a(range(1, 12))
        self.assertEqual(self.learned(day(20)), {"A": (11, 6.0, 8.5, 9)})

    def test_fewer_than_ten_stays_learn_nothing(self):
        self.history_in_a(range(1, 10))
        self.assertEqual(self.learned(day(20)), {})
        late = self.new_deal(day(20), name="Late")
        with self.reading_at(day(100)):
            self.assertEqual(self.stuck_view(late), {"Late": (80, 0, False, "80 d")})
            self.assertEqual(self.env["crm.lead"].search_count([("is_stuck", "=", True)]), 0)

    def test_window_of_months(self):
        self.history_in_a(range(1, 12))  # stays end on days 1 to 11
        # day 400: they ended more than 12 months ago
        self.assertEqual(self.learned(day(400)), {})
        self.env["ir.config_parameter"].sudo().set_param(WINDOW, 24)
        self.assertEqual(self.learned(day(400)), {"A": (11, 6.0, 8.5, 9)})
        with self.assertRaises(ValidationError) as caught:
            self.env["res.config.settings"].create({"funnel_typical_window_months": 0})
        self.assertEqual(
            caught.exception.args[0],
            "Typical stage times are learned over 1 to 120 months; 0 was given.",
        )

    def test_learned_per_pipeline(self):
        # the same stage, in another team's pipeline: learned apart
        self.history_in_a(range(1, 11))
        team2 = self.env["crm.team"].create({"name": "Second pipeline"})
        for index in range(10):
            deal = self.new_deal(day(0), name=f"T{index}", team_id=team2.id)
            self.move(deal, self.stage_b, day(20))
        self.learned(day(30))
        rows = self.env["sales.funnel.typical.time"].search([("stage_id", "=", self.stage_a.id)])
        self.assertEqual(
            sorted((r.team_id.name, r.median_days, r.limit_days) for r in rows),
            [("Funnel team", 5.5, 8), ("Second pipeline", 20.0, 20)],
        )

    # --- stuck ------------------------------------------------------------------------

    def test_stuck_by_learned_limit(self):
        history = self.history_in_a(range(1, 11))  # A: p75 7.75, stuck after 8 days
        self.learned(day(20))
        late = self.new_deal(day(20), name="Late")
        fresh = self.new_deal(day(25), name="Fresh")
        other = self.new_deal(day(20), name="Other's", user=self.other_salesman)
        lost = self.new_deal(day(20), name="Lost")
        self.lose(lost, self.reason_price, day(21))
        Lead = self.env["crm.lead"]
        deals = late | fresh | other
        with self.reading_at(day(28, hours=23)):  # 8 days and 23 hours
            self.assertEqual(
                self.stuck_view(deals),
                {
                    "Late": (8, 8, False, "8 d · usually 8"),
                    "Fresh": (3, 8, False, "3 d · usually 8"),
                    "Other's": (8, 8, False, "8 d · usually 8"),
                },
            )
            self.assertEqual(Lead.search_count([("is_stuck", "=", True)]), 0)
        with self.reading_at(day(29)):
            self.assertEqual(
                self.stuck_view(deals),
                {
                    "Late": (9, 8, True, "9 d · usually 8"),
                    "Fresh": (4, 8, False, "4 d · usually 8"),
                    "Other's": (9, 8, True, "9 d · usually 8"),
                },
            )
            self.assertTrue(late.stage_limit_learned)
            stuck = Lead.search([("is_stuck", "=", True)])
            self.assertEqual(stuck, late | other)
            self.assertEqual(Lead.search_count([("is_stuck", "=", True)]), 2)
            self.assertEqual(Lead.search([("is_stuck", "!=", False)]), late | other)
            self.assertEqual(Lead.search([("is_stuck", "in", [True])]), late | other)
            not_stuck = Lead.search([("is_stuck", "=", False), ("team_id", "=", self.team.id)])
            self.assertEqual(not_stuck, fresh | history)
            groups = Lead.read_group(
                [("is_stuck", "=", True)], ["expected_revenue:sum"], ["user_id"], lazy=False
            )
            self.assertEqual(
                sorted((g["user_id"][1], g["__count"]) for g in groups),
                [("Funnel Salesman", 1), ("Other Salesman", 1)],
            )
            # a salesman with "own documents only" sees his own stuck deals only
            self.assertEqual(Lead.with_user(self.salesman).search([("is_stuck", "=", True)]), late)
            self.assertEqual(
                Lead.with_user(self.salesman).search_count([("is_stuck", "=", True)]), 1
            )
            with self.assertRaises(UserError):
                Lead.search([("is_stuck", ">", 0)])
            # the funnel: per step, the stuck among the open deals, and their deals
            Report = self.env["sales.funnel.report"].with_user(self.manager)
            funnel_deals = [("lead_id", "in", (deals | lost).ids)]
            by_step = {
                g["step_id"][1]: (g["lead_count"], g["open_count"], g["stuck_count"])
                for g in Report.read_group(
                    funnel_deals,
                    ["lead_count:sum", "open_count:sum", "stuck_count:sum"],
                    ["step_id"],
                    lazy=False,
                )
            }
            self.assertEqual(by_step["A"], (4, 3, 2))
            [total] = Report.read_group(funnel_deals, ["stuck_count:sum"], [])
            self.assertEqual(total["stuck_count"], 2)
            step_a = self.env["sales.funnel.step"].search([("stage_id", "=", self.stage_a.id)])
            action = Report.get_deals_action(
                [*funnel_deals, ("step_id", "=", step_a.id)], "stuck_count"
            )
            self.assertEqual(action["name"], "A · Stuck Deals")
            shown = Lead.with_context(**action["context"]).search(action["domain"])
            self.assertEqual(shown, late | other)

    def test_kanban_page_queries_do_not_grow_with_deals(self):
        self.history_in_a(range(1, 11))
        self.learned(day(20))
        spec = {"name": {}, "stage_age_label": {}, "is_stuck": {}, "stage_age_days": {}}
        Lead = self.env["crm.lead"].with_user(self.manager)

        def page_queries():
            with self.reading_at(day(29)):
                before = self.env.cr.sql_log_count
                page = Lead.web_search_read([("team_id", "=", self.team.id)], spec)
                return self.env.cr.sql_log_count - before, page["length"]

        page_queries()  # caches warm (access rules, fields), as on any later page
        few = page_queries()
        for index in range(5):
            self.new_deal(day(20), name=f"More {index}")
        page_queries()
        self.assertEqual(page_queries(), (few[0], few[1] + 5))

    def test_stuck_by_manual_limit(self):
        self.history_in_a(range(1, 11))  # A learned: stuck after 8 days; B: nothing
        self.learned(day(20))
        self.stage_b.rotting_threshold_days = 3
        self.stage_a.rotting_threshold_days = 20  # the manager's limit wins over the learned
        in_a = self.new_deal(day(20), name="In A")
        with self.reading_at(day(29)):
            self.assertEqual(self.stuck_view(in_a), {"In A": (9, 20, False, "9 d · limit 20")})
            self.assertFalse(in_a.stage_limit_learned)
            # the history deals entered B on days 1..10: 19..10 days ago, over 3
            stuck = self.env["crm.lead"].search([("is_stuck", "=", True)])
            self.assertEqual(sorted(stuck.mapped("name")), [f"H{i}" for i in range(10)])
            self.assertEqual(
                self.stuck_view(stuck.filtered(lambda d: d.name == "H9")),
                {"H9": (19, 3, True, "19 d · limit 3")},
            )
        # back to learned
        self.stage_a.rotting_threshold_days = 0
        with self.reading_at(day(29)):
            self.assertEqual(self.stuck_view(in_a), {"In A": (9, 8, True, "9 d · usually 8")})

    def test_won_and_lost_deals_are_never_stuck(self):
        self.stage_won.rotting_threshold_days = 1
        won = self.new_deal(day(0), name="Won")
        self.move(won, self.stage_won, day(1))
        self.stage_a.rotting_threshold_days = 1
        lost = self.new_deal(day(0), name="Lost")
        self.lose(lost, self.reason_price, day(5))
        with self.reading_at(day(30)):
            self.assertEqual(self.stuck_view(won), {"Won": (29, 1, False, "29 d · limit 1")})
            self.assertEqual(
                self.env["crm.lead"]
                .with_context(active_test=False)
                .search_count([("is_stuck", "=", True)]),
                0,
            )

    def test_bad_days_to_rot_refused(self):
        for days in (-1, 3651):
            with self.assertRaises(ValidationError) as caught:
                self.stage_a.rotting_threshold_days = days
                self.env.flush_all()
            self.assertEqual(
                caught.exception.args[0],
                f"Days to rot of stage A must be between 0 and 3650 days (0: learned from the "
                f"history); {days} was given.",
            )

    # --- reminders ----------------------------------------------------------------

    def test_reminders(self):
        self.history_in_a(range(1, 11))  # stuck in A after 8 days
        self.stage_won.rotting_threshold_days = 1
        late = self.new_deal(day(20), name="Late")
        other = self.new_deal(day(20), name="Other's", user=self.other_salesman)
        planned = self.new_deal(day(20), name="Planned")
        later = self.new_deal(day(20), name="Later")
        won = self.new_deal(day(20), name="Won")
        self.move(won, self.stage_won, day(21))
        lost = self.new_deal(day(20), name="Lost")
        self.lose(lost, self.reason_price, day(28))
        deals = late | other | planned | later | won | lost
        with self.at(day(25)):
            # due by the day of the reminder: none; due after it: one all the same
            planned.activity_schedule(
                "mail.mail_activity_data_call",
                date_deadline=day(29).date(),
                user_id=self.salesman.id,
            )
            later.activity_schedule(
                "mail.mail_activity_data_call",
                date_deadline=day(35).date(),
                user_id=self.salesman.id,
            )
        self.env["ir.config_parameter"].sudo().set_param(REMINDERS, True)
        text = "In A for 9 days; deals usually leave it within 8 days"
        due = day(29).date()
        self.run_daily(day(29))
        self.assertEqual(
            self.reminders(deals),
            [
                ("Late", "funnel_salesman", text, due, True),
                ("Later", "funnel_salesman", text, due, True),
                ("Other's", "funnel_other", text, due, True),
            ],
        )
        Reminder = self.env["sales.funnel.stuck.reminder"]
        self.assertEqual(
            Reminder.search([("lead_id", "in", deals.ids)]).lead_id, late | later | other
        )
        # never twice for the same stay, even once its to-do is done
        late.activity_ids.action_done()
        self.run_daily(day(30))
        self.assertEqual(len(self.reminders(deals)), 2)
        self.assertEqual(Reminder.search_count([("lead_id", "in", deals.ids)]), 3)
        # a new stay of the same deal is a new chance to get stuck
        self.move(late, self.stage_b, day(31))
        self.move(late, self.stage_a, day(32))
        self.run_daily(day(40))  # 8 days in A again: not stuck yet
        self.assertEqual(self.reminders(late), [])
        self.run_daily(day(41))
        self.assertEqual(
            self.reminders(late), [("Late", "funnel_salesman", text, day(41).date(), True)]
        )

    def test_reminders_off(self):
        self.history_in_a(range(1, 11))
        late = self.new_deal(day(20), name="Late")
        self.run_daily(day(29))
        with self.reading_at(day(29)):
            self.assertTrue(late.is_stuck, "learned by the daily action all the same")
        self.assertEqual(self.reminders(late), [])
        self.assertEqual(self.env["sales.funnel.stuck.reminder"].search_count([]), 0)


@tagged("post_install", "-at_install")
class TestStuckDealsInRussian(StuckCase):
    """The stuck deals' labels, reminders and errors in Russian.

    Odoo reads a module's ru.po merged with its .pot, which the maintainers
    regenerate before a release: until then, strings new to the .pot are dropped.
    The translations are read here from ru.po alone, as they load once the .pot
    has them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("ru_RU")
        with (
            file_open("sales_funnel_report/i18n/ru.po", "rb") as po,
            # a .po whose folder holds no .pot: read as it is
            tempfile.NamedTemporaryFile(suffix=".po") as alone,
        ):
            alone.write(po.read())
            alone.flush()
            alone.seek(0)
            importer = TranslationImporter(cls.env.cr, verbose=False)
            importer.load(alone, "po", "ru_RU")
            importer.save(overwrite=True)
            cls.python_ru = CodeTranslations._read_code_translations_file(
                alone,
                lambda row: row.get("value") and PYTHON_TRANSLATION_COMMENT in row["comments"],
            )
        cls.salesman.lang = "ru_RU"

    def test_in_russian(self):
        self.history_in_a(range(1, 11))
        self.learned(day(20))
        late = self.new_deal(day(20), name="Late")
        env = self.env(user=self.salesman, context={"lang": "ru_RU"})
        labels = env["crm.lead"].fields_get(["is_stuck", "stage_age_label"], ["string"])
        self.assertEqual(labels["is_stuck"]["string"], "Застряла")
        self.assertEqual(labels["stage_age_label"]["string"], "На этапе")
        stage_labels = env["crm.stage"].fields_get(["rotting_threshold_days"], ["string"])
        self.assertEqual(stage_labels["rotting_threshold_days"]["string"], "Дней до застоя")
        python = {("sales_funnel_report", "ru_RU"): self.python_ru}
        with patch.dict(code_translations.python_translations, python):
            with self.reading_at(day(29)):
                self.assertEqual(late.with_env(env).stage_age_label, "9 дн. · обычно 8")
            self.env["ir.config_parameter"].sudo().set_param(REMINDERS, True)
            self.run_daily(day(29))
            self.assertEqual(
                late.activity_ids.mapped("summary"),
                ["На этапе «A» уже 9 дн.; обычно сделки уходят с него за 8 дн."],
            )
            with self.assertRaises(ValidationError) as caught:
                self.stage_a.with_env(env).sudo().rotting_threshold_days = -1
                self.env.flush_all()
            self.assertEqual(
                caught.exception.args[0],
                "«Дней до застоя» этапа A должно быть от 0 до 3650 дней (0 — рассчитывается по "
                "истории); указано -1.",
            )
