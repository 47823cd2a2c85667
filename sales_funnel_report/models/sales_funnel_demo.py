import random
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

# Per funnel stage: mean days spent there, chance to be lost there, and the loss
# reasons (by index in the reasons given) with their weights. The story of the
# seed document: most deals are lost at primary contact (not called back in
# time, about five days there), then at the proposal (the longest stage, offers
# that did not fit), a few at fulfilment (goods not available in time).
STAGE_PLAN = [
    {"days": 5.6, "lost": 0.34, "reasons": [(0, 8), (3, 2)]},
    {"days": 12.0, "lost": 0.24, "reasons": [(1, 7), (3, 2), (4, 1)]},
    {"days": 6.0, "lost": 0.12, "reasons": [(3, 2), (4, 2), (1, 1)]},
    {"days": 4.0, "lost": 0.08, "reasons": [(2, 1)]},
]


class SalesFunnelDemo(models.AbstractModel):
    """Demo deals whose chatter tells the funnel's story."""

    _name = "sales.funnel.demo"
    _description = "Sales Funnel Demo Data"

    @api.model
    def _generate(self, team_id, stage_ids, reason_ids, user_ids, source_ids, deals=300, seed=1701):
        """Create ``deals`` deals in ``team_id`` over the last twelve months,
        deterministically (``seed``), with the chatter Odoo would have written
        for their moves, losses and wins, then rebuild the stage history from
        that chatter. ``stage_ids`` are the pipeline stages in order, the won
        stage last; ``reason_ids`` are: not called back, offer did not fit,
        goods not available, too expensive, other."""
        rng = random.Random(seed)
        stages = self.env["crm.stage"].browse(stage_ids)
        reasons = self.env["crm.lost.reason"].browse(reason_ids)
        now = fields.Datetime.now().replace(microsecond=0)
        partners = self.env["res.partner"].search([("is_company", "=", True)], order="id", limit=30)
        plans = [self._plan_deal(rng, len(stages) - 1, now) for _index in range(deals)]
        leads = (
            self.env["crm.lead"]
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
        self._write_chatter(leads, plans, stages, reasons)
        self.env["sales.funnel.rebuild"]._run()
        won = [
            (lead, plan["moves"][-1][0])
            for lead, plan in zip(leads, plans, strict=True)
            if plan["moves"] and plan["moves"][-1][1] == len(stages) - 1
        ]
        self._sell(won, random.Random(seed + 1), now)
        return leads

    @api.model
    def _sell(self, won, rng, now):
        """Orders for won deals, dated after the win: most are invoiced and paid,
        some wait for payment or are paid in part, a few are cancelled (the goods
        could not be supplied). Dates in the future are not reached yet."""
        if not self.env["account.journal"].search_count(
            [("type", "=", "sale"), ("company_id", "=", self.env.company.id)], limit=1
        ):
            return  # no chart of accounts: the demo stops at the pipeline
        product = self.env["product.product"].create(
            {
                "name": "Office equipment (demo)",
                "type": "service",
                "invoice_policy": "order",
            }
        )
        fallback = self.env["res.partner"].create({"name": "Demo customer"})
        plans = [(lead, self._plan_sale(rng, won_at, now)) for lead, won_at in won]
        plans = [(lead, plan) for lead, plan in plans if plan]
        orders = self.env["sale.order"].create(
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
                self.env["account.payment.register"].with_context(
                    active_model="account.move", active_ids=invoice.ids
                ).create(
                    {
                        "payment_date": paid_on.date(),
                        "amount": invoice.currency_id.round(invoice.amount_total * share),
                    }
                )._create_payments()
        if confirmed_at:
            self.env.flush_all()
            self.env.cr.execute(
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
            self.env["sale.order"].invalidate_model()
            self.env["sales.funnel.fact"]._refresh(
                self.env["sale.order"].browse(list(confirmed_at)).opportunity_id.ids
            )

    @api.model
    def _plan_sale(self, rng, won_at, now):
        """One won deal's order: confirmation, cancellation, invoice and payments."""
        confirmed = won_at + timedelta(days=rng.expovariate(1 / 2.0))
        if confirmed >= now:
            return None
        plan = {"confirmed": confirmed}
        if rng.random() < 0.07:
            plan["cancelled"] = True
            return plan
        invoiced = confirmed + timedelta(days=rng.expovariate(1 / 3.0))
        if invoiced >= now:
            return plan
        plan["invoiced"] = invoiced
        paid = invoiced + timedelta(days=rng.expovariate(1 / 12.0))
        shares = [0.5] if rng.random() < 0.1 else [1.0]
        plan["payments"] = [(paid, share) for share in shares if paid < now]
        return plan

    @api.model
    def _plan_deal(self, rng, won_index, now):
        """One deal's life: creation time, moves (time, stage index) and loss."""
        created = now - timedelta(days=rng.uniform(0, 365), hours=rng.randrange(9))
        created = created.replace(microsecond=0)
        plan = {"created": created, "moves": [], "lost": None}
        index, when = 0, created
        while index < won_index:
            step = STAGE_PLAN[index]
            when += timedelta(days=rng.expovariate(1.0 / step["days"]))
            if when >= now:
                break
            if rng.random() < step["lost"]:
                reason = rng.choices(
                    [r for r, _w in step["reasons"]], [w for _r, w in step["reasons"]]
                )[0]
                plan["lost"] = (when, reason)
                break
            if index == 2 and rng.random() < 0.08:
                target = 1  # back to the proposal: the offer is reworked
            elif index < won_index - 1 and rng.random() < 0.06:
                target = index + 2  # a stage jumped over
            else:
                target = index + 1
            plan["moves"].append((when, target))
            index = target
        return plan

    @api.model
    def _write_chatter(self, leads, plans, stages, reasons):
        fields_by_name = {
            field.name: field
            for field in self.env["ir.model.fields"]
            .sudo()
            .search(
                [
                    ("model", "=", "crm.lead"),
                    ("name", "in", ("stage_id", "active", "lost_reason_id")),
                ]
            )
        }
        note = self.env.ref("mail.mt_note").id
        messages, dates = [], []
        for lead, plan in zip(leads, plans, strict=True):
            previous = stages[0]
            for when, target in plan["moves"]:
                messages.append(
                    self._tracking_message(
                        lead, note, when, fields_by_name["stage_id"], previous, stages[target]
                    )
                )
                dates.append(when)
                previous = stages[target]
            if plan["lost"]:
                when, reason = plan["lost"]
                values = self._tracking_message(
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
        created = self.env["mail.message"].sudo().create(messages)
        cr = self.env.cr
        self.env.flush_all()
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

    @api.model
    def _tracking_message(self, lead, subtype_id, when, field, old, new):
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


PRODUCTS = [
    "Office furniture",
    "Warehouse shelving",
    "Conference chairs",
    "Standing desks",
    "Reception desk",
    "Storage cabinets",
    "Meeting tables",
    "Lighting upgrade",
]
