import threading
from contextlib import closing, contextmanager
from unittest.mock import patch

from psycopg2.errors import ReadOnlySqlTransaction

from odoo import SUPERUSER_ID, api, sql_db
from odoo.tests import HttpCase, TransactionCase, freeze_time, new_test_user, tagged

from odoo.addons.web.controllers import dataset

from ..models.sales_funnel_queue import FUNNEL_QUEUE
from .common import MEASURES, FunnelCase, day, funnel_table

# The salesman's three deals (D4, another salesman's, is hidden from him):
#   D1  A day 0 -> B day 2 -> Won day 5 (jumps over C)
#   D2  A day 0 -> lost day 1 (Price)
#   D3  A day 0 -> B day 3, still there
#   D4  A day 1, another salesman's
# Odoo's own stages have a "Won" too: the step names its pipeline.
WON = "Won (Funnel team)"
# step: reached, passed, lost, open, won, conversion %, win rate %, avg days, median days
FUNNEL = {
    "A": (3, 2, 1, 0, 0, 66.7, 33.3, 2.0, 2.0),
    "B": (2, 1, 0, 1, 0, 50.0, 50.0, 3.0, 3.0),
    "C": (1, 1, 0, 0, 0, 100.0, 100.0, None, None),
    WON: (1, 0, 0, 0, 1, 0.0, 100.0, None, None),
}
# The list view's rows, in the report's order (the deals' own: newest first):
# deal, step, outcome, skipped, days (0.0 when empty, as Odoo reads an empty float).
ROWS = [
    ("D3", "A", "passed", False, 3.0),
    ("D3", "B", "open", False, 0.0),
    ("D2", "A", "lost", False, 1.0),
    ("D1", "A", "passed", False, 2.0),
    ("D1", "B", "passed", False, 3.0),
    ("D1", "C", "passed", True, 0.0),
    ("D1", WON, "won", False, 0.0),
]
# D1's stays, as its Stage History tab lists them: stage, days, outcome.
D1_STAYS = [("A", 2.0, "forward"), ("B", 3.0, "forward"), ("Won", 0.0, "open")]
LIST_SPEC = {
    "lead_id": {"fields": {"display_name": {}}},
    "step_id": {"fields": {"display_name": {}}},
    "state": {},
    "skipped": {},
    "duration_days": {},
}
HISTORY_SPEC = {
    "stage_id": {"fields": {"display_name": {}}},
    "date_in": {},
    "date_out": {},
    "duration_days": {},
    "outcome": {},
}
DEAL_SPEC = {"name": {}, "stage_history_count": {}}
WRITING = ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "TRUNCATE", "LOCK")


def list_rows(result):
    return [
        (
            row["lead_id"]["display_name"],
            row["step_id"]["display_name"],
            row["state"],
            row["skipped"],
            round(row["duration_days"], 4),
        )
        for row in result["records"]
    ]


def stays(result):
    return [
        (row["stage_id"]["display_name"], round(row["duration_days"], 4), row["outcome"])
        for row in result["records"]
    ]


class ReadCalls:
    """The calls the views make on opening the funnel and a deal, as
    (model, method, args, kwargs) for ``call_kw``, and the checks of their answers."""

    def read_calls(self, team_id, deal_id):
        domain = [("team_id", "=", team_id)]
        return [
            (
                "sales.funnel.report",
                "web_read_group",
                [],
                {"domain": domain, "fields": MEASURES, "groupby": ["step_id"], "lazy": False},
            ),
            (
                "sales.funnel.report",
                "read_group",
                [],
                {"domain": domain, "fields": MEASURES, "groupby": ["step_id"], "lazy": False},
            ),
            (
                "sales.funnel.report",
                "web_search_read",
                [],
                {"domain": domain, "specification": LIST_SPEC},
            ),
            (
                "crm.lead.stage.history",
                "web_search_read",
                [],
                {"domain": [("lead_id", "=", deal_id)], "specification": HISTORY_SPEC},
            ),
            ("crm.lead", "web_read", [[deal_id]], {"specification": DEAL_SPEC}),
        ]

    def check_answers(self, answers):
        self.maxDiff = None
        graph, pivot, rows, history, deal = answers
        self.assertEqual(graph["length"], 4)
        self.assertEqual([g["step_id"][1] for g in graph["groups"]], ["A", "B", "C", WON])
        self.assertEqual(funnel_table(graph["groups"], "step_id"), FUNNEL)
        self.assertEqual(funnel_table(pivot, "step_id"), FUNNEL)
        self.assertEqual(rows["length"], 7)
        self.assertEqual(list_rows(rows), ROWS)
        self.assertEqual(stays(history), D1_STAYS)
        self.assertEqual([(d["name"], d["stage_history_count"]) for d in deal], [("D1", 3)])


@tagged("post_install", "-at_install")
class TestReadOnlyTransaction(ReadCalls, TransactionCase):
    """The report's reads on a transaction PostgreSQL runs READ ONLY, as Odoo
    serves ``@api.readonly`` RPC calls with a read replica (``db_replica_host``):
    a connection of a read-only pool, whose sessions are read only. The test
    transaction cannot show other connections its data, so the scenario is
    committed on separate connections and deleted at the end."""

    def _connection(self):
        return closing(sql_db.db_connect(self.env.cr.dbname).cursor())

    @contextmanager
    def _replica_cursor(self):
        # Odoo's read-only pool, pointed at this server rather than at a replica
        # (this database has none): the cursor Odoo would serve the calls with.
        pool = sql_db.ConnectionPool(maxconn=1, readonly=True)
        dsn = sql_db.connection_info_for(self.env.cr.dbname)[1]
        try:
            with closing(sql_db.Connection(pool, self.env.cr.dbname, dsn).cursor()) as cr:
                yield cr
        finally:
            pool.close_all()

    @contextmanager
    def _transaction(self, when):
        """One committed transaction at ``when`` (the time stays are recorded at).
        ``MailCase.mock_datetime_and_now`` freezes the test's own cursor; this
        transaction runs on another one, whose ``now`` is frozen here."""
        with self._connection() as cr, freeze_time(when), patch.object(cr, "now", lambda: when):
            yield api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            cr.commit()  # pylint: disable=invalid-commit

    def _build(self):
        with self._transaction(day(-1)) as env:
            team = env["crm.team"].create({"name": "Funnel team", "funnel_own_stages_only": True})
            stages = env["crm.stage"].create(
                [
                    {"name": name, "sequence": seq, "team_id": team.id, "is_won": name == "Won"}
                    for seq, name in enumerate(["A", "B", "C", "Won"], start=1)
                ]
            )
            reason = env["crm.lost.reason"].create({"name": "Read-only price"})
            salesman, other = (
                new_test_user(env, login=login, groups="sales_team.group_sale_salesman")
                for login in ("funnel_ro_salesman", "funnel_ro_other")
            )
            self.scenario = {
                "team": team.id,
                "stages": stages.ids,
                "reason": reason.id,
                "users": (salesman | other).ids,
                "salesman": salesman.id,
            }
        a, b, _c, won = self.scenario["stages"]

        def deal(env, name, user_id):
            return env["crm.lead"].create(
                {
                    "name": name,
                    "type": "opportunity",
                    "team_id": self.scenario["team"],
                    "user_id": user_id,
                    "stage_id": a,
                }
            )

        with self._transaction(day(0)) as env:
            d1, d2, d3 = (deal(env, name, salesman.id) for name in ("D1", "D2", "D3"))
            self.scenario["deals"] = (d1 | d2 | d3).ids
        with self._transaction(day(1)) as env:
            self.scenario["deals"].append(deal(env, "D4", other.id).id)
            env["crm.lead"].browse(d2.id).action_set_lost(lost_reason_id=reason.id)
        for when, deal_id, stage_id in ((2, d1.id, b), (3, d3.id, b), (5, d1.id, won)):
            with self._transaction(day(when)) as env:
                env["crm.lead"].browse(deal_id).write({"stage_id": stage_id})

    def _clean(self):
        ids = getattr(self, "scenario", {})
        with self._connection() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"active_test": False})
            env["crm.lead"].browse(ids.get("deals", [])).unlink()
            env["crm.stage"].browse(ids.get("stages", [])).unlink()
            env["crm.team"].browse(ids.get("team", [])).unlink()
            env["crm.lost.reason"].browse(ids.get("reason", [])).unlink()
            users = env["res.users"].browse(ids.get("users", []))
            partners = users.partner_id
            users.unlink()
            partners.unlink()
            cr.commit()  # pylint: disable=invalid-commit

    def test_reads_on_a_read_only_transaction(self):
        self.addCleanup(self._clean)
        self._build()
        statements = []
        with self._replica_cursor() as cr:
            self.assertTrue(cr.readonly)
            original = type(cr).execute

            def spy(cursor, query, params=None, log_exceptions=True):
                if cursor is cr:
                    statements.append(str(query).lstrip())
                return original(cursor, query, params, log_exceptions)

            env = api.Environment(cr, self.scenario["salesman"], {})
            with patch.object(type(cr), "execute", spy):
                cr.execute("SHOW transaction_read_only")
                self.assertEqual(cr.fetchone()[0], "on")
                answers = [
                    api.call_kw(env[model], method, args, kwargs)
                    for model, method, args, kwargs in self.read_calls(
                        self.scenario["team"], self.scenario["deals"][0]
                    )
                ]
                self.assertFalse(cr.precommit.data.get(FUNNEL_QUEUE), "a read queued deals")
                self.check_answers(answers)
                writes = [q for q in statements if q.upper().startswith(WRITING)]
                self.assertEqual(writes, [], "the reads wrote")
                # the mode is real: the same transaction refuses a write
                with self.assertRaises(ReadOnlySqlTransaction):
                    env["crm.lead"].sudo().browse(self.scenario["deals"][0]).write(
                        {"name": "D1 renamed"}
                    )
                    env.flush_all()
            cr.rollback()


@tagged("post_install", "-at_install")
class TestReadOnlyRoutes(ReadCalls, HttpCase, FunnelCase):
    """The same calls over HTTP, as the salesman, through ``/web/dataset/call_kw``.

    Odoo 18 serves a call_kw whose method is ``@api.readonly`` on a read-only
    cursor (``DataSet._call_kw_readonly``), and when that cursor refuses a write
    it logs a warning and runs the call again on a read/write one
    (``Request._transactioning``): the answer alone does not show a read that
    writes. So each call records its thread's cursor mode ("ro", "ro->rw" after
    such a retry, "rw") and whether PostgreSQL runs the transaction read only.

    What this proves: each route picked the read-only cursor, the call ran once,
    in a transaction PostgreSQL ran read only, and answered the right numbers.
    What it does not: in tests every request shares the test's transaction;
    the read-only cursor is a savepoint with ``SET TRANSACTION READ ONLY``
    (``odoo.sql_db.TestCursor``), it sees the test's uncommitted data and runs
    on the primary. A fresh read-only session of a replica's connection pool is
    :class:`TestReadOnlyTransaction`'s proof.
    """

    def setUp(self):
        super().setUp()
        d1 = self.new_deal(day(0), name="D1")
        d2 = self.new_deal(day(0), name="D2")
        d3 = self.new_deal(day(0), name="D3")
        self.new_deal(day(1), name="D4", user=self.other_salesman)
        self.lose(d2, self.reason_price, day(1))
        self.move(d1, self.stage_b, day(2))
        self.move(d3, self.stage_b, day(3))
        self.move(d1, self.stage_won, day(5))
        self.d1 = d1

    def test_views_calls_on_read_only_cursors(self):
        modes = []
        call_kw = dataset.call_kw

        def recording_call_kw(model, method, args, kwargs):
            model.env.cr.execute("SHOW transaction_read_only")
            modes.append(
                (
                    model._name,
                    method,
                    threading.current_thread().cursor_mode,
                    model.env.cr.readonly,
                    model.env.cr.fetchone()[0],
                )
            )
            return call_kw(model, method, args, kwargs)

        self.authenticate("funnel_salesman", "funnel_salesman")
        calls = self.read_calls(self.team.id, self.d1.id)
        with patch.object(dataset, "call_kw", recording_call_kw):
            answers = [
                self.make_jsonrpc_request(
                    f"/web/dataset/call_kw/{model}/{method}",
                    {"model": model, "method": method, "args": args, "kwargs": kwargs},
                )
                for model, method, args, kwargs in calls
            ]
        self.assertEqual(modes, [(model, method, "ro", True, "on") for model, method, *_ in calls])
        self.check_answers(answers)
