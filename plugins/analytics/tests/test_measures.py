"""Customer types, PCV, share of wallet and CLV through the CRM, against hand-computed cases and CDNOW."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.core.tables import customers
from crmkit_analytics import btyd
from crmkit_analytics.testing import AS_OF, cdnow_file

# --- customer types ------------------------------------------------------------------------------------


def test_customer_types_follow_the_documented_rules(analytics_crm: Any, shop: Any, people: Any) -> None:
    prospect, new, loyal, potential, at_risk, talking, lost = people(7)
    shop.buy(new, days_ago=30)
    for days in (10, 40, 70, 100):
        shop.buy(loyal, days_ago=days)
    shop.buy(potential, days_ago=120)
    shop.buy(potential, days_ago=150)
    shop.buy(at_risk, days_ago=300)
    shop.buy(talking, days_ago=500)
    shop.buy(lost, days_ago=500)
    analytics_crm.interactions.log(
        talking,
        channel="phone",
        direction="inbound",
        occurred_at=AS_OF - timedelta(days=20),
        summary="Hỏi về khuyến mãi",
    )
    analytics_crm.interactions.log(
        lost, channel="email", direction="outbound", occurred_at=AS_OF - timedelta(days=20), summary="Gửi khuyến mãi"
    )
    run = analytics_crm.analytics.customer_types(as_of=AS_OF)
    kinds = {r["customer_id"]: r["customer_type"] for r in analytics_crm.analytics.customers("types")}
    assert kinds == {
        prospect: "prospect",
        new: "new",
        loyal: "loyal",
        potential: "potential",
        at_risk: "at_risk",
        talking: "at_risk",
        lost: "lost",
    }
    assert run.summary["types"] == {"loyal": 1, "potential": 1, "new": 1, "prospect": 1, "at_risk": 2, "lost": 1}
    stricter = analytics_crm.analytics.customer_types(as_of=AS_OF, loyal_purchases=5, new_days=20)
    assert stricter.summary["types"]["loyal"] == 0 and stricter.summary["types"]["new"] == 0
    fields = analytics_crm.hooks.segment_fields()
    with analytics_crm.reading() as conn:
        assert conn.execute(sa.select(fields["customer_type"]).where(customers.c.id == new)).scalar() == "potential"


def test_customer_types_refuse_inconsistent_thresholds(analytics_crm: Any) -> None:
    with pytest.raises(ValidationError, match="at_risk_days: need new_days ≤ at_risk_days ≤ lost_days"):
        analytics_crm.analytics.customer_types(at_risk_days=400)
    with pytest.raises(ValidationError, match="new_days: must be a whole number of days"):
        analytics_crm.analytics.customer_types(new_days=0)


# --- PCV --------------------------------------------------------------------------------------------------


def test_pcv_compounds_each_purchase_by_hand(analytics_crm: Any, shop: Any, people: Any) -> None:
    an, binh = people(2)
    shop.buy(an, days_ago=365, amount=1_000_000)  # 1,000,000 × 1.1 = 1,100,000
    shop.buy(an, days_ago=0, amount=500_000)  # today: 500,000
    shop.buy(binh, days_ago=730, amount=2_000_000, margin=600_000)  # its own margin: 600,000 × 1.21 = 726,000
    run = analytics_crm.analytics.pcv(as_of=AS_OF, discount_rate="0.10", margin_rate="0.5")
    values = {r["customer_id"]: (r["purchases"], r["pcv_minor"]) for r in analytics_crm.analytics.customers("pcv")}
    assert values == {an: (2, (1_100_000 + 500_000) // 2), binh: (1, 726_000)}
    assert run.summary == {"customers": 2, "total_minor": 800_000 + 726_000}
    flat = analytics_crm.analytics.pcv(as_of=AS_OF, discount_rate=0, margin_rate=1)
    assert flat.summary["total_minor"] == 1_500_000 + 600_000
    shop.buy(an, days_ago=182.25, amount=1_000_000)  # UTC calendar days count: 182 days back
    analytics_crm.analytics.pcv(as_of=AS_OF, discount_rate="0.1", margin_rate=1)
    pcv_an = next(r["pcv_minor"] for r in analytics_crm.analytics.customers("pcv") if r["customer_id"] == an)
    assert pcv_an == 1_100_000 + 500_000 + round(1_000_000 * (Decimal("1.1") ** (Decimal(182) / 365)))


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ("1", "discount_rate: must be at least 0 and below 1"),
        ("1.5", "below 1"),
        ("-0.1", "at least 0"),
        ("abc", "discount_rate: not a number"),
        ("nan", "finite"),
    ],
)
def test_pcv_refuses_bad_discount_rates(analytics_crm: Any, rate: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        analytics_crm.analytics.pcv(discount_rate=rate)


def test_pcv_refuses_bad_margin_and_accepts_percentages(analytics_crm: Any, shop: Any, people: Any) -> None:
    with pytest.raises(ValidationError, match="gross_margin_rate: must be above 0 and at most 1"):
        analytics_crm.analytics.pcv(margin_rate="1.2")
    (an,) = people(1)
    shop.buy(an, days_ago=0, amount=1_000)
    assert analytics_crm.analytics.pcv(as_of=AS_OF, margin_rate="35%").summary["total_minor"] == 350


def test_pcv_without_transactions_is_zero(analytics_crm: Any, people: Any) -> None:
    people(2)
    assert analytics_crm.analytics.pcv(as_of=AS_OF).summary == {"customers": 0, "total_minor": 0}


# --- share of wallet -------------------------------------------------------------------------------------


def test_share_of_wallet_by_hand(analytics_crm: Any, shop: Any, people: Any) -> None:
    an, binh, chau, dung = people(4)
    shop.buy(an, days_ago=10, amount=3_000_000)
    shop.buy(an, days_ago=400, amount=9_000_000)  # outside the 365-day window
    shop.buy(binh, days_ago=10, amount=12_000_000)
    shop.buy(chau, days_ago=10, amount=1_000_000)
    analytics_crm.customers.update(an, attributes={"category_spend": 10_000_000})
    analytics_crm.customers.update(binh, attributes={"category_spend": 8_000_000})  # more than the category: 100%
    analytics_crm.customers.update(dung, attributes={"category_spend": 50_000_000})  # never bought: 0%
    run = analytics_crm.analytics.sow(as_of=AS_OF)
    shares = {
        r["customer_id"]: (r["spend_minor"], r["category_spend_minor"], r["share"], r["source"])
        for r in analytics_crm.analytics.customers("sow")
    }
    assert shares == {
        an: (3_000_000, 10_000_000, 0.3, "attribute"),
        binh: (12_000_000, 8_000_000, 1.0, "attribute"),
        dung: (0, 50_000_000, 0.0, "attribute"),
    }
    assert run.summary["share"] == pytest.approx(15_000_000 / 68_000_000)
    threshold, chances = analytics_crm.analytics.growth_opportunities(low_share="0.5")
    assert threshold == 50_000_000 and [c["customer_id"] for c in chances] == [dung]
    _, chances = analytics_crm.analytics.growth_opportunities(low_share="0.5", min_category_spend=1)
    assert [(c["customer_id"], c["headroom_minor"]) for c in chances] == [(dung, 50_000_000), (an, 7_000_000)]
    with pytest.raises(ValidationError, match="category_spend"):
        analytics_crm.customers.update(chau, attributes={"category_spend": -5})


def test_share_of_wallet_uses_segment_estimates(analytics_crm: Any, shop: Any, people: Any) -> None:
    ids = people(10)
    for i, cid in enumerate(ids, start=1):
        for k in range(i):
            shop.buy(cid, days_ago=10 * i + 3 * k, amount=100_000)
    analytics_crm.analytics.rfm(as_of=AS_OF)
    analytics_crm.analytics.configure(category_spend_estimates={"cant_lose": 2_000_000, "new": 1_000_000})
    analytics_crm.customers.update(ids[0], attributes={"category_spend": 400_000})  # the attribute wins
    run = analytics_crm.analytics.sow(as_of=AS_OF)
    assert run.summary["segments"] == {
        "new": {"customers": 2, "spend_minor": 300_000, "category_spend_minor": 1_400_000, "share": 3 / 14},
        "cant_lose": {"customers": 2, "spend_minor": 1_900_000, "category_spend_minor": 4_000_000, "share": 0.475},
    }
    sources = {r["customer_id"]: r["source"] for r in analytics_crm.analytics.customers("sow")}
    assert sources == {ids[0]: "attribute", ids[1]: "estimate", ids[8]: "estimate", ids[9]: "estimate"}
    with pytest.raises(ValidationError, match="unknown RFM segment 'vip'"):
        analytics_crm.analytics.configure(category_spend_estimates={"vip": 1})


def test_share_of_wallet_without_any_category_spend(analytics_crm: Any, shop: Any, people: Any) -> None:
    (an,) = people(1)
    shop.buy(an, days_ago=3)
    run = analytics_crm.analytics.sow(as_of=AS_OF)
    assert run.summary["customers"] == 0 and run.summary["share"] is None
    assert analytics_crm.analytics.growth_opportunities() == (0, [])


# --- CLV ---------------------------------------------------------------------------------------------------


def cdnow_purchase_days() -> list[tuple[int, datetime, int]]:
    """CDNOW's 2,357-customer cohort as purchase days: (new id, midnight UTC, cents), same-day orders summed.

    The paper counts purchase occasions (days); the CRM counts each transaction, so the source gives one a
    day. Eight of those days cost $0.00 (free CDs): the paper counts them, while a crmkit purchase has a
    positive net amount (so a fully refunded order is not one) — they are given as 1 cent.
    """
    days: dict[tuple[int, str], int] = {}
    for line in cdnow_file("CDNOW_sample.txt").read_text().splitlines():
        _, cid, day, _, dollars = line.split()
        days[(int(cid), day)] = days.get((int(cid), day), 0) + round(Decimal(dollars) * 100)
    return [
        (cid, datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC), max(cents, 1))
        for (cid, day), cents in sorted(days.items())
    ]


def add_customers_fast(crm: Any, ids: list[int]) -> None:
    """Bare customer rows for a big cohort (the data set is the point here, not the customer service)."""
    now = datetime.now(UTC)
    with crm.transaction() as session:
        session.connection().execute(
            customers.insert(),
            [
                {
                    "id": i,
                    "kind": "person",
                    "name": f"CDNOW {i}",
                    "name_key": f"cdnow {i}",
                    "lifecycle_stage": "customer",
                    "attributes": {},
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
        if crm.engine.dialect.name == "postgresql":
            session.connection().exec_driver_sql(f"SELECT setval('customers_id_seq', {max(ids)})")


def test_clv_through_the_crm_reproduces_cdnow(analytics_crm: Any, shop: Any) -> None:
    purchases = cdnow_purchase_days()
    add_customers_fast(analytics_crm, sorted({p[0] for p in purchases}))
    shop.insert_quietly(
        [{"customer_id": c, "occurred_at": at, "amount_minor": cents, "currency": "USD"} for c, at, cents in purchases]
    )
    end_of_calibration = datetime(1997, 9, 30, tzinfo=UTC)  # 39 weeks after 1997-01-01
    run = analytics_crm.analytics.clv(as_of=end_of_calibration, horizon_days=273, discount_rate=0, margin_rate=1)
    fit = run.parameters["bgnbd"]
    assert (round(fit["r"], 3), round(fit["alpha"], 3), round(fit["a"], 3), round(fit["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert run.summary["customers"] == 2357
    row = next(r for r in analytics_crm.analytics.customers("clv", limit=5) if r["customer_id"] == 1)
    # customer 1 of the paper's summary: x = 2, t_x = 30.43, T = 38.86 (weeks)
    model = btyd.BGNBD(fit["r"], fit["alpha"], fit["a"], fit["b"], 0.0, 0)
    x, t_x, T = np.array([2.0]), np.array([213 / 7]), np.array([272 / 7])
    assert row["p_alive"] == pytest.approx(btyd.p_alive(model, x, t_x, T)[0])
    assert row["expected_purchases"] == pytest.approx(btyd.expected_purchases(model, 39, x, t_x, T)[0], rel=1e-9)


def test_clv_values_are_margin_times_spend_times_discounted_purchases(
    analytics_crm: Any, shop: Any, people: Any
) -> None:
    rng = np.random.default_rng(3)
    ids = people(40)
    rows = []
    for cid in ids:
        for _ in range(int(rng.integers(1, 6))):
            rows.append(
                {
                    "customer_id": cid,
                    "occurred_at": AS_OF - timedelta(days=float(rng.uniform(0, 400))),
                    "amount_minor": int(rng.integers(1, 20)) * 50_000,
                    "currency": "VND",
                }
            )
    shop.insert_quietly(rows)
    analytics_crm.analytics.rebuild()
    run = analytics_crm.analytics.clv(as_of=AS_OF, horizon_days=365, discount_rate="0.12", margin_rate="0.4")
    got = analytics_crm.analytics.customers("clv", limit=100)
    assert len(got) == 40
    for row in got:
        assert row["clv_minor"] <= round(0.4 * row["expected_spend_minor"] * row["expected_purchases"]) + 1
        assert 0 < row["p_alive"] <= 1
    assert run.summary["total_minor"] == sum(r["clv_minor"] for r in got)
    assert run.parameters["discount_rate"] == "0.12" and run.parameters["gross_margin_rate"] == "0.4"
    undiscounted = analytics_crm.analytics.clv(as_of=AS_OF, horizon_days=365, discount_rate=0, margin_rate="0.4")
    assert undiscounted.summary["total_minor"] > run.summary["total_minor"]


def test_clv_refuses_histories_it_cannot_model(analytics_crm: Any, shop: Any, people: Any) -> None:
    with pytest.raises(ValidationError, match="no purchases yet"):
        analytics_crm.analytics.clv(as_of=AS_OF)
    an, binh = people(2)
    shop.buy(an, days_ago=10)
    with pytest.raises(ValidationError, match="at least 2 customers, got 1"):
        analytics_crm.analytics.clv(as_of=AS_OF)
    shop.buy(binh, days_ago=10)
    with pytest.raises(ValidationError, match="no customer bought more than once"):
        analytics_crm.analytics.clv(as_of=AS_OF)
    shop.buy(an, days_ago=10)  # a second order the same day: the same purchase occasion
    with pytest.raises(ValidationError, match="no customer bought more than once"):
        analytics_crm.analytics.clv(as_of=AS_OF)
    with pytest.raises(ValidationError, match="horizon_days"):
        analytics_crm.analytics.clv(as_of=AS_OF, horizon_days=0)
