"""Performance benchmark of sales_funnel_report (run it through bench/run).

    funnel_bench.py generate -c RC -d DB --deals N --json FILE
        fill DB (the addon installed, no demo data) with N deals and their stays,
        set-based SQL only, then time the addon's full rebuild of the funnel rows
        and VACUUM ANALYZE, then the daily stuck-deals action (reminders on: first run,
        then the next day's); the timings go to FILE.
    funnel_bench.py measure -c RC -d DB --json FILE [--runs 5] [--explain-dir DIR]
        time, as the admin user (uid 2, record rules applied) and through
        read_group(..., lazy=False) as the pivot view calls it: (a) Odoo's Pipeline
        Analysis (crm.lead by stage), (b) the funnel by stage, (c) by stage and
        salesperson, (d) by stage with the median. Prints a table whose last line
        is ``ratio funnel_by_stage/native_by_stage = R``.

The data: two sales teams with their own pipelines (Odoo's generic stages are parked
in a team of their own, without deals), 10 salespeople, 5 loss reasons, Odoo's utm
sources and mediums, 5,000 customers. Per deal: 60/40 between the teams, 25% lost
(archived, with a loss reason), 15% won (in the won stage), the rest open at a stage
skewed towards the start of the pipeline; forward moves with 12% of the intermediate
stages skipped, about 5% of the deals moving back once (half of them then moving on
again); created over the last two years. Each won deal has a sale order confirmed
after the win: 8% of them cancelled, 90% of the others invoiced (posted customer
invoice), 80% of those paid (reconciled); rows cloned in SQL from one order, invoice
and payment made through the ORM.
"""

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import SQL, config

_logger = logging.getLogger("funnel_bench")

ADMIN_UID = 2
PIPELINES = [
    # (team, share of the deals, stages in pipeline order; the last one is won)
    ("Direct Sales", 0.6, ["New", "Qualified", "Demo", "Proposal", "Negotiation", "Won"]),
    ("Partner Channel", 0.4, ["Inbound", "Discovery", "Quote", "Contract", "Won"]),
]
SALESPEOPLE_PER_TEAM = 5
EXTRA_LOST_REASONS = ["No budget", "Went with a competitor"]
PARTNERS = 5000
LOST, WON = 0.25, 0.15  # shares of the deals
CANCELLED, INVOICED, PAID = 0.08, 0.9, 0.8  # of won deals' orders, of live ones, of invoiced
SKIP = 0.12  # chance that a deal jumps over an intermediate stage
# Deals that move back once, among those past their first stage (about 2/3 of them):
# about 5% of all deals.
BACK = 0.075
DAYS = 730  # deals created over the last DAYS days

# The pivot view's measures, as its read_group asks for them ('field:aggregator').
NATIVE_FIELDS = ["__count", "expected_revenue:sum", "prorated_revenue:sum"]
FUNNEL_FIELDS = [
    "lead_count:sum",
    "passed_count:sum",
    "lost_count:sum",
    "open_count:sum",
    "won_count:sum",
    "expected_revenue:sum",
    "conversion_rate:avg",
    "win_rate:avg",
    "duration_days:avg",
]
MEDIAN_FIELDS = [*FUNNEL_FIELDS, "duration_median_days:avg"]
OPPORTUNITIES = [("type", "=", "opportunity")]
# The funnel view's reads per render (static/src/views/funnel/funnel_model.js): the
# steps with (d)'s measures, then steps x outcome x loss reason. Without comparison.
VIEW_READS = [
    (MEDIAN_FIELDS, ["step_id"]),
    (["lead_count:sum", "expected_revenue:sum"], ["step_id", "state", "lost_reason_id"]),
]
QUERIES = [
    # key, label, model, fields, groupby
    (
        "native",
        "(a) native: crm.lead by stage (Pipeline Analysis)",
        "crm.lead",
        NATIVE_FIELDS,
        ["stage_id"],
    ),
    (
        "funnel",
        "(b) funnel by step, all measures but the median",
        "sales.funnel.report",
        FUNNEL_FIELDS,
        ["step_id"],
    ),
    (
        "funnel_user",
        "(c) funnel by step x salesperson",
        "sales.funnel.report",
        FUNNEL_FIELDS,
        ["step_id", "user_id"],
    ),
    (
        "funnel_median",
        "(d) funnel by step, with the median",
        "sales.funnel.report",
        MEDIAN_FIELDS,
        ["step_id"],
    ),
    (
        "funnel_stage",
        "(e) funnel by stage, all measures but the median",
        "sales.funnel.report",
        FUNNEL_FIELDS,
        ["stage_id"],
    ),
    (
        "funnel_view",
        "(f) funnel view: (d), then step x outcome x loss reason",
        "sales.funnel.report",
        None,
        VIEW_READS,
    ),
]


def load_registry(args):
    options = ["-c", args.config, "-d", args.database]
    if args.logfile:
        options += ["--logfile", args.logfile]
    config.parse_config(options, setup_logging=True)
    db = args.database
    return Registry(db)


@contextmanager
def timed(timings, key):
    t0 = time.perf_counter()
    yield
    timings[key] = round(time.perf_counter() - t0, 3)
    print(f"    {key}: {timings[key]:.1f} s", flush=True)


# --- generate ---------------------------------------------------------------------------


def create_dimensions(env):
    """Teams, stages, salespeople, loss reasons and customers; returns the pipelines."""
    # Stages without a team belong to every team's pipeline: park Odoo's generic ones
    # in a team of their own (it gets no deals) so that each pipeline is exactly ours.
    parking = env["crm.team"].create({"name": "Generic stages (no deals)"})
    env["crm.stage"].search([("team_id", "=", False)]).write({"team_id": parking.id})
    salesman = env.ref("sales_team.group_sale_salesman")
    teams = []
    for t, (team_name, share, stage_names) in enumerate(PIPELINES):
        team = env["crm.team"].create({"name": team_name})
        stages = env["crm.stage"].create(
            [
                {
                    "name": name,
                    "sequence": 10 * (i + 1),
                    "team_id": team.id,
                    "is_won": i == len(stage_names) - 1,
                }
                for i, name in enumerate(stage_names)
            ]
        )
        users = (
            env["res.users"]
            .with_context(no_reset_password=True)
            .create(
                [
                    {
                        "name": f"{team_name} Rep {k + 1}",
                        "login": f"bench_rep_{t + 1}_{k + 1}",
                        "groups_id": [(6, 0, salesman.ids)],
                    }
                    for k in range(SALESPEOPLE_PER_TEAM)
                ]
            )
        )
        team.write({"member_ids": [(6, 0, users.ids)]})
        teams.append(
            {
                "no": t + 1,
                "team_id": team.id,
                "share": share,
                "stage_ids": stages.ids,
                "user_ids": users.ids,
            }
        )
    for name in EXTRA_LOST_REASONS:
        env["crm.lost.reason"].create({"name": name})
    env.flush_all()
    return teams


def generate(args):
    registry = load_registry(args)
    timings = {}
    t_all = time.perf_counter()
    with registry.cursor() as cr:
        env = api.Environment(
            cr, SUPERUSER_ID, {"tracking_disable": True, "mail_create_nolog": True}
        )
        print(f"==> Generating {args.deals:,} deals in {args.database}...", flush=True)
        with timed(timings, "dimensions (ORM)"):
            teams = create_dimensions(env)
        with timed(timings, "deals and stays (SQL)"):
            fill(cr, teams, args.deals)
        with timed(timings, "orders, invoices, payments (SQL)"):
            timings["orders"] = sell(cr, create_sale_template(env))
    timings["data generation"] = round(time.perf_counter() - t_all, 3)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        print("==> Full rebuild of the funnel rows: _refresh_all_bulk()...", flush=True)
        with timed(timings, "full rebuild of funnel rows"):
            env["sales.funnel.fact"]._refresh_all_bulk()
            cr.commit()
    with registry.cursor() as cr:
        print("==> Writing the chatter's tracking of those moves and losses (SQL)...", flush=True)
        with timed(timings, "chatter tracking (SQL)"):
            timings["tracking rows"] = write_tracking(cr)
            cr.commit()
        # a live database has statistics of its chatter; without them, the replay's
        # first statement was planned for an empty table and ran for many minutes
        cr.execute("ANALYZE mail_message, mail_tracking_value")
        cr.commit()
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        print(
            "==> Rebuilding the stage history from the chatter: sales.funnel.rebuild._run()...",
            flush=True,
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with timed(timings, "rebuild from chatter"):
            env["sales.funnel.rebuild"]._run()
            cr.commit()
        timings["rebuild peak RSS MB"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        timings["peak RSS MB before the rebuild"] = round(rss_before)
    with registry.cursor() as cr, timed(timings, "vacuum analyze"):
        cr._cnx.autocommit = True
        cr.execute("VACUUM ANALYZE")
    time_batches(registry, timings)
    time_stuck_deals(registry, timings)
    Path(args.json).write_text(json.dumps(timings, indent=1))


def time_batches(registry, timings, batches=5):
    """How long a background batch holds its deals: the first batches of a recompute
    of every deal's funnel rows (as after a change of a stage shared by all teams) and
    of a rebuild of the stage history, each batch timed, then all rolled back."""
    for kind, label in (("facts", "pipeline recompute"), ("history", "history rebuild")):
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Job = env["sales.funnel.job"]
            Job._create_job(kind, {"all_deals": True})
            Job._process_one_batch()  # the first call also counts the deals concerned
            times = []
            for _n in range(batches):
                started = time.perf_counter()
                Job._process_one_batch()
                times.append(time.perf_counter() - started)
            cr.rollback()
        timings[f"batch of 1,000 deals, {label}"] = round(statistics.median(times), 3)
        print(
            f"==> batch of 1,000 deals, {label}: median {statistics.median(times):.3f} s, "
            f"max {max(times):.3f} s",
            flush=True,
        )


def time_stuck_deals(registry, timings):
    """The daily scheduled action of the stuck deals over every deal, as the cron runs
    it (its commits are real): learning the typical stage times, then, with the
    reminders on, a to-do for each stuck deal (the first run after switching them on:
    every stuck deal is new). Then the next day's run, with nothing new to remind,
    and the Stuck filter's count as the admin user."""
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["ir.config_parameter"].set_param("sales_funnel_report.stuck_reminders", "True")
        cr.commit()
        Reminder = env["sales.funnel.stuck.reminder"]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("==> Daily stuck-deals action, reminders on: _cron_stuck_deals()...", flush=True)
        with timed(timings, "daily stuck-deals action"):
            Reminder._cron_stuck_deals()
        timings["stuck-deals action peak RSS MB"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        timings["peak RSS MB before the stuck-deals action"] = round(rss_before)
        timings["stuck reminders"] = count(cr, "SELECT count(*) FROM sales_funnel_stuck_reminder")
        timings["typical stage times"] = count(cr, "SELECT count(*) FROM sales_funnel_typical_time")
        print("==> The next day's run, nothing new to remind...", flush=True)
        with timed(timings, "daily stuck-deals action, no new reminder"):
            Reminder._cron_stuck_deals()
    with registry.cursor() as cr:
        env = api.Environment(cr, ADMIN_UID, {})
        with timed(timings, "Stuck filter count as admin"):
            timings["stuck deals"] = env["crm.lead"].search_count([("is_stuck", "=", True)])


def write_tracking(cr):
    """Write, for each generated move and loss, the tracking rows Odoo's chatter
    would hold (one message per change; stage, archive and loss reason, plus the
    expected revenue tracked with each move, which the rebuild must skip).
    Returns the number of tracking rows."""
    cr.execute("""
        CREATE TEMP TABLE bench_event ON COMMIT DROP AS
        SELECT h.lead_id, h.date_out AS t, h.stage_id AS old_stage,
               lead(h.stage_id) OVER (PARTITION BY h.lead_id ORDER BY h.date_in, h.id)
                   AS new_stage,
               h.outcome, h.lost_reason_id, nextval('mail_message_id_seq') AS message_id
          FROM crm_lead_stage_history h;
        DELETE FROM bench_event WHERE t IS NULL;
        INSERT INTO mail_message (id, model, res_id, message_type, date, create_date,
                                  write_date)
        SELECT message_id, 'crm.lead', lead_id, 'notification', t, t, t FROM bench_event;
        INSERT INTO mail_tracking_value (field_id, old_value_integer, new_value_integer,
                                         old_value_float, new_value_float, mail_message_id,
                                         create_date)
        SELECT f.id, e.old_value, e.new_value, e.old_float, e.new_float, e.message_id, e.t
          FROM (
            SELECT 'stage_id' AS fname, old_stage AS old_value, new_stage AS new_value,
                   NULL::float8 AS old_float, NULL::float8 AS new_float, message_id, t
              FROM bench_event WHERE outcome IN ('forward', 'back')
             UNION ALL
            SELECT 'expected_revenue', NULL, NULL, 1000, 1200, message_id, t
              FROM bench_event WHERE outcome IN ('forward', 'back')
             UNION ALL
            SELECT 'active', 1, 0, NULL, NULL, message_id, t
              FROM bench_event WHERE outcome = 'lost'
             UNION ALL
            SELECT 'lost_reason_id', 0, lost_reason_id, NULL, NULL, message_id, t
              FROM bench_event WHERE outcome = 'lost' AND lost_reason_id IS NOT NULL
          ) e
          JOIN ir_model_fields f ON f.model = 'crm.lead' AND f.name = e.fname;
    """)
    cr.execute("SELECT count(*) FROM mail_tracking_value")
    return cr.fetchone()[0]


def fill(cr, teams, n):
    cr.execute("SET LOCAL work_mem = '256MB'")
    cr.execute("SET LOCAL jit = off")
    # Foreign keys are checked row by row by triggers: hours for millions of rows. The data
    # is consistent by construction; skip the checks when we may (superuser only).
    cr.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cr.fetchone()[0]:
        cr.execute("SET LOCAL session_replication_role = replica")
    else:
        print("    (not a superuser: foreign keys are checked row by row, slower)")
    cr.execute("SELECT setseed(0.42)")
    cr.execute("""
        CREATE TEMP TABLE bench_team (team_no int, team_id int, share float, k int);
        CREATE TEMP TABLE bench_stage (team_no int, idx int, stage_id int);
        CREATE TEMP TABLE bench_user (team_no int, k int, user_id int);
    """)
    cum = 0.0
    for team in teams:
        cum += team["share"]
        cr.execute(
            "INSERT INTO bench_team VALUES (%s, %s, %s, %s)",
            (team["no"], team["team_id"], cum, len(team["stage_ids"])),
        )
        for idx, stage_id in enumerate(team["stage_ids"]):
            cr.execute("INSERT INTO bench_stage VALUES (%s, %s, %s)", (team["no"], idx, stage_id))
        for k, user_id in enumerate(team["user_ids"]):
            cr.execute("INSERT INTO bench_user VALUES (%s, %s, %s)", (team["no"], k, user_id))
    cr.execute(
        SQL(
            """
        CREATE TEMP TABLE bench_pick AS
        SELECT 'reason' AS kind, row_number() OVER (ORDER BY id) - 1 AS k, id
          FROM crm_lost_reason
        UNION ALL
        SELECT 'source', row_number() OVER (ORDER BY id) - 1, id FROM utm_source
        UNION ALL
        SELECT 'medium', row_number() OVER (ORDER BY id) - 1, id FROM utm_medium;

        WITH p AS (
            INSERT INTO res_partner (name, complete_name, type, is_company, active, lang,
                                     autopost_bills, customer_rank, create_uid, create_date,
                                     write_uid, write_date)
            SELECT 'Customer ' || g, 'Customer ' || g, 'contact', TRUE, TRUE, 'en_US',
                   'ask', 1, 1, now() AT TIME ZONE 'UTC', 1, now() AT TIME ZONE 'UTC'
              FROM generate_series(1, %(partners)s) g
            RETURNING id
        )
        INSERT INTO bench_pick SELECT 'partner', row_number() OVER (ORDER BY id) - 1, id FROM p;
        UPDATE res_partner SET commercial_partner_id = id
         WHERE id IN (SELECT id FROM bench_pick WHERE kind = 'partner');
        CREATE INDEX ON bench_pick (kind, k);
        ANALYZE bench_pick;
        """,
            partners=PARTNERS,
        )
    )
    # One row per deal: its team, fate, position and the sequence of stages it stayed in
    # (indexes in its pipeline, 0 = first stage, k - 1 = won).
    cr.execute(
        SQL(
            """
        CREATE TEMP TABLE bench_deal AS
        WITH base AS (
            SELECT g, random() AS r_team, random() AS r_fate, random() AS r_pos,
                   random() AS r_back, random() AS r_user, random() AS r_partner,
                   random() AS r_src, random() AS r_rev, random() AS r_age,
                   random() AS r_reason
              FROM generate_series(1, %(n)s) g
        ), placed AS (
            SELECT b.*, t.team_no, t.team_id, t.k,
                   CASE WHEN r_fate < %(lost)s THEN 'lost'
                        WHEN r_fate < %(lost)s + %(won)s THEN 'won'
                        ELSE 'open' END AS fate
              FROM base b
              JOIN LATERAL (SELECT * FROM bench_team WHERE share > b.r_team
                             ORDER BY share LIMIT 1) t ON TRUE
        ), positioned AS (
            SELECT p.*,
                   CASE WHEN fate = 'won' THEN k - 1
                        ELSE floor((k - 1) * power(r_pos, 1.4))::int END AS pos
              FROM placed p
        ), pathed AS (
            SELECT p.*,
                   ARRAY(SELECT j FROM generate_series(0, p.pos) j
                          WHERE j = 0 OR j = p.pos OR random() >= %(skip)s
                          ORDER BY j) AS path
              FROM positioned p
        )
        SELECT nextval('crm_lead_id_seq')::int AS id, team_no, team_id, k, fate,
               r_user, r_partner, r_src, r_rev, r_age, r_reason,
               CASE
                   -- back and forth: ..., s[i-1], s[i], s[i-1], s[i], ...
                   WHEN r_back < %(back)s / 2 AND cardinality(path) >= 2 THEN
                       path[1:2 + floor(r_back / (%(back)s / 2) * (cardinality(path) - 1))::int]
                       || path[1 + floor(r_back / (%(back)s / 2) * (cardinality(path) - 1))::int]
                       || path[2 + floor(r_back / (%(back)s / 2) * (cardinality(path) - 1))::int:]
                   -- moved back from its last stage and still there (or lost there)
                   WHEN r_back < %(back)s AND cardinality(path) >= 2 AND fate <> 'won' THEN
                       path || path[cardinality(path) - 1]
                   ELSE path
               END AS seq
          FROM pathed
        """,
            n=n,
            lost=LOST,
            won=WON,
            skip=SKIP,
            back=BACK,
        )
    )
    # One row per stay, dated: the stays follow each other from the deal's creation, and
    # are squeezed when they would not fit between the creation and now.
    cr.execute(
        SQL(
            """
        CREATE TEMP TABLE bench_stay AS
        WITH stay AS (
            SELECT d.id AS lead_id, s.ord::int AS ord, s.idx, cardinality(d.seq) AS n,
                   -ln(1.0 - random()) * (4 + 5 * s.idx) AS days
              FROM bench_deal d
             CROSS JOIN LATERAL unnest(d.seq) WITH ORDINALITY AS s(idx, ord)
        ), summed AS (
            SELECT stay.*,
                   sum(days) OVER (PARTITION BY lead_id ORDER BY ord) AS cum,
                   sum(days) OVER (PARTITION BY lead_id) AS total,
                   lead(idx) OVER (PARTITION BY lead_id ORDER BY ord) AS next_idx
              FROM stay
        ), dated AS (
            SELECT s.lead_id, s.ord, s.n, s.idx, s.next_idx, d.fate,
                   st.stage_id,
                   d.created + (s.cum - s.days) * f.scale * interval '1 day' AS date_in,
                   d.created + s.cum * f.scale * interval '1 day' AS date_end
              FROM summed s
              JOIN (SELECT id, fate, team_no, r_age,
                           date_trunc('second', now() AT TIME ZONE 'UTC'
                                      - r_age * %(days)s * interval '1 day') AS created
                      FROM bench_deal) d ON d.id = s.lead_id
              JOIN bench_stage st ON st.team_no = d.team_no AND st.idx = s.idx
             CROSS JOIN LATERAL (
                SELECT LEAST(1.0, d.r_age * %(days)s * 0.98 / s.total) AS scale) f
        )
        SELECT lead_id, ord, n, stage_id, date_in,
               CASE WHEN ord < n OR fate = 'lost' THEN date_end END AS date_out,
               CASE WHEN ord < n THEN
                        CASE WHEN next_idx > idx THEN 'forward' ELSE 'back' END
                    WHEN fate = 'lost' THEN 'lost'
                    ELSE 'open' END AS outcome
          FROM dated
        """,
            days=DAYS,
        )
    )
    cr.execute("CREATE INDEX ON bench_stay (lead_id) WHERE ord = n")
    cr.execute("ANALYZE bench_deal; ANALYZE bench_stay")
    cr.execute(
        SQL(
            """
        INSERT INTO crm_lead (
            id, name, type, active, stage_id, team_id, user_id, company_id, partner_id,
            lost_reason_id, source_id, medium_id, expected_revenue, prorated_revenue,
            probability, automated_probability, priority, color, date_open,
            date_last_stage_update, date_closed, create_uid, create_date, write_uid,
            write_date)
        SELECT d.id, 'Deal ' || d.id, 'opportunity', d.fate <> 'lost', s.stage_id,
               d.team_id, u.user_id, 1, pa.id,
               CASE WHEN d.fate = 'lost' THEN re.id END,
               so.id, me.id, v.revenue, round(v.revenue * v.probability / 100, 2),
               v.probability, v.probability, '0', 0, c.created, s.date_in,
               CASE WHEN d.fate = 'lost' THEN s.date_out
                    WHEN d.fate = 'won' THEN s.date_in END,
               1, c.created, 1, COALESCE(s.date_out, s.date_in)
          FROM bench_deal d
          JOIN bench_stay s ON s.lead_id = d.id AND s.ord = s.n
          CROSS JOIN LATERAL (
            SELECT date_trunc('second', now() AT TIME ZONE 'UTC'
                              - d.r_age * %(days)s * interval '1 day') AS created) c
          CROSS JOIN LATERAL (
            SELECT round((500 + 99500 * power(d.r_rev, 3))::numeric, 2) AS revenue,
                   CASE d.fate WHEN 'won' THEN 100.0 WHEN 'lost' THEN 0.0
                        ELSE round((10 + 80.0 * d.seq[cardinality(d.seq)] / (d.k - 1))::numeric,
                                   2) END AS probability) v
          LEFT JOIN bench_user u   -- 3 percent of the deals have no salesperson
            ON d.r_user < 0.97 AND u.team_no = d.team_no
           AND u.k = floor(d.r_user / 0.97 * %(per_team)s)::int
          LEFT JOIN bench_pick pa  -- 20 percent without a customer
            ON d.r_partner < 0.8 AND pa.kind = 'partner'
           AND pa.k = floor(d.r_partner / 0.8 * %(partners)s)::int
          LEFT JOIN bench_pick re
            ON re.kind = 'reason'
           AND re.k = floor(d.r_reason * (SELECT count(*) FROM bench_pick
                                          WHERE kind = 'reason'))::int
          LEFT JOIN bench_pick so  -- 30 percent without a source, sources and mediums alike
            ON d.r_src < 0.7 AND so.kind = 'source'
           AND so.k = floor(d.r_src / 0.7 * (SELECT count(*) FROM bench_pick
                                               WHERE kind = 'source'))::int
          LEFT JOIN bench_pick me
            ON d.r_src < 0.7 AND me.kind = 'medium'
           AND me.k = floor(d.r_src / 0.7 * (SELECT count(*) FROM bench_pick
                                               WHERE kind = 'medium'))::int
        """,
            days=DAYS,
            per_team=SALESPEOPLE_PER_TEAM,
            partners=PARTNERS,
        )
    )
    cr.execute(
        """
        INSERT INTO crm_lead_stage_history (
            lead_id, stage_id, date_in, date_out, duration_days, outcome, lost_reason_id,
            user_id, team_id, company_id)
        SELECT s.lead_id, s.stage_id, s.date_in, s.date_out,
               EXTRACT(EPOCH FROM s.date_out - s.date_in) / 86400.0, s.outcome,
               CASE WHEN s.outcome = 'lost' THEN l.lost_reason_id END,
               l.user_id, l.team_id, l.company_id
          FROM bench_stay s
          JOIN crm_lead l ON l.id = s.lead_id
         ORDER BY s.lead_id, s.ord
        """
    )
    cr.execute("DROP TABLE bench_deal, bench_stay, bench_pick, bench_team, bench_stage, bench_user")


def create_sale_template(env):
    """One confirmed order, its posted invoice and the payment reconciled with it,
    through the ORM: the rows ``sell`` clones. Returns their ids."""
    company = env.company
    bank = env["account.journal"].search(
        [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1
    )
    bank.inbound_payment_method_line_ids[:1].payment_account_id = env["account.chart.template"].ref(
        "account_journal_payment_debit_account_id"
    )
    product = env["product.product"].create(
        {
            "name": "Bench service",
            "type": "service",
            "invoice_policy": "order",
            "taxes_id": [(5, 0, 0)],
        }
    )
    customer = env["res.partner"].create({"name": "Bench template customer"})
    order = env["sale.order"].create(
        {
            "partner_id": customer.id,
            "order_line": [(0, 0, {"product_id": product.id, "price_unit": 1000.0})],
        }
    )
    order.action_confirm()
    invoice = order._create_invoices()
    invoice.action_post()
    env["account.payment.register"].with_context(
        active_model="account.move", active_ids=invoice.ids
    ).create({})._create_payments()
    env.flush_all()
    term = invoice.line_ids.filtered(lambda line: line.display_type == "payment_term")
    partial = term.matched_credit_ids
    assert invoice.payment_state == "paid" and len(partial) == 1, "template not reconciled"
    return {
        "order": order.id,
        "line": order.order_line.id,
        "invoice": invoice.id,
        "product_line": invoice.invoice_line_ids.id,
        "term_line": term.id,
        "partial": partial.id,
    }


def clone(table, template_id, source, overrides):
    """INSERT copies of row ``template_id`` of ``table``, one per row of ``source``
    (an SQL query aliased ``x``), with the columns in ``overrides`` (name: SQL) set."""
    pairs = SQL(", ").join(
        SQL("%s, to_jsonb(%s)", name, value) for name, value in overrides.items()
    )
    return SQL(
        """
        INSERT INTO %(table)s
        SELECT r.*
          FROM %(table)s t, (%(source)s) x,
               LATERAL jsonb_populate_record(NULL::%(table)s,
                                             to_jsonb(t) || jsonb_build_object(%(pairs)s)) r
         WHERE t.id = %(template)s
        """,
        table=SQL.identifier(table),
        pairs=pairs,
        source=source,
        template=template_id,
    )


def sell(cr, tpl):
    """Orders for the won deals, invoices and payments, set-based (see the module
    docstring for the shares). Returns the number of orders."""
    cr.execute("SET LOCAL session_replication_role = replica")
    cr.execute(
        SQL(
            """
        CREATE TEMP TABLE bench_sale AS
        WITH won AS (
            SELECT l.id AS lead_id, l.date_last_stage_update AS won_at,
                   random() AS r_cancel, random() AS r_invoice, random() AS r_paid,
                   random() AS r_days
              FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
             WHERE s.is_won AND l.active
        )
        SELECT lead_id,
               nextval('sale_order_id_seq')::int AS order_id,
               nextval('sale_order_line_id_seq')::int AS line_id,
               date_trunc('second', won_at + r_days * 4 * interval '1 day') AS confirmed_at,
               r_cancel < %(cancelled)s AS cancelled,
               r_cancel >= %(cancelled)s AND r_invoice < %(invoiced)s AS invoiced,
               r_cancel >= %(cancelled)s AND r_invoice < %(invoiced)s
                   AND r_paid < %(paid)s AS paid,
               r_days
          FROM won
        """,
            cancelled=CANCELLED,
            invoiced=INVOICED,
            paid=PAID,
        )
    )
    cr.execute(
        """
        ALTER TABLE bench_sale ADD COLUMN invoice_id int, ADD COLUMN product_line_id int,
                               ADD COLUMN term_line_id int;
        UPDATE bench_sale SET invoice_id = nextval('account_move_id_seq'),
                              product_line_id = nextval('account_move_line_id_seq'),
                              term_line_id = nextval('account_move_line_id_seq')
         WHERE invoiced;
        """
    )
    invoiced_on = SQL("(x.confirmed_at + x.r_days * 6 * interval '1 day')::date")
    paid_on = SQL("(x.confirmed_at + x.r_days * 30 * interval '1 day')::date")
    sales = SQL("SELECT * FROM bench_sale")
    invoices = SQL("SELECT * FROM bench_sale WHERE invoiced")
    cr.execute(
        clone(
            "sale_order",
            tpl["order"],
            sales,
            {
                "id": SQL("x.order_id"),
                "name": SQL("'BENCH-SO' || x.order_id"),
                "opportunity_id": SQL("x.lead_id"),
                "state": SQL("CASE WHEN x.cancelled THEN 'cancel' ELSE 'sale' END"),
                "date_order": SQL("x.confirmed_at"),
                "funnel_confirmed_at": SQL("x.confirmed_at"),
                "invoice_status": SQL("CASE WHEN x.invoiced THEN 'invoiced' ELSE 'to invoice' END"),
            },
        )
    )
    cr.execute(
        clone(
            "sale_order_line",
            tpl["line"],
            sales,
            {
                "id": SQL("x.line_id"),
                "order_id": SQL("x.order_id"),
                "qty_invoiced": SQL("CASE WHEN x.invoiced THEN 1 ELSE 0 END"),
            },
        )
    )
    cr.execute(
        clone(
            "account_move",
            tpl["invoice"],
            invoices,
            {
                "id": SQL("x.invoice_id"),
                "name": SQL("'BENCH/INV/' || x.invoice_id"),
                "invoice_date": invoiced_on,
                "date": invoiced_on,
                "payment_state": SQL("CASE WHEN x.paid THEN 'paid' ELSE 'not_paid' END"),
            },
        )
    )
    for line, line_id in (("product_line", "product_line_id"), ("term_line", "term_line_id")):
        cr.execute(
            clone(
                "account_move_line",
                tpl[line],
                invoices,
                {
                    "id": SQL.identifier("x", line_id),
                    "move_id": SQL("x.invoice_id"),
                    "date": invoiced_on,
                },
            )
        )
    cr.execute(
        """
        INSERT INTO sale_order_line_invoice_rel (order_line_id, invoice_line_id)
        SELECT line_id, product_line_id FROM bench_sale WHERE invoiced
        """
    )
    cr.execute(
        clone(
            "account_partial_reconcile",
            tpl["partial"],
            SQL("SELECT * FROM bench_sale WHERE paid"),
            {
                "id": SQL("nextval('account_partial_reconcile_id_seq')"),
                "debit_move_id": SQL("x.term_line_id"),
                "max_date": paid_on,
            },
        )
    )
    cr.execute("SELECT count(*) FROM bench_sale")
    (orders,) = cr.fetchone()
    cr.execute("DROP TABLE bench_sale")
    return orders


# --- measure ----------------------------------------------------------------------------


class SqlSpy:
    """Record the SQL text of the statements run on a cursor."""

    def __init__(self, cr):
        self.cr = cr
        self.statements = []

    @contextmanager
    def recording(self):
        cls = type(self.cr)
        original = cls.execute
        spy = self

        def execute(cursor, *args, **kwargs):
            res = original(cursor, *args, **kwargs)
            if cursor is spy.cr:
                spy.statements.append(cursor._obj.query.decode())
            return res

        cls.execute = execute
        try:
            yield self
        finally:
            cls.execute = original


def reads_of(fields, groupby):
    """The read_group calls of a query: one, or the view's (``fields`` None)."""
    return groupby if fields is None else [(fields, groupby)]


def run_query(env, model, fields, groupby):
    env.invalidate_all()
    t0 = time.perf_counter()
    for read_fields, read_groupby in reads_of(fields, groupby):
        groups = env[model].read_group(OPPORTUNITIES, read_fields, read_groupby, lazy=False)
    return time.perf_counter() - t0, groups


def explain(env, model, fields, groupby, path):
    """EXPLAIN (ANALYZE, BUFFERS) the statements read_group runs on the report's table."""
    spy = SqlSpy(env.cr)
    env.invalidate_all()
    with spy.recording():
        for read_fields, read_groupby in reads_of(fields, groupby):
            env[model].read_group(OPPORTUNITIES, read_fields, read_groupby, lazy=False)
    table = env[model]._table
    parts = [f"-- {model} read_group {groupby}"]
    for query in (q for q in spy.statements if "GROUP BY" in q and table in q):
        env.cr.execute("EXPLAIN (ANALYZE, BUFFERS, VERBOSE) " + query)
        plan = "\n".join(row[0] for row in env.cr.fetchall())
        parts.append(f"{query}\n\n{plan}\n")
    path.write_text("\n".join(parts))


def count(cr, query):
    cr.execute(query)
    return cr.fetchone()[0]


def measure(args):
    registry = load_registry(args)
    timings = json.loads(Path(args.json).read_text()) if args.json else {}
    with registry.cursor() as cr:
        env = api.Environment(cr, ADMIN_UID, {})
        env = env(
            context={
                **env["res.users"].context_get(),
                "allowed_company_ids": env.user.company_ids.ids,
            }
        )
        if env.su or not env.user.has_group("sales_team.group_sale_manager"):
            raise SystemExit(f"uid {ADMIN_UID} must be a sales manager, without superuser mode")
        # Rounds of the four queries in turn, so that a change of load on the machine
        # during the run weighs on all of them alike.
        results = {key: {"label": label, "times": []} for key, label, *__ in QUERIES}
        load_before = os.getloadavg()[0]
        for n in range(args.runs + 1):
            print(
                f"==> round {n}/{args.runs}" + (" (warm-up)" if n == 0 else ""),
                file=sys.stderr,
                flush=True,
            )
            for key, __, model, fields, groupby in QUERIES:
                seconds, groups = run_query(env, model, fields, groupby)
                results[key]["rows"] = len(groups)
                if n:
                    results[key]["times"].append(seconds)
                if key == "funnel":
                    results[key]["groups"] = groups
        for r in results.values():
            r["median"] = statistics.median(r["times"])
        load = (load_before, os.getloadavg()[0])
        if args.explain_dir:
            out = Path(args.explain_dir)
            out.mkdir(parents=True, exist_ok=True)
            for key, __, model, fields, groupby in QUERIES:
                explain(env, model, fields, groupby, out / f"explain-{key}.txt")
        stats = {
            "deals": count(cr, "SELECT count(*) FROM crm_lead WHERE type = 'opportunity'"),
            "active": count(
                cr, "SELECT count(*) FROM crm_lead WHERE type = 'opportunity' AND active"
            ),
            "history": count(cr, "SELECT count(*) FROM crm_lead_stage_history"),
            "facts": count(cr, "SELECT count(*) FROM sales_funnel_fact"),
            "pg": count(cr, "SHOW server_version"),
            "settings": count(
                cr,
                """
                SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
                       || ', JIT available: ' || pg_jit_available()
                  FROM pg_settings
                 WHERE name IN ('jit', 'max_parallel_workers_per_gather', 'work_mem',
                                'shared_buffers', 'io_method')
            """,
            ),
            "sizes": ", ".join(
                f"{table} {count(cr, SQL('SELECT pg_size_pretty(pg_table_size(%s))', table))}"
                for table in ("crm_lead", "crm_lead_stage_history", "sales_funnel_fact")
            ),
        }
        cr.rollback()
    report(args, stats, timings, results, load)


def report(args, stats, timings, results, load):
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    native = results["native"]["median"]
    funnel = results["funnel"]
    print()
    print(f"sales_funnel_report benchmark, database {args.database}")
    if os.environ.get("BENCH_REVISION"):
        print(f"code: {os.environ['BENCH_REVISION']}")
    print(
        f"N deals: {stats['deals']:,} opportunities ({stats['active']:,} active; "
        f"crm.lead's read_group hides the {stats['deals'] - stats['active']:,} lost ones, "
        "the funnel counts them)"
    )
    print(
        f"history rows (crm.lead.stage.history): {stats['history']:,} "
        f"({stats['history'] / max(stats['deals'], 1):.2f} per deal)"
    )
    print(f"funnel rows (sales.funnel.fact): {stats['facts']:,}")
    print(f"table sizes: {stats['sizes']}")
    print(f"PostgreSQL {stats['pg']} ({stats['settings']})")
    if timings:
        print(
            "data generation: {:.1f} s, full rebuild of funnel rows: {:.1f} s, "
            "VACUUM ANALYZE: {:.1f} s".format(
                timings.get("data generation", 0),
                timings.get("full rebuild of funnel rows", 0),
                timings.get("vacuum analyze", 0),
            )
        )
    for label in ("pipeline recompute", "history rebuild"):
        key = f"batch of 1,000 deals, {label}"
        if key in timings:
            print(f"background {key} (how long it holds its deals): {timings[key]:.3f} s")
    if "daily stuck-deals action" in timings:
        print(
            "daily stuck-deals action: {:.1f} s ({:,} typical stage times learned, {:,} "
            "reminders scheduled), {:.1f} s the next day; peak RSS {} MB ({} MB before); "
            "Stuck filter: {:,} deals counted in {:.2f} s".format(
                timings["daily stuck-deals action"],
                timings["typical stage times"],
                timings["stuck reminders"],
                timings["daily stuck-deals action, no new reminder"],
                timings["stuck-deals action peak RSS MB"],
                timings["peak RSS MB before the stuck-deals action"],
                timings["stuck deals"],
                timings["Stuck filter count as admin"],
            )
        )
    if "rebuild from chatter" in timings:
        print(
            "rebuild of the stage history from the chatter ({:,} tracking rows; stays and "
            "funnel rows): {:.1f} s, peak RSS of that process {} MB ({} MB before it)".format(
                timings["tracking rows"],
                timings["rebuild from chatter"],
                timings["rebuild peak RSS MB"],
                timings["peak RSS MB before the rebuild"],
            )
        )
    print(f"peak RSS of the measuring Python process: {rss_mb:.0f} MB")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} before the measurements, "
        f"{load[1]:.2f} after"
    )
    print(
        f"read_group(..., lazy=False) as uid {ADMIN_UID} (admin, record rules applied); "
        f"median of {args.runs} runs after 1 warm-up, the queries taking turns"
    )
    if args.explain_dir:
        print(f"EXPLAIN (ANALYZE, BUFFERS) of the SQL: {args.explain_dir}/explain-*.txt")
    print()
    width = max(len(r["label"]) for r in results.values())
    width = max(width, len("full rebuild of funnel rows (_refresh_all_bulk())"))
    print(f"{'query':<{width}}  {'median s':>9}  {'ratio to (a)':>12}  {'rows':>10}")
    print("-" * (width + 37))
    for r in results.values():
        print(
            f"{r['label']:<{width}}  {r['median']:>9.3f}  {r['median'] / native:>12.2f}  "
            f"{r['rows']:>10,}"
        )
    if "full rebuild of funnel rows" in timings:
        print(
            f"{'full rebuild of funnel rows (_refresh_all_bulk())':<{width}}  "
            f"{timings['full rebuild of funnel rows']:>9.3f}  {'':>12}  {stats['facts']:>10,}"
        )
    if "daily stuck-deals action" in timings:
        print(
            f"{'daily stuck-deals action (_cron_stuck_deals())':<{width}}  "
            f"{timings['daily stuck-deals action']:>9.3f}  {'':>12}  "
            f"{timings['stuck reminders']:>10,}"
        )
    print()
    ok = sum(g["lead_count"] for g in funnel["groups"])
    print(f"check: funnel rows counted by (b) = {ok:,}")
    view = results["funnel_view"]["median"] / results["funnel_median"]["median"]
    print(f"ratio funnel_view/pivot_same_measures = {view:.2f} (target <= 2)")
    ratio = funnel["median"] / native
    print(f"ratio funnel_by_stage/native_by_stage = {ratio:.2f}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("generate", "measure"):
        p = sub.add_parser(name)
        p.add_argument("-c", "--config", required=True, help="Odoo configuration file")
        p.add_argument("-d", "--database", required=True)
        p.add_argument("--json", help="timings of the generation (written / read)")
        p.add_argument("--logfile", help="Odoo's log (default: as the configuration says)")
        if name == "generate":
            p.add_argument("--deals", type=int, default=1_000_000)
        else:
            p.add_argument("--runs", type=int, default=5)
            p.add_argument("--explain-dir", help="write EXPLAIN (ANALYZE, BUFFERS) plans here")
    args = parser.parse_args(argv)
    if args.cmd == "generate":
        if not args.json:
            parser.error("generate needs --json")
        generate(args)
    else:
        measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
