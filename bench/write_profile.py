"""Per-statement profile of the write path (run it through bench/write_path).

    write_profile.py -c RC --with DB1 --without DB2 [--ops K] --out FILE

Runs K more stage writes and K more confirmations (bench/write_path.py's
operations) in each database, records every SQL statement with its time, and
lists the statements only the database with the addon runs (by their text with
the parameters left out), per operation: how many, how long. Odoo's own
statements that the addon's columns change (a SELECT or UPDATE of sale_order
with ``funnel_confirmed_at``) count among them: their text differs. Then runs one more
of each operation with the addon, where each of those statements is first run
under EXPLAIN (ANALYZE, BUFFERS) in a savepoint rolled back, and writes the
plans to FILE.explain.txt.
"""

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from write_path import OPERATIONS, admin_env, load_config, pick_moves, pick_quotations

from odoo import sql_db
from odoo.modules.registry import Registry
from odoo.tools import SQL


def template(query):
    code = query.code if isinstance(query, SQL) else query
    code = code.decode() if isinstance(code, bytes) else code
    return " ".join(code.split())


@contextmanager
def spying(on_statement, before=None):
    """Call ``on_statement(template, ms, text)`` after each statement, and
    ``before(cursor, template, query, params)`` before it when given."""
    original = sql_db.Cursor.execute

    def execute(cursor, query, params=None, log_exceptions=True):
        key = template(query)
        if before:
            before(cursor, key, query, params)
        t0 = time.perf_counter()
        res = original(cursor, query, params, log_exceptions)
        on_statement(key, (time.perf_counter() - t0) * 1000, cursor._obj.query.decode())
        return res

    sql_db.Cursor.execute = execute
    try:
        yield
    finally:
        sql_db.Cursor.execute = original


def profile_ops(registry, work):
    """Run each operation on its work items; per operation, the list of runs,
    each (wall ms, [(template, ms, text)])."""
    runs = defaultdict(list)
    for op, run in OPERATIONS:
        for item in work[op]:
            statements = []
            with spying(lambda k, ms, text, s=statements: s.append((k, ms, text))):
                seconds = run(registry, *item)
            runs[op].append((seconds * 1000, statements))
    return runs


# The recording statements travel with the savepoint that guards them
# (models/lost_race.py): EXPLAIN takes one statement, the one in between.
SKIPPED = ("SAVEPOINT", "ROLLBACK", "RELEASE", "EXPLAIN", "RESET")
COMMENT = re.compile(r"--[^\n]*")


def explain_addon(registry, op, item, addon):
    """Run ``op`` once; EXPLAIN (ANALYZE, BUFFERS) each addon statement first."""
    plans = []

    def before(cursor, key, query, params):
        if key not in addon:
            return
        if isinstance(query, SQL):
            query, params = query.code, query.params
        text = COMMENT.sub("", cursor._obj.mogrify(query, params).decode())
        # the statements of one round trip, each run in turn as it would be, so
        # that each sees what the ones before it wrote; out of their comments,
        # the recording's statements hold no semicolon
        statements = [
            statement
            for statement in (piece.strip() for piece in text.split(";"))
            if statement and not statement.startswith(SKIPPED)
        ]
        if not statements:
            return
        raw = cursor._obj
        raw.execute("SAVEPOINT bench_explain")
        for statement in statements:
            raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
            plans.append(f"-- {op}\n{statement}\n\n" + "\n".join(r[0] for r in raw.fetchall()))
        raw.execute("ROLLBACK TO SAVEPOINT bench_explain")

    with spying(lambda *a: None, before):
        dict(OPERATIONS)[op](registry, *item)
    return plans


def summary(runs_with, runs_without, addon):
    lines = []
    for op, _f in OPERATIONS:
        lines.append(f"\n## {op}")
        for name, runs in (("with", runs_with[op]), ("without", runs_without[op])):
            wall = statistics.median(w for w, _s in runs)
            sql = statistics.median(sum(ms for _k, ms, _t in s) for _w, s in runs)
            count = statistics.median(len(s) for _w, s in runs)
            lines.append(
                f"{name:<8} wall median {wall:7.1f} ms, SQL median {sql:6.1f} ms, "
                f"statements median {count:.0f}"
            )
        per = defaultdict(list)
        for _w, statements in runs_with[op]:
            seen = defaultdict(float)
            for key, ms, _t in statements:
                if key in addon:
                    seen[key] += ms
            for key in addon:
                per[key].append(seen.get(key, 0.0))
        n = len(runs_with[op])
        counts = defaultdict(int)
        for _w, statements in runs_with[op]:
            for key, _ms, _t in statements:
                if key in addon:
                    counts[key] += 1
        rows = sorted(
            ((statistics.median(v), statistics.mean(v), k) for k, v in per.items() if counts[k]),
            reverse=True,
        )
        lines.append(
            f"statements the addon adds, or changes (Odoo's own with its columns): "
            f"{len(rows)} kinds, per operation:"
        )
        lines.append(f"{'median ms':>9} {'mean ms':>8} {'count':>6}  statement")
        for med, mean, key in rows:
            lines.append(f"{med:>9.2f} {mean:>8.2f} {counts[key] / n:>6.1f}  {key[:160]}")
        lines.append(f"{sum(r[1] for r in rows):>18.2f}  total mean ms of addon statements")
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--logfile")
    parser.add_argument("--with", dest="db_with", required=True)
    parser.add_argument("--without", dest="db_without", required=True)
    parser.add_argument("--ops", type=int, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    load_config(args)
    reg_with, reg_without = Registry(args.db_with), Registry(args.db_without)
    # the last draft quotations and a fresh sample of deals: not the measured ones
    quotations = pick_quotations(reg_with, 0, last=args.ops + 1)
    moves = pick_moves(reg_with, args.ops + 1, seed=7)
    work = {
        "stage write + commit": moves[:-1],
        "action_confirm + commit": [(o,) for o in quotations[:-1]],
    }
    runs_with = profile_ops(reg_with, work)
    runs_without = profile_ops(reg_without, work)
    known = {k for runs in runs_without.values() for _w, s in runs for k, _ms, _t in s}
    addon = {k for runs in runs_with.values() for _w, s in runs for k, _ms, _t in s} - known
    text = summary(runs_with, runs_without, addon)
    plans = []
    for op, item in (
        ("stage write + commit", moves[-1]),
        ("action_confirm + commit", (quotations[-1],)),
    ):
        plans += explain_addon(reg_with, op, item, addon)
    with admin_env(reg_with) as env:
        env.cr.execute("SELECT count(*) FROM crm_lead")
        deals = env.cr.fetchone()[0]
    head = (
        f"write-path profile: {args.db_with} (with the addon) vs {args.db_without}, "
        f"{deals:,} deals, {args.ops} operations of each kind per database"
    )
    Path(args.out).write_text(head + "\n" + text + "\n")
    Path(args.out + ".explain.txt").write_text("\n\n".join(plans) + "\n")
    print(head)
    print(text)
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the addon's statements: {args.out}.explain.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
