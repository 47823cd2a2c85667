"""The funnel's outcomes as conditions on the funnel rows' flags: every counting rule
of an outcome is written once here, next to the SQL that follows it."""

from odoo.tools import SQL

STATES = [("passed", "Passed"), ("lost", "Lost"), ("open", "Open"), ("won", "Won")]
DEAL_STATES = [("open", "Open"), ("won", "Won"), ("paid", "Paid"), ("lost", "Lost")]
WON_MEANS_PARAM = "sales_funnel_report.won_means"
# What "won" means (the setting): the deal flag a won deal carries.
WON_FLAG = {"stage": "is_deal_won", "paid": "is_deal_paid"}


def flag_values(won_means):
    """Every outcome the report shows, as a condition on the rows' boolean flags
    (flags set, flags unset), under the setting of what won means. The report
    spells the values out, counts rows with COUNT(*) FILTER, and turns filters
    back into conditions PostgreSQL can estimate, all from these.

    Outcome at a step (``state``): a deal passed every step before its position
    and is exactly one of lost, open or won at its position, so per step
    reached = passed + lost + open + won under either setting. Won at the
    position means the deal is won as the setting says: with "won stage", a deal
    in a won stage or further (an order, invoiced, paid); with "paid in full",
    only at Paid, and a deal in a won stage that has not paid is open there.
    """
    won = WON_FLAG.get(won_means, WON_FLAG["stage"])
    return {
        "type": {"lead": (["is_lead"], []), "opportunity": ([], ["is_lead"])},
        "state": {
            "passed": (["is_passed"], []),
            "lost": (["is_lost"], []),
            "open": ([], ["is_passed", "is_lost", won]),
            "won": ([won], ["is_passed", "is_lost"]),
        },
        "deal_state": {
            "paid": (["is_deal_paid"], []),
            "won": (["is_deal_won"], ["is_deal_paid"]),
            "lost": (["is_deal_lost"], []),
            "open": ([], ["is_deal_won", "is_deal_lost"]),
        },
        # reached the step and won in the end: the base of the win rate
        "won_in_the_end": {True: ([won], [])},
    }


RATES = {"conversion_rate", "win_rate"}
# Measures that are empty where they do not apply (shown blank, sorted last).
BLANK_WHEN_EMPTY = {"conversion_rate", "win_rate", "duration_days", "duration_median_days"}
# Group-bys whose groups are steps (the fulfilment rows have no stage).
STEP_DIMENSIONS = {"step_id", "stage_id", "step_code"}
# What the funnel counts and averages: the measures, never a group-by.
MEASURES = {
    "lead_count",
    "passed_count",
    "lost_count",
    "open_count",
    "stuck_count",
    "won_count",
    "won_deal_count",
    "expected_revenue",
    *BLANK_WHEN_EMPTY,
}
# The flag columns the report reads: declared, but no measure or group-by.
FLAGS = (
    "is_passed",
    "is_lost",
    "is_open",
    "is_won",
    "is_deal_won",
    "is_deal_paid",
    "is_deal_lost",
    "is_lead",
)


def flags_sql(alias, flags):
    """The condition ``flags`` (flags set, flags unset) on the rows of ``alias``."""
    set_, unset = flags
    return SQL(
        "(%s)",
        SQL(" AND ").join(
            [
                *(SQL.identifier(alias, flag) for flag in set_),
                *(SQL("NOT %s", SQL.identifier(alias, flag)) for flag in unset),
            ]
        ),
    )
