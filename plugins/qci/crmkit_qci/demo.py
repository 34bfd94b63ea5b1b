"""Demo data for ``crmkit demo``: two dated assessments (six months apart, showing progress), monthly costs,
KPI owners and a generated plan — deterministic from the seed."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from crmkit_qci.areas import AREA_KEYS

if TYPE_CHECKING:
    from crmkit import CRM

#: How mature the demo business is per area on a 1–5 scale, six months ago (it improves by the second assessment).
MATURITY = {
    "analysis_planning": 2.6,
    "value_proposition": 3.4,
    "people_organization": 3.0,
    "information_technology": 2.4,
    "process_management": 2.8,
    "acquisition": 3.1,
    "penetration": 2.2,
    "retention": 1.9,
    "efficiency": 2.5,
    "measuring_effect": 1.7,
    "customer_experience": 3.3,
}
OWNERS = {
    "acquisition": "lan.nguyen",
    "penetration": "minh.tran",
    "retention": "huong.le",
    "customer_experience": "ngoc.do",
    "information_technology": "quang.pham",
    "measuring_effect": "thao.vo",
}
#: Who answers the demo's assessments and generates its plan.
ASSESSOR = "lan.nguyen"
#: Monthly customer-management costs in VND: (kind, amount, note).
MONTHLY_COSTS = (
    ("acquisition", 45_000_000, "Quảng cáo Facebook & Zalo"),
    ("service", 120_000_000, "Lương bộ phận CSKH"),
    ("marketing", 30_000_000, "Bản tin & khuyến mãi"),
)


def populate(crm: CRM, seed: int) -> None:
    """Record the demo's assessments, costs, owners and plan through ``crm.qci`` (one transaction each).

    Area owners are users: any the core's demo did not make is added (active, no password)."""
    known = {user.username for user in crm.users.list()}
    for username in sorted({*OWNERS.values(), ASSESSOR} - known):
        crm.users.add(username)
    rng = random.Random(seed * 7919 + 8)
    today = crm.qci.today()
    bank = crm.qci.bank()
    with crm.acting_as(ASSESSOR):
        for months_ago, progress in ((6, 0.0), (1, 0.6)):
            answers = {}
            for question in bank.questions():
                level = MATURITY[question.area] + progress + rng.uniform(-0.9, 0.9)
                answers[question.id] = max(question.scale_min, min(question.scale_max, round(level)))
            crm.qci.assessments.record(
                answers,
                assessed_on=today - timedelta(days=30 * months_ago),
                label=f"QCI self-assessment, {months_ago} month{'s' if months_ago > 1 else ''} ago",
            )
        currency = crm.qci.currency()
        last = crm.qci.period()  # the last complete month, and the two before it
        for month in (last.previous().previous(), last.previous(), last):
            for kind, amount, note in MONTHLY_COSTS:
                minor = amount if currency == "VND" else amount // 25_000 * 100  # ~25.000 ₫ a dollar, in cents
                crm.qci.costs.add(month.label, minor, kind=kind, currency=currency, note=note)
        for area in AREA_KEYS:
            if area in OWNERS:
                crm.qci.set_owner(area, OWNERS[area])
        crm.qci.generate_plan(areas=3)
