from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException

from odoo.addons.mail.tests.common import MailCase

from .common import FunnelCase, day

ACCESS = "odoo.exceptions.AccessError"
USER = "odoo.exceptions.UserError"
DONE = "done"
REBUILD_REFUSED = "Only administrators (Settings access) can rebuild the stage history."


@tagged("post_install", "-at_install")
class TestAccessOverHttp(HttpCase, FunnelCase):
    """Whoever calls the addon's routes over JSON-RPC, as the web client does: stays,
    funnel rows and steps change only as the README says (rebuild: administrators;
    a fulfilment step's name: sales managers), and a refused call changes nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.company2 = env["res.company"].create({"name": "Funnel Company 2"})
        cls.team2 = env["crm.team"].create(
            {"name": "Company 2 team", "company_id": cls.company2.id}
        )
        cls.first2, cls.second2 = env["crm.stage"].create(
            [
                {"name": "First 2", "sequence": 1, "team_id": cls.team2.id},
                {"name": "Second 2", "sequence": 2, "team_id": cls.team2.id},
            ]
        )

        def user(login, groups, **vals):
            return new_test_user(env, login=login, password=login, groups=groups, **vals)

        cls.portal = user("funnel_portal", "base.group_portal")
        cls.internal = user("funnel_internal", "base.group_user")
        cls.all_docs = user("funnel_all_docs", "sales_team.group_sale_salesman_all_leads")
        cls.salesman2 = user(
            "funnel_company2",
            "sales_team.group_sale_salesman",
            company_id=cls.company2.id,
            company_ids=[(6, 0, cls.company2.ids)],
        )
        cls.admin = user("funnel_admin", "base.group_system,sales_team.group_sale_manager")

        # FunnelCase's salesman ("own documents only") loses his deal at B; the
        # second company's salesman has his deal moved on, still open.
        Lead = env["crm.lead"]
        cls.deal = cls._transaction(
            day(0),
            lambda: Lead.create(
                {
                    "name": "Company 1 deal",
                    "type": "opportunity",
                    "team_id": cls.team.id,
                    "user_id": cls.salesman.id,
                    "stage_id": cls.stage_a.id,
                }
            ),
        )
        cls._transaction(day(2), lambda: cls.deal.write({"stage_id": cls.stage_b.id}))
        cls._transaction(
            day(3),
            lambda: (
                env["crm.lead.lost"]
                .create(
                    {
                        "lead_ids": [(6, 0, cls.deal.ids)],
                        "lost_reason_id": cls.reason_price.id,
                    }
                )
                .action_lost_reason_apply()
            ),
        )
        cls.deal2 = cls._transaction(
            day(1),
            lambda: Lead.create(
                {
                    "name": "Company 2 deal",
                    "type": "opportunity",
                    "team_id": cls.team2.id,
                    "user_id": cls.salesman2.id,
                    "stage_id": cls.first2.id,
                    "company_id": cls.company2.id,
                }
            ),
        )
        cls._transaction(day(4), lambda: cls.deal2.write({"stage_id": cls.second2.id}))

        Step = env["sales.funnel.step"]
        cls.paid = env.ref("sales_funnel_report.sales_funnel_step_paid")
        cls.step_a = Step.search([("stage_id", "=", cls.stage_a.id)])

    @classmethod
    def _transaction(cls, when, action):
        """Run ``action`` as a transaction committed at ``when``: the chatter's
        tracking and the stays are written at that time. ``FunnelCase.at`` for the
        class's data: MailCase's helpers only use ``env`` and ``cr``, which the
        class has."""
        with MailCase.mock_datetime_and_now(cls, when):
            result = action()
            MailCase.flush_tracking(cls)
        return result

    def snapshot(self):
        """Every stay, funnel row and step, as stored."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("""
            SELECT id, lead_id, stage_id, date_in, date_out, round(duration_days::numeric, 6),
                   outcome, lost_reason_id, user_id, team_id, company_id
              FROM crm_lead_stage_history ORDER BY id
        """)
        stays = cr.fetchall()
        cr.execute("""
            SELECT id, lead_id, step_id, is_passed, is_lost, is_open, is_won, is_deal_won,
                   is_deal_lost, skipped, duration_days, company_id
              FROM sales_funnel_fact ORDER BY id
        """)
        facts = cr.fetchall()
        cr.execute("SELECT id, name, sequence, stage_id, code FROM sales_funnel_step ORDER BY id")
        steps = cr.fetchall()
        return {"stays": stays, "facts": facts, "steps": steps}

    def readable_stays(self):
        """The stays of both deals as (deal, stage, in, out, outcome, reason)."""
        history = self.env["crm.lead.stage.history"].search([])
        return sorted(
            (
                stay.lead_id.name,
                stay.stage_id.name,
                stay.date_in,
                stay.date_out or None,
                stay.outcome,
                stay.lost_reason_id.name or None,
            )
            for stay in history
        )

    def call(self, model, method, args):
        """Call ``model.method(*args)`` over JSON-RPC as the authenticated user:
        ``DONE`` or the class of the exception the server answered with."""
        self.env.flush_all()
        try:
            self.make_jsonrpc_request(
                f"/web/dataset/call_kw/{model}/{method}",
                {
                    "model": model,
                    "method": method,
                    "args": args,
                    "kwargs": {},
                },
            )
        except JsonRpcException as error:
            return str(error)
        finally:
            self.env.invalidate_all()
        return DONE

    def mutating_routes(self):
        """Each route that could change stays, funnel rows or steps, by label."""
        self.env.flush_all()
        self.env.cr.execute("SELECT min(id), max(id) FROM crm_lead_stage_history")
        first_stay, last_stay = self.env.cr.fetchone()
        self.env.cr.execute("SELECT min(id), max(id) FROM sales_funnel_fact")
        first_fact, last_fact = self.env.cr.fetchone()
        now = "2025-04-01 09:00:00"
        return {
            "rebuild": ("res.config.settings", "action_rebuild_stage_history", [[]]),
            "stay create": (
                "crm.lead.stage.history",
                "create",
                [
                    {
                        "lead_id": self.deal.id,
                        "stage_id": self.stage_c.id,
                        "date_in": now,
                    }
                ],
            ),
            "stay write": (
                "crm.lead.stage.history",
                "write",
                [
                    [first_stay],
                    {"outcome": "back", "date_out": now},
                ],
            ),
            "stay unlink": ("crm.lead.stage.history", "unlink", [[first_stay, last_stay]]),
            "fact create": (
                "sales.funnel.fact",
                "create",
                [
                    {
                        "step_id": self.paid.id,
                        "is_fulfilment": True,
                        "stage_sequence": 3,
                        "lead_id": self.deal.id,
                        "is_passed": False,
                        "is_lost": False,
                        "is_open": False,
                        "is_won": True,
                        "is_deal_won": True,
                        "is_deal_paid": True,
                        "is_deal_lost": False,
                        "is_lead": False,
                        "skipped": False,
                        "expected_revenue": 1000.0,
                    }
                ],
            ),
            "fact write": ("sales.funnel.fact", "write", [[first_fact], {"is_lost": True}]),
            "fact unlink": ("sales.funnel.fact", "unlink", [[first_fact, last_fact]]),
            "step create": ("sales.funnel.step", "create", [{"name": "Shipped", "sequence": 4}]),
            "fulfilment step rename": (
                "sales.funnel.step",
                "write",
                [
                    [self.paid.id],
                    {"name": "Paid in full"},
                ],
            ),
            "fulfilment step resequence": (
                "sales.funnel.step",
                "write",
                [
                    [self.paid.id],
                    {"sequence": 0},
                ],
            ),
            "pipeline step rename": (
                "sales.funnel.step",
                "write",
                [
                    [self.step_a.id],
                    {"name": "Renamed"},
                ],
            ),
            "pipeline step translation": (
                "sales.funnel.step",
                "update_field_translations",
                [
                    [self.step_a.id],
                    "name",
                    {"en_US": "Renamed"},
                ],
            ),
            "fulfilment step unlink": ("sales.funnel.step", "unlink", [[self.paid.id]]),
            "pipeline step unlink": ("sales.funnel.step", "unlink", [[self.step_a.id]]),
            # private in core, and so in every override
            "report init": ("sales.funnel.report", "init", [[]]),
            "stay flush_model": ("crm.lead.stage.history", "flush_model", [[]]),
        }

    def call_all(self, user):
        self.authenticate(user.login, user.login)
        return {label: self.call(*route) for label, route in self.mutating_routes().items()}

    def assert_all_refused(self, user):
        before = self.snapshot()
        self.assertEqual(len(before["stays"]), 4)
        self.assertEqual(len(before["facts"]), 4)
        outcomes = self.call_all(user)
        self.assertEqual(outcomes, dict.fromkeys(self.mutating_routes(), ACCESS))
        self.assertEqual(self.snapshot(), before)
        self.env.invalidate_all()
        self.assertEqual(
            self.env["sales.funnel.job"].sudo().search_count([("kind", "=", "history")]),
            0,
            "no rebuild was queued",
        )
        with self.assertRaises(AccessError) as caught:
            self.env["res.config.settings"].with_user(user).action_rebuild_stage_history()
        self.assertEqual(caught.exception.args[0], REBUILD_REFUSED)

    def test_stays_of_both_companies_deals(self):
        self.assertEqual(
            self.readable_stays(),
            [
                ("Company 1 deal", "A", day(0), day(2), "forward", None),
                ("Company 1 deal", "B", day(2), day(3), "lost", "Price"),
                ("Company 2 deal", "First 2", day(1), day(4), "forward", None),
                ("Company 2 deal", "Second 2", day(4), None, "open", None),
            ],
        )

    def test_portal_user_changes_nothing(self):
        self.assert_all_refused(self.portal)

    def test_internal_user_without_sales_changes_nothing(self):
        self.assert_all_refused(self.internal)

    def test_salesman_own_documents_changes_nothing(self):
        self.assert_all_refused(self.salesman)

    def test_salesman_all_documents_changes_nothing(self):
        self.assert_all_refused(self.all_docs)

    def test_salesman_of_second_company_changes_nothing(self):
        self.assert_all_refused(self.salesman2)

    def test_sales_manager_renames_fulfilment_steps_only(self):
        before = self.snapshot()
        outcomes = self.call_all(self.manager)
        self.assertEqual(
            outcomes,
            {
                **dict.fromkeys(self.mutating_routes(), ACCESS),
                "fulfilment step rename": DONE,
                "fulfilment step resequence": USER,
                "pipeline step rename": USER,
                "pipeline step translation": USER,
            },
        )
        after = self.snapshot()
        paid_row = next(row for row in before["steps"] if row[0] == self.paid.id)
        self.assertEqual(
            after,
            {
                **before,
                "steps": [
                    (row[0], {"en_US": "Paid in full"}, *row[2:]) if row is paid_row else row
                    for row in before["steps"]
                ],
            },
        )
        with self.assertRaises(AccessError) as caught:
            self.env["res.config.settings"].with_user(self.manager).action_rebuild_stage_history()
        self.assertEqual(caught.exception.args[0], REBUILD_REFUSED)

    def test_administrator_rebuilds_and_renames_fulfilment_steps_only(self):
        stays = self.readable_stays()
        # a stay lost outside the ORM: the rebuild brings it back from the chatter
        self.env.cr.execute(
            "DELETE FROM crm_lead_stage_history WHERE lead_id = %s AND date_out IS NULL",
            [self.deal2.id],
        )
        self.env.invalidate_all()
        self.assertEqual(len(self.readable_stays()), 3)
        self.authenticate(self.admin.login, self.admin.login)
        self.env.flush_all()
        action = self.make_jsonrpc_request(
            "/web/dataset/call_kw/res.config.settings/action_rebuild_stage_history",
            {
                "model": "res.config.settings",
                "method": "action_rebuild_stage_history",
                "args": [[]],
                "kwargs": {},
            },
        )
        self.env.invalidate_all()
        self.assertEqual(action["params"]["title"], "Rebuilding the stage history")
        # queued: the request itself rebuilt nothing
        self.assertEqual(len(self.readable_stays()), 3)
        Job = self.env["sales.funnel.job"].sudo()
        self.assertEqual(Job.search_count([("kind", "=", "history")]), 1)
        while Job._process_one_batch():
            pass
        self.env.invalidate_all()
        self.assertEqual(self.readable_stays(), stays)
        self.env.flush_all()
        self.env.cr.execute("SELECT count(*) FROM sales_funnel_fact")
        self.assertEqual(self.env.cr.fetchone()[0], 4)
        # and nothing else: stays and funnel rows are never edited by hand
        outcomes = self.call_all(self.admin)
        self.assertEqual(
            outcomes,
            {
                **dict.fromkeys(self.mutating_routes(), ACCESS),
                "rebuild": DONE,
                "fulfilment step rename": DONE,
                "fulfilment step resequence": USER,
                "pipeline step rename": USER,
                "pipeline step translation": USER,
            },
        )
        after = self.snapshot()
        self.assertEqual(len(after["stays"]), 4)
        self.assertEqual(self.readable_stays(), stays)
        self.assertEqual(
            [row[1]["en_US"] for row in after["steps"] if row[0] == self.paid.id],
            ["Paid in full"],
        )
