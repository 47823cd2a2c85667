from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException

from .common import FunnelCase

ACCESS = "odoo.exceptions.AccessError"
DONE = "done"


@tagged("post_install", "-at_install")
class TestStuckAccessOverHttp(HttpCase, FunnelCase):
    """The stuck deals' background work (learning the typical stage times,
    scheduling reminders) is reachable over JSON-RPC only as the README says:
    sales managers may trigger the daily action; nobody runs it in a request,
    nor edits its records."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.portal = new_test_user(
            env, login="stuck_portal", password="stuck_portal", groups="base.group_portal"
        )
        cls.internal = new_test_user(
            env, login="stuck_internal", password="stuck_internal", groups="base.group_user"
        )
        for user in (cls.salesman, cls.manager):
            user.password = user.login
        cls.cron = env.ref("sales_funnel_report.ir_cron_sales_funnel_stuck")
        cls.deal = env["crm.lead"].create(
            {
                "name": "Deal",
                "type": "opportunity",
                "team_id": cls.team.id,
                "user_id": cls.salesman.id,
                "stage_id": cls.stage_a.id,
            }
        )
        env["sales.funnel.typical.time"]._learn()

    def call(self, model, method, args):
        self.env.flush_all()
        try:
            self.make_jsonrpc_request(
                f"/web/dataset/call_kw/{model}/{method}",
                {"model": model, "method": method, "args": args, "kwargs": {}},
            )
        except JsonRpcException as error:
            return str(error)
        finally:
            self.env.invalidate_all()
        return DONE

    def routes(self):
        now = "2025-04-01 09:00:00"
        return {
            "learn now": ("res.config.settings", "action_learn_typical_times", [[]]),
            "daily action": ("sales.funnel.stuck.reminder", "_cron_stuck_deals", []),
            "remind": ("sales.funnel.stuck.reminder", "_remind", []),
            "learn": ("sales.funnel.typical.time", "_learn", []),
            "typical time create": (
                "sales.funnel.typical.time",
                "create",
                [{"stage_id": self.stage_a.id, "stay_count": 99, "limit_days": 1}],
            ),
            "reminder create": (
                "sales.funnel.stuck.reminder",
                "create",
                [{"lead_id": self.deal.id, "stage_id": self.stage_a.id, "stay_date_in": now}],
            ),
        }

    def outcomes(self, user):
        self.authenticate(user.login, user.login)
        return {label: self.call(*route) for label, route in self.routes().items()}

    def state(self):
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [self.cron.id])
        triggers = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM sales_funnel_typical_time")
        typical = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM sales_funnel_stuck_reminder")
        return triggers, typical, cr.fetchone()[0]

    def test_refused_to_users(self):
        before = self.state()
        for user in (self.portal, self.internal, self.salesman):
            self.assertEqual(self.outcomes(user), dict.fromkeys(self.routes(), ACCESS), user.login)
        self.assertEqual(self.state(), before, "nothing triggered, learned or written")

    def test_sales_manager_triggers_the_daily_action_only(self):
        triggers, typical, reminders = self.state()
        self.assertEqual(
            self.outcomes(self.manager),
            {**dict.fromkeys(self.routes(), ACCESS), "learn now": DONE},
        )
        self.assertEqual(self.state(), (triggers + 1, typical, reminders))

    def test_days_to_rot_by_managers_only(self):
        self.authenticate(self.salesman.login, self.salesman.login)
        route = ("crm.stage", "write", [[self.stage_a.id], {"rotting_threshold_days": 5}])
        self.assertEqual(self.call(*route), ACCESS)
        self.authenticate(self.manager.login, self.manager.login)
        self.assertEqual(self.call(*route), DONE)
        self.assertEqual(self.stage_a.rotting_threshold_days, 5)
        bad = ("crm.stage", "write", [[self.stage_a.id], {"rotting_threshold_days": -2}])
        self.assertEqual(self.call(*bad), "odoo.exceptions.ValidationError")
        self.assertEqual(self.stage_a.rotting_threshold_days, 5)
