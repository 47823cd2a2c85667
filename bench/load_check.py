"""Database side of the load test (run it through bench/load_test).

load_check.py prepare -c RC -d DB --clients C --owned K
    turn DB (a copy of a bench/run database) into the load test's: Odoo's
    generic stages shared by all teams again, C salespeople (logins
    load_client_1.., password "load"), each the salesperson of K open
    deals no other client touches, every funnel row rebuilt.
load_check.py compare -c RC -d DB --json FILE
    once no background job remains: copy the funnel rows and the stays as
    they are, then (1) rewrite the funnel rows from the stays
    (_refresh_all_bulk) and (2) rebuild stays and funnel rows from the
    chatter (sales.funnel.rebuild._run), each in a transaction rolled back,
    and count the rows that differ from the copy. Writes FILE.
"""

import argparse
import json
import sys
from pathlib import Path

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import SQL, config

CLIENT_PASSWORD = "load"
# Columns the rebuild rewrites with its own values: not part of what a row says.
BOOKKEEPING = ("id", "create_uid", "create_date", "write_uid", "write_date")
TABLES = {"funnel": "sales_funnel_fact", "stays": "crm_lead_stage_history"}
SAMPLE_ROWS = 5


def prepare(env, args):
    cr = env.cr
    # bench/run parks Odoo's generic stages in a team without deals; the load test
    # needs stages in every pipeline, whose changes concern every deal.
    cr.execute(
        """
        UPDATE crm_stage SET team_id = NULL
         WHERE team_id IN (SELECT id FROM crm_team WHERE name->>'en_US' = %s)
    """,
        ["Generic stages (no deals)"],
    )
    cr.execute("SELECT count(*) FROM crm_stage WHERE team_id IS NULL")
    if not cr.fetchone()[0]:
        raise SystemExit("no stage shared by all teams: is DB a bench/run database?")
    group = env.ref("sales_team.group_sale_salesman_all_leads")
    users = (
        env["res.users"]
        .with_context(no_reset_password=True)
        .create(
            [
                {
                    "name": f"Load Client {i + 1}",
                    "login": f"load_client_{i + 1}",
                    "password": CLIENT_PASSWORD,
                    "groups_id": [(6, 0, group.ids)],
                }
                for i in range(args.clients)
            ]
        )
    )
    env.flush_all()
    # Open deals without orders, so that moving them stays within the pipeline steps.
    cr.execute("SELECT setseed(0.7)")
    cr.execute(
        """
        SELECT l.id FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
         WHERE l.active AND l.type = 'opportunity' AND NOT coalesce(s.is_won, FALSE)
           AND NOT EXISTS (SELECT 1 FROM sale_order o WHERE o.opportunity_id = l.id)
         ORDER BY random() LIMIT %s
    """,
        [args.clients * args.owned],
    )
    deals = [deal_id for (deal_id,) in cr.fetchall()]
    for i, user in enumerate(users):
        mine = deals[i :: args.clients]
        cr.execute("UPDATE crm_lead SET user_id = %s WHERE id = ANY(%s)", [user.id, mine])
        # as if the deals had always been theirs: a rebuild takes the current salesperson
        cr.execute(
            "UPDATE crm_lead_stage_history SET user_id = %s WHERE lead_id = ANY(%s)",
            [user.id, mine],
        )
    env["sales.funnel.fact"]._refresh_all_bulk()
    cr.commit()
    print(
        f"    {len(users)} clients, {len(deals)} deals of their own, "
        "generic stages shared by all teams",
        flush=True,
    )


def columns(cr, table):
    cr.execute(
        """
        SELECT column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = %s AND NOT column_name = ANY(%s)
         ORDER BY ordinal_position
    """,
        [table, list(BOOKKEEPING)],
    )
    return [name for (name,) in cr.fetchall()]


def differences(cr, table, cols):
    """Rows of the copy missing from the table now, and the reverse (as multisets)."""
    select = SQL(", ").join(SQL.identifier(c) for c in cols)
    copy = SQL.identifier(f"load_copy_{table}")
    result = {}
    for name, left, right in (
        ("only_before", copy, SQL.identifier(table)),
        ("only_after", SQL.identifier(table), copy),
    ):
        cr.execute(
            SQL("SELECT %s FROM %s EXCEPT ALL SELECT %s FROM %s", select, left, select, right)
        )
        rows = cr.fetchall()
        result[name] = len(rows)
        result[f"{name}_sample"] = [
            dict(zip(cols, map(str, row), strict=True)) for row in rows[:SAMPLE_ROWS]
        ]
    return result


def compare(registry, args):
    report = {}
    with registry.cursor() as cr:
        cr.execute("SELECT count(*) FROM sales_funnel_job")
        report["jobs_left"] = cr.fetchone()[0]
        for table in TABLES.values():
            cols = columns(cr, table)
            copy = SQL.identifier(f"load_copy_{table}")
            cr.execute(SQL("DROP TABLE IF EXISTS %s", copy))
            cr.execute(
                SQL(
                    "CREATE TABLE %s AS SELECT %s FROM %s",
                    copy,
                    SQL(", ").join(SQL.identifier(c) for c in cols),
                    SQL.identifier(table),
                )
            )
            cr.execute(SQL("SELECT count(*) FROM %s", copy))
            report[f"{table}_rows"] = cr.fetchone()[0]
    rebuilds = {
        "refresh_all_bulk": (lambda env: env["sales.funnel.fact"]._refresh_all_bulk(), ["funnel"]),
        "rebuild_from_tracking": (
            lambda env: env["sales.funnel.rebuild"]._run(),
            ["funnel", "stays"],
        ),
    }
    for name, (rebuild, kinds) in rebuilds.items():
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            rebuild(env)
            env.flush_all()
            for kind in kinds:
                table = TABLES[kind]
                report[f"{name}:{kind}"] = differences(cr, table, columns(cr, table))
            cr.rollback()
    Path(args.json).write_text(json.dumps(report, indent=1))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare", "compare"])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("-d", "--database", required=True)
    parser.add_argument("--logfile")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--owned", type=int, default=150)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    options = ["-c", args.config, "-d", args.database]
    if args.logfile:
        options += ["--logfile", args.logfile]
    config.parse_config(options, setup_logging=True)
    registry = Registry(args.database)
    if args.command == "prepare":
        with registry.cursor() as cr:
            prepare(api.Environment(cr, SUPERUSER_ID, {}), args)
    else:
        compare(registry, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
