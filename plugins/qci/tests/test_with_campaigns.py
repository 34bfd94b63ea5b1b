"""QCI with crmkit-campaigns installed: the plan's segments and draft campaigns, campaign ROI, lift and costs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmkit.core.types import utcnow
from crmkit_qci import periods

from .conftest import SOURCE, buy, staff

CAMPAIGNS = "campaigns"
#: Acquisition, penetration and retention answered worst: all three campaign areas are chosen.
WEAK = {
    "AQ1": 1,
    "AQ2": 1,
    "AQ3": 2,
    "AQ4": 1,
    "PE1": 1,
    "PE2": 2,
    "PE3": 1,
    "PE4": 1,
    "RE1": 1,
    "RE2": 1,
    "RE3": 1,
    "RE4": 2,
    "RE5": 1,
    "CX1": 5,
    "CX2": 5,
    "CX3": 5,
    "CX4": 5,
    "CX5": 5,
}


@pytest.fixture
def campaigns_crm(crm_factory: Any) -> Any:
    """QCI, crmkit-campaigns and the stand-in purchase source (its table created)."""
    return crm_factory(plugins=["qci", CAMPAIGNS, SOURCE])


def test_the_plan_creates_the_segment_and_a_draft_campaign(campaigns_crm: Any) -> None:
    crm = campaigns_crm
    staff(crm, "huong.le")
    crm.qci.assessments.record(WEAK)
    crm.qci.set_owner("retention", "huong.le")
    made = {a.rule_id: a for a in crm.qci.generate_plan(areas=3).created}
    win_back = made["ret-win-back"]
    campaign = crm.campaigns.get(int(win_back.campaign_ref))
    assert (campaign.status, campaign.objective, campaign.owner, campaign.channel) == (
        "draft",
        "retention",
        "huong.le",
        "email",
    )
    assert campaign.name == f"QCI: chúng tôi nhớ bạn (QCI #{win_back.id})"
    assert campaign.variants[0].subject == "{{ first_name }}, đã lâu không gặp!"
    segment = crm.campaigns.segments.get(int(win_back.segment_ref))
    # without analytics there is no rfm_segment field: the rule's core fallback is used
    assert segment.expression == 'lifecycle_stage = "churned"' and campaign.segment == segment.name
    assert win_back.handoff == (
        f'segment #{segment.id} (lifecycle_stage = "churned") and draft campaign '
        f"#{campaign.id} created in crmkit-campaigns"
    )
    leads = crm.campaigns.segments.get(int(made["acq-convert-leads"].segment_ref))
    assert leads.expression == 'lifecycle_stage in ("lead", "prospect")'
    assert (
        crm.campaigns.segments.get(int(made["pen-cross-sell"].segment_ref)).expression == 'lifecycle_stage = "customer"'
    )
    assert made["pen-account-plans"].campaign_ref is None and made["pen-account-plans"].handoff is None
    assert len(crm.campaigns.list()) == 3


def test_a_handoff_campaigns_refuses_leaves_the_action_without_a_campaign(campaigns_crm: Any) -> None:
    crm = campaigns_crm
    crm.campaigns.segments.create("QCI: chúng tôi nhớ bạn (QCI #1)", 'lifecycle_stage = "lead"')  # the name is taken
    crm.qci.assessments.record({k: v for k, v in WEAK.items() if k.startswith("RE")})
    made = {a.rule_id: a for a in crm.qci.generate_plan(areas=1).created}
    win_back = made["ret-win-back"]
    assert win_back.id == 1 and win_back.campaign_ref is None and win_back.segment_ref is None
    assert win_back.handoff == (
        "not handed off: crmkit-campaigns refused it: a segment named 'QCI: chúng tôi nhớ bạn (QCI #1)' already exists"
    )
    assert crm.campaigns.list() == [] and len(crm.campaigns.segments.list()) == 1  # rolled back to the savepoint
    assert set(made) == {"ret-win-back", "ret-exit-survey"}  # the plan itself was made


def test_campaign_roi_lift_and_costs_come_from_the_campaigns_reports(campaigns_crm: Any, tmp_path: Path) -> None:
    crm = campaigns_crm
    ids = [
        crm.customers.add(
            name=f"Khách hàng {i}", email=f"khach{i}@example.vn", lifecycle_stage="customer", consents={"email": True}
        ).id
        for i in range(24)
    ]
    crm.campaigns.set_channel("email", "file", directory=str(tmp_path / "outbox"))
    crm.campaigns.configure("quiet_hours", "")  # run now, whatever the hour: messages are due at once
    segment = crm.campaigns.segments.create("Khách hàng", 'lifecycle_stage = "customer"')
    campaign = crm.campaigns.create(
        "Tết 2026",
        channel="email",
        body="Chúc mừng năm mới {{ first_name }}!",
        segment=segment.id,
        cost_fixed_minor=1_000_000,
        holdout_percent=50,
        objective="Acquisition",
    )
    month = periods.current_month(crm)
    before = {m.key: m for m in crm.qci.kpis(month, keys=["campaign_roi", "campaign_lift"])}
    assert (before["campaign_roi"].status, before["campaign_roi"].reason) == (
        "no data",
        f"no campaign in VND started in {month.label}",
    )
    crm.campaigns.run(campaign.id)
    held = {m["customer_id"] for m in crm.campaigns.messages(campaign.id, status="holdout", limit=100)}
    assert 0 < len(held) < len(ids)
    soon = utcnow() + timedelta(hours=1)
    buyers = [c for c in ids if c not in held][:6] + sorted(held)[:1]
    for customer_id in buyers:
        buy(crm, customer_id, soon, 500_000)
    report = crm.campaigns.report(campaign.id)
    m = {x.key: x for x in crm.qci.kpis(month, keys=["campaign_roi", "campaign_lift", "cost_per_acquisition"])}
    assert report.roi is not None and m["campaign_roi"].value == report.roi
    assert m["campaign_lift"].value == report.lift.difference
    assert m["campaign_roi"].detail == "1 campaign: attributed revenue 3.000.000 ₫, cost 1.000.000 ₫"
    cpa = m["cost_per_acquisition"]
    assert (cpa.value, cpa.detail) == (
        41_667,  # 1.000.000 / 24, rounded half-even
        "campaigns 1.000.000 ₫ for 24 new customers",
    )
