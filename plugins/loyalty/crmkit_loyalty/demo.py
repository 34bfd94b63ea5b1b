"""Demo data for ``crmkit demo``: a VND program with tiers, earn rules and rewards, members, and the points
of the sales demo's orders (read back through ``crm.sales`` — the sales demo runs first), redemptions,
expiry and tier evaluation. Deterministic for a seed.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from crmkit.errors import ValidationError
from crmkit.money import Money

if TYPE_CHECKING:
    from crmkit.crm import CRM

PROGRAM = "default"
MEMBER_SHARE = 0.7  # customers who joined at the counter; the others stay non-members (compare repeat rates)
RULES = (
    {"kind": "min_order", "amount_minor": 50_000},
    {"kind": "category", "target": "Cà phê", "multiplier": "1.5"},
    {"kind": "birthday", "multiplier": "2", "bonus_points": 50},
    {"kind": "occasion", "target": "tet", "multiplier": "2"},
    {"kind": "occasion", "target": "womens_day", "bonus_points": 20},
    {"kind": "occasion", "target": "vietnamese_womens_day", "bonus_points": 20},
    {"kind": "signup", "bonus_points": 50},
    {"kind": "referral", "bonus_points": 100},
)
#: code, name, kind, points, stock, value (VND)
REWARDS = (
    ("voucher-50k", "Voucher 50.000 ₫", "discount", 100, None, 50_000),
    ("voucher-100k", "Voucher 100.000 ₫", "discount", 200, None, 100_000),
    ("arabica-250", "Cà phê Arabica Cầu Đất 250g", "product", 240, 40, 120_000),
    ("bao-tri-1h", "1 giờ bảo trì máy pha cà phê", "service", 700, 15, 350_000),
)


def populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Create the demo program and fill it for the demo customers (members, points, redemptions)."""
    loyalty = crm.loyalty
    if any(program.code == PROGRAM for program in loyalty.programs.list()):
        return
    rng = random.Random(seed)
    loyalty.programs.create(
        PROGRAM,
        "Khách hàng thân thiết",
        currency="VND",
        earn_points=1,
        earn_amount_minor=10_000,
        point_value_minor=500,
        expiry_days=365,
        auto_enroll=False,
    )
    for rule in RULES:
        loyalty.programs.add_rule(rule["kind"], program=PROGRAM, **{k: v for k, v in rule.items() if k != "kind"})
    for code, name, kind, points, stock, value in REWARDS:
        loyalty.programs.add_reward(code, name, points, kind=kind, stock=stock, value_minor=value, program=PROGRAM)
    members = [cid for cid in customer_ids if rng.random() < MEMBER_SHARE]
    for customer_id in members:
        loyalty.enroll(customer_id, program=PROGRAM)
    for referred, referrer in zip(members[1::20], members[::20]):
        crm.customers.update(referred, attributes={"referred_by": referrer})
    loyalty.jobs.backfill()
    for customer_id in members:
        if rng.random() < 0.35:
            for code in ("voucher-100k", "arabica-250", "voucher-50k"):
                try:
                    redemption = loyalty.redeem(customer_id, code, program=PROGRAM)
                except ValidationError:
                    continue  # not enough points (or out of stock): try a cheaper reward
                if rng.random() < 0.05:
                    loyalty.cancel_redemption(redemption.id, note="Khách đổi ý")
                break
    loyalty.jobs.expire(program=PROGRAM)
    loyalty.jobs.evaluate_tiers(program=PROGRAM)


def overview(crm: CRM) -> dict[str, list[str]]:
    """The loyalty lines of the demo overview: members, liability, tiers, redemption and repeat rates, rewards."""
    loyalty = crm.loyalty
    if not loyalty.programs.list():
        return {}
    program = loyalty.programs.get(PROGRAM)
    (liability,) = loyalty.reports.liability(program=PROGRAM)
    (redemption,) = loyalty.reports.redemption_rate(program=PROGRAM)
    tiers = " · ".join(f"{row.name} {row.members:,}" for row in loyalty.reports.tier_counts(program=PROGRAM))
    repeat = ", ".join(f"{row.group} {_percent(row.rate)}" for row in loyalty.reports.repeat_purchase(program=PROGRAM))
    rewards = ", ".join(f"{r.name} ({r.points_cost} points)" for r in loyalty.programs.rewards(program=PROGRAM))
    value = f" worth {liability.value}" if liability.value else ""
    return {
        "Loyalty": [
            f"{liability.members:,} members; {liability.outstanding:,} points outstanding{value}",
            f"tiers: {tiers}",
            f"redeemed {_percent(redemption.rate)} of the points earned; {redemption.redeeming_members:,} members redeemed",
            f"repeat-purchase rate: {repeat}",
            f"rewards: {rewards}",
            f"earning {program.earn_points.normalize():f} point per {Money(program.currency, program.earn_amount_minor)}; "
            "try `crmkit loyalty report liability`, `crmkit loyalty statement ID`",
        ]
    }


def _percent(rate: object) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"
