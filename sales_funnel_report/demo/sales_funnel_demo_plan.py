"""What happens to each demo deal, drawn from a seeded generator: the same
plans on every run, dated back from today."""

from datetime import timedelta

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


def plan_deal(rng, won_index, now):
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


def plan_sale(rng, won_at, now):
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
