"""Tiers: promotion on each change, `evaluate-tiers` over all members (demotion when the window moves), spend basis."""

from datetime import timedelta

import pytest
from loyalty_testkit import days_ago

from crmkit import ValidationError
from crmkit.core.types import utcnow


def test_purchases_promote_and_fire_tier_changed(listening):
    crm, listener = listening
    an = crm.customers.add(name="Nguyễn Văn An")
    crm.sales.place(an.id, 4_000_000)
    assert crm.loyalty.member(an.id).tier == "member"
    crm.sales.place(an.id, 2_000_000)  # 600 qualifying points: Silver from 500
    assert crm.loyalty.member(an.id).tier == "silver"
    assert listener.tiers == [(an.id, None, "member"), (an.id, "member", "silver")]


def test_a_refund_can_demote_at_once(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    order = loyal.sales.place(an.id, 6_000_000)
    assert loyal.loyalty.member(an.id).tier == "silver"
    loyal.sales.refund(order, 2_000_000)
    assert loyal.loyalty.member(an.id).tier == "member"


def test_manual_grants_do_not_qualify_for_tiers(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 10_000, "quà lớn")
    loyal.loyalty.jobs.evaluate_tiers()
    assert loyal.loyalty.member(an.id).tier == "member"


def test_evaluate_tiers_demotes_when_purchases_leave_the_rolling_window(listening):
    crm, listener = listening
    people = [crm.customers.add(name=f"Khách {n}") for n in range(5)]
    for person, spent in zip(people, (6_000_000, 25_000_000, 1_000_000, 60_000_000, 0)):
        if spent:
            crm.sales.place(person.id, spent, placed_at=days_ago(300))
    assert [crm.loyalty.member(p.id).tier for p in people] == ["silver", "gold", "member", "diamond", "member"]
    listener.tiers.clear()
    assert [run.changed for run in crm.loyalty.jobs.evaluate_tiers()] == [0]
    (run,) = crm.loyalty.jobs.evaluate_tiers(now=utcnow() + timedelta(days=100), batch_size=2)
    assert run.changed == 3
    assert [crm.loyalty.member(p.id).tier for p in people] == ["member"] * 5
    assert sorted(listener.tiers) == sorted(
        [(people[0].id, "silver", "member"), (people[1].id, "gold", "member"), (people[3].id, "diamond", "member")]
    )


def test_evaluate_tiers_promotes_after_tiers_are_lowered(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 3_000_000)
    tiers = loyal.loyalty.programs.set_tiers(
        [
            {"code": "member", "name": "Thành viên", "threshold": 0},
            {"code": "vang", "name": "Vàng", "threshold": 250, "multiplier": "1.2"},
        ]
    )
    assert [(t.code, t.rank, t.threshold) for t in tiers] == [("member", 0, 0), ("vang", 1, 250)]
    assert loyal.loyalty.member(an.id).tier == "vang"


def test_spend_based_tiers(loyal):
    loyal.loyalty.programs.create("spend", "Theo doanh số", tier_basis="spend")
    assert [t.threshold for t in loyal.loyalty.programs.tiers("spend")] == [0, 5_000_000, 20_000_000, 50_000_000]
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 5_000_000, tax_minor=400_000)
    assert loyal.loyalty.member(an.id, program="spend").tier == "silver"


BAD_TIERS = [
    ([{"code": "silver", "name": "Silver", "threshold": 100}], "lowest tier must have threshold 0"),
    ([{"code": "a", "name": "A", "threshold": 0}, {"code": "a", "name": "B", "threshold": 5}], "must be unique"),
    ([{"code": "a", "name": "A", "threshold": 0, "multiplier": 0}], "multiplier"),
    ([], "lowest tier"),
]


def test_bad_tiers_are_refused_and_the_old_ones_kept(loyal):
    for tiers, message in BAD_TIERS:
        with pytest.raises(ValidationError, match=message):
            loyal.loyalty.programs.set_tiers(tiers)
    assert [t.code for t in loyal.loyalty.programs.tiers()] == ["member", "silver", "gold", "diamond"]
