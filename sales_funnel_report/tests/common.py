"""What the addon's tests share: the measures, the scenario's clock, the funnel
table helpers and :class:`FunnelCase`, a team's pipeline on Odoo's own test bases
(``TransactionCase``, and ``MailCase`` for its clock and its tracking flush)."""

from contextlib import contextmanager
from datetime import datetime, timedelta

from odoo.tests import TransactionCase, new_test_user

from odoo.addons.mail.tests.common import MailCase

# The measures the funnel's graph and pivot ask for, with their aggregators.
MEASURES = [
    "lead_count:sum",
    "passed_count:sum",
    "lost_count:sum",
    "open_count:sum",
    "won_count:sum",
    "conversion_rate:avg",
    "win_rate:avg",
    "duration_days:avg",
    "duration_median_days:avg",
]

# Day 0 of every scenario; each move happens at 09:00 of its day.
START = datetime(2025, 3, 3, 9, 0, 0)


def empty_or_rounded(value):
    """read_group gives False for an aggregate over no value."""
    return None if value is False or value is None else round(value, 4)


def rate(value):
    """A rate as the pivot shows it (one decimal), None where it does not apply."""
    return None if value is False or value is None else round(value, 1)


def day(n, hours=0):
    return START + timedelta(days=n, hours=hours)


def funnel_row(group):
    """A ``read_group`` group of the funnel's measures (:data:`MEASURES`) as its
    table shows it: (reached, passed, lost, open, won, conversion %, win rate %,
    average days, median days), rates to one decimal, None where a value is empty."""
    return (
        group["lead_count"],
        group["passed_count"],
        group["lost_count"],
        group["open_count"],
        group["won_count"],
        rate(group["conversion_rate"]),
        rate(group["win_rate"]),
        empty_or_rounded(group["duration_days"]),
        empty_or_rounded(group["duration_median_days"]),
    )


def funnel_table(groups, groupby=None):
    """The groups as {name of the group's ``groupby`` value: :func:`funnel_row`},
    in the groups' order; without a group-by, the one total row as "total"."""
    return {(group[groupby][1] if groupby else "total"): funnel_row(group) for group in groups}


def park_shared_stages(env, name="Other pipeline"):
    """Stages without a team belong to every pipeline: park the ones the database
    came with in a team of their own, so a test's pipeline is exactly its own
    stages. Return that team."""
    team = env["crm.team"].create({"name": name})
    env["crm.stage"].search([("team_id", "=", False)]).write({"team_id": team.id})
    return team


class FunnelCase(TransactionCase, MailCase):
    """A team with its own pipeline A → B → C → Won, as in the funnel's worked
    example (``funnel-example.md`` of the team's design notes, kept outside this
    repository), two loss reasons and a salesman who only sees his own deals."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.other_team = park_shared_stages(env)
        cls.team = env["crm.team"].create({"name": "Funnel team"})
        Stage = env["crm.stage"]
        cls.stage_a = Stage.create({"name": "A", "sequence": 1, "team_id": cls.team.id})
        cls.stage_b = Stage.create({"name": "B", "sequence": 2, "team_id": cls.team.id})
        cls.stage_c = Stage.create({"name": "C", "sequence": 3, "team_id": cls.team.id})
        cls.stage_won = Stage.create(
            {"name": "Won", "sequence": 10, "team_id": cls.team.id, "is_won": True}
        )
        cls.reason_price = env["crm.lost.reason"].create({"name": "Price"})
        cls.reason_no_answer = env["crm.lost.reason"].create({"name": "No answer"})
        cls.salesman = new_test_user(
            env,
            login="funnel_salesman",
            groups="sales_team.group_sale_salesman",
            name="Funnel Salesman",
        )
        cls.other_salesman = new_test_user(
            env,
            login="funnel_other",
            groups="sales_team.group_sale_salesman",
            name="Other Salesman",
        )
        cls.manager = new_test_user(
            env,
            login="funnel_manager",
            groups="sales_team.group_sale_manager",
            name="Funnel Manager",
        )

    @contextmanager
    def at(self, when):
        """Run the block as one transaction at ``when``: Python's and the
        transaction's clock are frozen (history time is ``cr.now()``, see
        ``MailCase.mock_datetime_and_now``), and leaving the block runs what a
        commit runs before committing (tracking, and the funnel's recording of the
        deals the block changed), still at ``when``."""
        with self.mock_datetime_and_now(when):
            yield
            self.flush_tracking()

    def new_deal(self, when, stage=None, name="Deal", user=None, **vals):
        """A deal created by its salesperson, who then works it (moves, loses, wins)."""
        user = user or self.salesman
        with self.at(when):
            return (
                self.env["crm.lead"]
                .with_user(user)
                .create(
                    {
                        "name": name,
                        "type": "opportunity",
                        "team_id": self.team.id,
                        "user_id": user.id,
                        "stage_id": (stage or self.stage_a).id,
                        **vals,
                    }
                )
            )

    def move(self, deal, stage, when):
        with self.at(when):
            deal.write({"stage_id": stage.id})

    def lose(self, deal, reason, when):
        """Lose through the wizard, as a user does."""
        with self.at(when):
            wizard = deal.env["crm.lead.lost"].create(
                {"lead_ids": [(6, 0, deal.ids)], "lost_reason_id": reason.id if reason else False}
            )
            wizard.action_lost_reason_apply()

    def stays(self, deal):
        """The deal's stays as (stage name, in, out, days, outcome, reason name)."""
        history = self.env["crm.lead.stage.history"].search([("lead_id", "=", deal.id)])
        return [
            (
                stay.stage_id.name,
                stay.date_in,
                stay.date_out or None,
                round(stay.duration_days, 6) if stay.date_out else None,
                stay.outcome,
                stay.lost_reason_id.name or None,
            )
            for stay in history.sorted(lambda s: (s.date_in, s.id))
        ]

    def deal_state(self, deal):
        """The deal's status (``deal_state``), the same on each of its funnel rows."""
        states = (
            self.env["sales.funnel.report"].search([("lead_id", "=", deal.id)]).mapped("deal_state")
        )
        self.assertEqual(len(set(states)), 1, f"one status on every row of {deal.name}")
        return states[0]

    def queries_to_record(self, change, when):
        """The queries the funnel's recording costs at commit, after ``change()``
        at ``when`` (the change's own queries are not counted)."""
        with self.at(when):
            change()
            self.env.flush_all()
            before = self.cr.sql_log_count
            self.env["sales.funnel.queue"]._process()
            return self.cr.sql_log_count - before

    def assert_recording_queries_constant(self, change, few, many, when):
        """Recording ``change(deals)`` costs as many queries for ``few`` deals as for
        ``many``: no query per deal."""
        self.assertEqual(
            self.queries_to_record(lambda: change(few), when),
            self.queries_to_record(lambda: change(many), when),
        )

    def run_funnel_jobs(self):
        """Commit-time work, then the queued background jobs to their end, in this
        transaction, as the scheduled action runs them batch by batch."""
        self.flush_tracking()
        Job = self.env["sales.funnel.job"]
        batches = 0
        while Job._process_one_batch():
            batches += 1
        self.env.invalidate_all()
        return batches

    def axis(self, deal):
        """The deal's funnel steps and its outcome at each, in funnel order."""
        return [
            (step.name, state)
            for step, state in self.env["sales.funnel.report"]._read_group(
                [("lead_id", "=", deal.id)], ["step_id", "state"], order="step_id"
            )
        ]

    def funnel_rows(self, deals):
        """The stored funnel rows of ``deals``, comparable between two runs."""
        self.flush_tracking()
        facts = self.env["sales.funnel.fact"].sudo().search([("lead_id", "in", deals.ids)])
        return sorted(
            (
                fact.lead_id.id,
                fact.step_id.id,
                fact.stage_sequence,
                fact.is_passed,
                fact.is_lost,
                fact.is_open,
                fact.is_won,
                fact.skipped,
                fact.duration_days and round(fact.duration_days, 6),
                fact.date_in,
            )
            for fact in facts
        )
