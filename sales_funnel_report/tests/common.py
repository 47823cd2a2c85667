from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo.tests import TransactionCase, freeze_time, new_test_user

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


class FunnelCase(TransactionCase):
    """A team with its own pipeline A → B → C → Won, as in the worked example
    (design/funnel-example.md), two loss reasons and a salesman who only sees
    his own deals."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        # Stages without a team belong to every pipeline: park the ones the
        # database came with in a team of their own so the pipeline is exactly ours.
        cls.other_team = env["crm.team"].create({"name": "Other pipeline"})
        env["crm.stage"].search([("team_id", "=", False)]).write({"team_id": cls.other_team.id})
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
        transaction's clock are frozen (history time is ``cr.now()``), and leaving
        the block runs what a commit runs before committing (tracking, and the
        funnel's recording of the deals the block changed)."""
        with freeze_time(when), patch.object(self.env.cr, "now", lambda: when):
            yield
            self.env.cr.flush()

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

    def run_funnel_jobs(self):
        """Commit-time work, then the queued background jobs to their end, in this
        transaction, as the scheduled action runs them batch by batch."""
        self.env.cr.flush()
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
        self.env.cr.flush()
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
