"""ROI, rates and lift over the holdout, per variant and across campaigns, and the chart."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

import campaigns_testkit as kit
from crmkit import ValidationError
from crmkit_campaigns import models as m
from crmkit_campaigns.reports import chart, comparison_rows


@pytest.fixture
def measured(crm_factory, tmp_path):
    """600 customers, a campaign with two variants and a 25 % holdout, and purchases around it."""
    crm = crm_factory(plugins=["campaigns", kit.PURCHASES])
    kit.outbox(crm, tmp_path / "outbox")
    ids = kit.bulk_people(crm, 600)
    campaign = crm.campaigns.create("Tết", channel="email", body="A", holdout_percent=25, attribution_days=7,
                                    cost_fixed_minor=1_000_000, cost_per_message_minor=500)
    crm.campaigns.set_variant(campaign.id, "B", body="B")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    with crm.reading() as conn:
        groups = dict(conn.execute(sa.select(m.messages.c.customer_id, m.messages.c.status)
                                   .where(m.messages.c.campaign_id == campaign.id)).all())
    day = kit.NOON + timedelta(days=1)
    bought = []
    for customer_id in ids:
        if customer_id % 5 == 0 or (customer_id % 5 == 1 and groups[customer_id] == "sent"):
            bought.append((customer_id, 100_000, day, "VND"))  # everyone's baseline, plus what the message brought
        if customer_id % 7 == 0:
            bought.append((customer_id, 999_000, kit.NOON + timedelta(days=9), "VND"))  # after the window
        if customer_id % 11 == 0:
            bought.append((customer_id, 5_000, day, "USD"))  # not the campaign's currency
    kit.buy_many(crm, bought)
    return crm, campaign, groups


def test_roi_and_lift_per_campaign(measured):
    crm, campaign, groups = measured
    report = crm.campaigns.report(campaign.id)
    treated = [c for c, s in groups.items() if s == "sent"]
    held = [c for c, s in groups.items() if s == "holdout"]
    assert (report.audience, report.holdout, report.treated.sent) == (600, len(held), len(treated))
    converted = [c for c in treated if c % 5 in (0, 1)]
    control = [c for c in held if c % 5 == 0]
    assert (report.treated.converted, report.groups[-1].converted) == (len(converted), len(control))
    revenue = 100_000 * len(converted)
    cost = 1_000_000 + 500 * len(treated)
    assert (report.revenue_minor, report.cost_minor) == (revenue, cost)
    assert report.roi == (Decimal(revenue - cost) / Decimal(cost)).quantize(Decimal("0.0001"))
    p1, p0 = len(converted) / len(treated), len(control) / len(held)
    margin = 1.959964 * math.sqrt(p1 * (1 - p1) / len(treated) + p0 * (1 - p0) / len(held))
    lift = report.lift
    assert float(lift.difference) == pytest.approx(p1 - p0, abs=1e-4)
    assert (float(lift.low), float(lift.high)) == (pytest.approx(p1 - p0 - margin, abs=1e-4),
                                                   pytest.approx(p1 - p0 + margin, abs=1e-4))
    assert lift.significant and lift.low > 0
    assert lift.incremental_revenue_minor == (revenue * len(held) - 100_000 * len(control) * len(treated)) // len(held)
    by_variant = {g.name: g for g in report.groups}
    assert by_variant["A"].customers + by_variant["B"].customers == len(treated)
    assert set(report.variant_lifts) == {"A", "B"}
    rows = report.as_rows()
    assert [r["group"] for r in rows] == ["A", "B", "all", "holdout"]
    assert rows[2]["conversion_rate"] == (Decimal(len(converted)) / len(treated)).quantize(Decimal("0.0001"))


def test_comparison_and_chart(measured, tmp_path):
    crm, campaign, _ = measured
    other = crm.campaigns.create("Không chi phí", channel="email", body="x")
    crm.campaigns.run(other.id, now=kit.NOON + timedelta(days=20))
    rows = {r["campaign"]: r for r in comparison_rows(crm.campaigns.compare())}
    assert rows["Tết"]["roi"] == crm.campaigns.report(campaign.id).roi
    assert rows["Không chi phí"]["roi"] is None and rows["Không chi phí"]["lift"] is None  # no cost, no holdout
    png = chart([crm.campaigns.report(campaign.id)], tmp_path / "tet.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = chart(crm.campaigns.compare(), tmp_path / "all.svg")
    assert "<svg" in svg.read_text()[:500]
    with pytest.raises(ValidationError, match=".png or .svg"):
        chart(crm.campaigns.compare(), tmp_path / "all.pdf")
