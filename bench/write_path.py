"""Write-path benchmark of sales_funnel_report (run it through bench/write_path).

    write_path.py prepare -c RC -d DB --quotations Q
        create Q quotations (draft sale orders, one line) of Q open deals of DB
        through the ORM, then VACUUM ANALYZE; run before the database is cloned,
        so that both copies have the same orders.
    write_path.py uninstall -c RC -d DB
        uninstall sales_funnel_report from DB (the copy without the addon).
    write_path.py measure -c RC --with DB1 --without DB2 --rounds R [--warmup W]
        in rounds alternating the databases, time through the ORM as the admin:
        (1) writing one open deal's stage and committing, (2) confirming one
        quotation (action_confirm) and committing. Prints median and p95 ms per
        operation and database, and the ratio with / without.

The deals and quotations of round i are the same records in both databases (the
copy is a clone), so both do the same work but for the addon's.
"""

import argparse
import random
import statistics
import sys
import time
from contextlib import contextmanager

from odoo import api
from odoo.modules.registry import Registry
from odoo.tools import config

ADMIN_UID = 2
ADDON = "sales_funnel_report"
SEED = 42


def load_config(args):
    options = ["-c", args.config]
    if args.logfile:
        options += ["--logfile", args.logfile]
    config.parse_config(options, setup_logging=True)


@contextmanager
def admin_env(registry, context=None):
    with registry.cursor() as cr:
        yield api.Environment(cr, ADMIN_UID, context or {})


def vacuum(registry):
    with registry.cursor() as cr:
        cr._cnx.autocommit = True
        cr.execute("VACUUM ANALYZE")


def prepare(args):
    registry = Registry(args.database)
    with admin_env(registry) as env:
        # open deals with a customer; deals with orders are left out of the stage
        # moves (see pick_moves), so quotations only go to deals that have none
        env.cr.execute("SELECT setseed(0.17)")
        env.cr.execute(
            """
            SELECT l.id, l.partner_id
              FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
             WHERE l.active AND NOT s.is_won AND l.partner_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM sale_order so WHERE so.opportunity_id = l.id)
             ORDER BY random() LIMIT %s
            """,
            [args.quotations],
        )
        deals = env.cr.fetchall()
        product = env["product.product"].create(
            {
                "name": "Write-path bench service",
                "type": "service",
                "list_price": 500.0,
                "invoice_policy": "order",
                "taxes_id": [(5, 0, 0)],
            }
        )
        orders = env["sale.order"].create(
            [
                {
                    "partner_id": partner_id,
                    "opportunity_id": deal_id,
                    "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 2})],
                }
                for deal_id, partner_id in deals
            ]
        )
        env.cr.commit()
        print(f"    {len(orders)} quotations created", flush=True)
    vacuum(registry)


def uninstall(args):
    registry = Registry(args.database)
    with admin_env(registry) as env:
        env["ir.module.module"].search([("name", "=", ADDON)]).button_immediate_uninstall()
    registry = Registry(args.database)
    with admin_env(registry) as env:
        state = env["ir.module.module"].search([("name", "=", ADDON)]).state
        if state != "uninstalled":
            raise SystemExit(f"{ADDON} is {state} in {args.database}, not uninstalled")
        # Uninstalling leaves the index the addon put on the orders' deal; Odoo's
        # sale_crm has none, and each confirmation would update it here too.
        env.cr.execute("DROP INDEX IF EXISTS sale_order__opportunity_id_index")
        env.cr.commit()
    vacuum(registry)


def pick_moves(registry, n, seed=SEED):
    """``n`` (deal, new stage) pairs: open deals without orders, each moved to the
    next open stage of its team's pipeline (the first from the last)."""
    with admin_env(registry) as env:
        cr = env.cr
        cr.execute("""SELECT team_id, array_agg(id ORDER BY sequence, id) FROM crm_stage
                       WHERE NOT is_won AND team_id IS NOT NULL GROUP BY team_id""")
        pipelines = dict(cr.fetchall())
        cr.execute(
            """
            SELECT l.id, l.stage_id, l.team_id
              FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
             WHERE l.active AND NOT s.is_won AND l.type = 'opportunity'
               AND NOT EXISTS (SELECT 1 FROM sale_order so WHERE so.opportunity_id = l.id)
             ORDER BY l.id
            """
        )
        candidates = [row for row in cr.fetchall() if len(pipelines.get(row[2], ())) > 1]
    moves = []
    for deal_id, stage_id, team_id in random.Random(seed).sample(candidates, n):
        stages = pipelines[team_id]
        moves.append((deal_id, stages[(stages.index(stage_id) + 1) % len(stages)]))
    return moves


def pick_quotations(registry, n, last=0):
    """The first ``n`` draft quotations, or the ``last`` ones."""
    with admin_env(registry) as env:
        env.cr.execute("SELECT id FROM sale_order WHERE state = 'draft' ORDER BY id")
        ids = [order_id for (order_id,) in env.cr.fetchall()]
    if len(ids) < max(n, last):
        raise SystemExit(
            f"{len(ids)} quotations for {max(n, last)} confirmations: run prepare with more"
        )
    return ids[-last:] if last else ids[:n]


def move_deal(registry, deal_id, stage_id):
    with admin_env(registry) as env:
        t0 = time.perf_counter()
        env["crm.lead"].browse(deal_id).write({"stage_id": stage_id})
        env.cr.commit()
        return time.perf_counter() - t0


def confirm_order(registry, order_id):
    with admin_env(registry) as env:
        t0 = time.perf_counter()
        env["sale.order"].browse(order_id).action_confirm()
        env.cr.commit()
        return time.perf_counter() - t0


OPERATIONS = [
    ("stage write + commit", move_deal),
    ("action_confirm + commit", confirm_order),
]


def p95(values):
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def measure(args):
    registries = {"with": Registry(args.db_with), "without": Registry(args.db_without)}
    total = args.warmup + args.rounds
    moves = pick_moves(registries["with"], total)
    work = {
        "stage write + commit": moves,
        "action_confirm + commit": [(o,) for o in pick_quotations(registries["with"], total)],
    }
    times = {(op, db): [] for op, _f in OPERATIONS for db in registries}
    for n in range(total):
        # with/without, then without/with: neither database always goes first
        order = ["with", "without"] if n % 2 == 0 else ["without", "with"]
        for op, run in OPERATIONS:
            for db in order:
                seconds = run(registries[db], *work[op][n])
                if n >= args.warmup:
                    times[op, db].append(seconds * 1000)
        if n % 50 == 0:
            print(f"==> round {n}/{total}", file=sys.stderr, flush=True)
    print()
    print(
        f"write path, {args.rounds} rounds after {args.warmup} warm-up, alternating "
        f"{args.db_with} (with {ADDON}) and {args.db_without} (without)"
    )
    print(f"{'operation':<26} {'db':<8} {'median ms':>10} {'p95 ms':>8} {'ratio':>6}")
    print("-" * 62)
    for op, _f in OPERATIONS:
        base = statistics.median(times[op, "without"])
        for db in ("with", "without"):
            med = statistics.median(times[op, db])
            print(f"{op:<26} {db:<8} {med:>10.1f} {p95(times[op, db]):>8.1f} {med / base:>6.2f}")
    for op, _f in OPERATIONS:
        ratio = statistics.median(times[op, "with"]) / statistics.median(times[op, "without"])
        print(f"ratio {op.split()[0]} with/without = {ratio:.2f} (target <= 1.20)")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "uninstall", "measure"):
        p = sub.add_parser(name)
        p.add_argument("-c", "--config", required=True, help="Odoo configuration file")
        p.add_argument("--logfile", help="Odoo's log (default: as the configuration says)")
        if name == "measure":
            p.add_argument("--with", dest="db_with", required=True)
            p.add_argument("--without", dest="db_without", required=True)
            p.add_argument("--rounds", type=int, default=200)
            p.add_argument("--warmup", type=int, default=10)
        else:
            p.add_argument("-d", "--database", required=True)
        if name == "prepare":
            p.add_argument("--quotations", type=int, required=True)
    args = parser.parse_args(argv)
    load_config(args)
    {"prepare": prepare, "uninstall": uninstall, "measure": measure}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
