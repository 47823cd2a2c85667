"""Demo deals whose chatter tells the funnel's story, loaded with the demo data.

Plain functions, so that no demo model is registered in production databases;
``demo/sales_funnel_demo.xml`` calls :func:`generate` through the one method
of the demo in a model, ``sales.funnel.rebuild._generate_demo``.
"""

import random

from odoo import api, fields, models
from odoo.tools import SQL

from .sales_funnel_demo_plan import PRODUCTS, plan_deal, plan_sale


def generate(env, team_id, stage_ids, reason_ids, user_ids, source_ids, deals=300, seed=1701):
    """Create ``deals`` deals in ``team_id`` over the last twelve months,
    deterministically (``seed``), with the chatter Odoo would have written
    for their moves, losses and wins, then rebuild the stage history from
    that chatter. ``stage_ids`` are the pipeline stages in order, the won
    stage last; ``reason_ids`` are: not called back, offer did not fit,
    goods not available, too expensive, other."""
    rng = random.Random(seed)
    stages = env["crm.stage"].browse(stage_ids)
    reasons = env["crm.lost.reason"].browse(reason_ids)
    now = fields.Datetime.now().replace(microsecond=0)
    partners = env["res.partner"].search([("is_company", "=", True)], order="id", limit=30)
    plans = [plan_deal(rng, len(stages) - 1, now) for _index in range(deals)]
    leads = (
        env["crm.lead"]
        .with_context(tracking_disable=True)
        .create(
            [
                {
                    "name": f"{rng.choice(PRODUCTS)} for "
                    f"{partners[index % len(partners)].name if partners else 'a customer'}",
                    "type": "opportunity",
                    "team_id": team_id,
                    "user_id": user_ids[index % len(user_ids)],
                    "partner_id": partners[index % len(partners)].id if partners else False,
                    "source_id": source_ids[index % len(source_ids)] if source_ids else False,
                    "expected_revenue": round(rng.lognormvariate(8.5, 0.8), -1),
                    "stage_id": stages[plan["moves"][-1][1] if plan["moves"] else 0].id,
                    "active": not plan["lost"],
                    "lost_reason_id": reasons[plan["lost"][1]].id if plan["lost"] else False,
                }
                for index, plan in enumerate(plans)
            ]
        )
    )
    write_chatter(env, leads, plans, stages, reasons)
    env["sales.funnel.rebuild"]._run()
    won = [
        (lead, plan["moves"][-1][0])
        for lead, plan in zip(leads, plans, strict=True)
        if plan["moves"] and plan["moves"][-1][1] == len(stages) - 1
    ]
    sell(env, won, random.Random(seed + 1), now)
    return leads


def sell(env, won, rng, now):
    """Orders for won deals, dated after the win: most are invoiced and paid,
    some wait for payment or are paid in part, a few are cancelled (the goods
    could not be supplied). Dates in the future are not reached yet."""
    if not env["account.journal"].search_count(
        [("type", "=", "sale"), ("company_id", "=", env.company.id)], limit=1
    ):
        return  # no chart of accounts: the demo stops at the pipeline
    product = env["product.product"].create(
        {
            "name": "Office equipment (demo)",
            "type": "service",
            "invoice_policy": "order",
        }
    )
    fallback = env["res.partner"].create({"name": "Demo customer"})
    plans = [(lead, plan_sale(rng, won_at, now)) for lead, won_at in won]
    plans = [(lead, plan) for lead, plan in plans if plan]
    orders = env["sale.order"].create(
        [
            {
                "partner_id": (lead.partner_id or fallback).id,
                "opportunity_id": lead.id,
                "team_id": lead.team_id.id,
                "user_id": lead.user_id.id,
                "order_line": [
                    (
                        0,
                        0,
                        {
                            "product_id": product.id,
                            "price_unit": lead.expected_revenue or 1000.0,
                        },
                    )
                ],
            }
            for lead, _plan in plans
        ]
    )
    orders.action_confirm()
    confirmed_at = {
        order.id: plan["confirmed"] for order, (_lead, plan) in zip(orders, plans, strict=True)
    }
    by_order = dict(zip(orders, (plan for _lead, plan in plans), strict=True))
    orders.filtered(lambda order: by_order[order].get("cancelled"))._action_cancel()
    billed = orders.filtered(lambda order: by_order[order].get("invoiced"))
    invoices = billed._create_invoices(grouped=True)
    for invoice in invoices:
        invoice.invoice_date = by_order[invoice.line_ids.sale_line_ids.order_id]["invoiced"]
    invoices.sorted("invoice_date").action_post()
    for invoice in invoices:
        for paid_on, share in by_order[invoice.line_ids.sale_line_ids.order_id]["payments"]:
            env["account.payment.register"].with_context(
                active_model="account.move", active_ids=invoice.ids
            ).create(
                {
                    "payment_date": paid_on.date(),
                    "amount": invoice.currency_id.round(invoice.amount_total * share),
                }
            )._create_payments()
    if confirmed_at:
        env.flush_all()
        env.cr.execute(
            SQL(
                """
            UPDATE sale_order so
               SET date_order = d.at, funnel_confirmed_at = d.at
              FROM (VALUES %s) AS d(id, at)
             WHERE so.id = d.id
            """,
                SQL(", ").join(
                    SQL("(%s, %s::timestamp)", oid, at) for oid, at in confirmed_at.items()
                ),
            )
        )
        env["sale.order"].invalidate_model()
        env["sales.funnel.fact"]._refresh(
            env["sale.order"].browse(list(confirmed_at)).opportunity_id.ids
        )


def write_chatter(env, leads, plans, stages, reasons):
    fields_by_name = {
        field.name: field
        for field in env["ir.model.fields"]
        .sudo()
        .search(
            [
                ("model", "=", "crm.lead"),
                ("name", "in", ("stage_id", "active", "lost_reason_id")),
            ]
        )
    }
    note = env.ref("mail.mt_note").id
    messages, dates = [], []
    for lead, plan in zip(leads, plans, strict=True):
        previous = stages[0]
        for when, target in plan["moves"]:
            messages.append(
                tracking_message(
                    lead, note, when, fields_by_name["stage_id"], previous, stages[target]
                )
            )
            dates.append(when)
            previous = stages[target]
        if plan["lost"]:
            when, reason = plan["lost"]
            values = tracking_message(
                lead,
                note,
                when,
                fields_by_name["lost_reason_id"],
                reasons.browse(),
                reasons[reason],
            )
            values["tracking_value_ids"].append(
                (
                    0,
                    0,
                    {
                        "field_id": fields_by_name["active"].id,
                        "old_value_integer": 1,
                        "new_value_integer": 0,
                    },
                )
            )
            messages.append(values)
            dates.append(when)
    created = env["mail.message"].sudo().create(messages)
    cr = env.cr
    env.flush_all()
    cr.execute(
        SQL(
            """
        UPDATE mail_tracking_value v
           SET create_date = m.date
          FROM mail_message m
         WHERE m.id = v.mail_message_id AND m.id = ANY(%s)
        """,
            created.ids,
        )
    )
    cr.execute(
        SQL(
            """
        UPDATE crm_lead l
           SET create_date = d.created,
               date_open = d.created,
               date_last_stage_update = d.last_move,
               date_closed = d.closed
          FROM (VALUES %s) AS d(id, created, last_move, closed)
         WHERE l.id = d.id
        """,
            SQL(", ").join(
                SQL(
                    "(%s, %s::timestamp, %s::timestamp, %s::timestamp)",
                    lead.id,
                    plan["created"],
                    plan["moves"][-1][0] if plan["moves"] else plan["created"],
                    plan["lost"][0]
                    if plan["lost"]
                    else (
                        plan["moves"][-1][0]
                        if plan["moves"] and stages[plan["moves"][-1][1]].is_won
                        else None
                    ),
                )
                for lead, plan in zip(leads, plans, strict=True)
            ),
        )
    )
    leads.invalidate_recordset()
    return created


def tracking_message(lead, subtype_id, when, field, old, new):
    return {
        "model": "crm.lead",
        "res_id": lead.id,
        "message_type": "notification",
        "subtype_id": subtype_id,
        "author_id": lead.user_id.partner_id.id,
        "date": when,
        "tracking_value_ids": [
            (
                0,
                0,
                {
                    "field_id": field.id,
                    "old_value_integer": old.id or 0,
                    "new_value_integer": new.id or 0,
                    "old_value_char": old.display_name or "",
                    "new_value_char": new.display_name or "",
                },
            )
        ],
    }


class SalesFunnelRebuild(models.AbstractModel):
    _inherit = "sales.funnel.rebuild"

    @api.model
    def _generate_demo(self, *args, **kwargs):
        """The demo data's way in (a ``<function>`` calls a model's method)."""
        return generate(self.env, *args, **kwargs)
