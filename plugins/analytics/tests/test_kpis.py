"""KPIs per month, breakdowns, cohorts, data freshness and CRM activity against a hand-made history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from crmkit import ValidationError
from crmkit_analytics.testing import AS_OF

Y = AS_OF.year


def at(month: int, day: int = 10) -> datetime:
    return datetime(Y, month, day, 9, tzinfo=UTC)


@pytest.fixture
def history(analytics_crm: Any, shop: Any) -> dict[str, int]:
    """Four customers buying across April–June of the AS_OF year (AS_OF is 30 June)."""
    crm = analytics_crm
    an = crm.customers.add(name="Nguyễn Văn An", gender="male", province="Hà Nội", birth_date=date(Y - 30, 1, 1)).id
    binh = crm.customers.add(
        name="Trần Thị Bình", gender="female", province="Hồ Chí Minh", birth_date=date(Y - 50, 1, 1)
    ).id
    chau = crm.customers.add(name="Lê Minh Châu", gender="female", province="Hồ Chí Minh").id
    crm.customers.add(name="Phạm Quốc Dũng", gender="male", province="Đà Nẵng")  # a prospect
    shop.buy(an, at(4), 100_000, category="áo", channel="web")
    shop.buy(an, at(5), 300_000, category="giày", channel="store")
    shop.buy(an, at(6), 200_000, category="áo", channel="web")
    shop.buy(binh, at(4), 400_000, category="giày", channel="store")
    shop.buy(chau, at(5), 500_000, category="áo", channel="web")
    shop.buy(chau, at(5, 20), 100_000, category="áo", channel="web")
    return {"an": an, "binh": binh, "chau": chau}


def test_monthly_kpis_by_hand(analytics_crm: Any, history: dict[str, int]) -> None:
    result = analytics_crm.analytics.kpis(as_of=AS_OF, months=3)
    april, may, june = result["months"]
    assert [m["month"] for m in result["months"]] == [f"{Y}-04", f"{Y}-05", f"{Y}-06"]
    assert (april["acquired"], april["active"], april["orders"], april["revenue_minor"]) == (2, 2, 2, 500_000)
    assert april["retention"] is None and april["churn"] is None  # nobody was active in March
    assert (may["acquired"], may["active"], may["orders"], may["revenue_minor"]) == (1, 2, 3, 900_000)
    assert (may["aov_minor"], may["purchase_frequency"]) == (300_000, 1.5)
    assert (may["retention"], may["churn"]) == (0.5, 0.5)  # of An and Bình (April), only An bought in May
    assert (june["acquired"], june["active"], june["retention"], june["churn"]) == (0, 1, 0.5, 0.5)
    overview = result["overview"]
    assert (overview["customers"], overview["buyers"], overview["prospects"]) == (4, 3, 1)
    assert overview["repeat_purchase_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert (overview["orders"], overview["revenue_minor"], overview["aov_minor"]) == (6, 1_600_000, 266_667)
    assert overview["purchase_frequency"] == 2.0
    assert analytics_crm.analytics.kpis()["overview"]["data_freshness"] == 1.0  # everyone was just created …
    assert overview["data_freshness"] == 0.0  # … and AS_OF is more than 90 days after that
    assert analytics_crm.analytics.kpis(as_of=AS_OF, freshness_days=800)["overview"]["data_freshness"] == 1.0


def test_breakdowns(analytics_crm: Any, history: dict[str, int]) -> None:
    crm = analytics_crm
    by_gender = {r["gender"]: r for r in crm.analytics.breakdown("gender", as_of=AS_OF, months=3)}
    assert {k: (v["customers"], v["buyers"], v["orders"], v["revenue_minor"]) for k, v in by_gender.items()} == {
        "female": (2, 2, 3, 1_000_000),
        "male": (2, 1, 3, 600_000),
    }
    by_age = {r["age_band"]: r["revenue_minor"] for r in crm.analytics.breakdown("age_band", as_of=AS_OF, months=3)}
    assert by_age == {"45-54": 400_000, "25-34": 600_000, "(unknown)": 600_000}
    by_province = [(r["province"], r["customers"]) for r in crm.analytics.breakdown("province", as_of=AS_OF, months=3)]
    assert by_province == [("Hồ Chí Minh", 2), ("Hà Nội", 1), ("Đà Nẵng", 1)]
    by_category = {
        r["category"]: (r["buyers"], r["orders"], r["revenue_minor"])
        for r in crm.analytics.breakdown("category", as_of=AS_OF, months=3)
    }
    assert by_category == {"giày": (2, 2, 700_000), "áo": (2, 4, 900_000)}
    by_channel = {r["channel"]: r["revenue_minor"] for r in crm.analytics.breakdown("channel", as_of=AS_OF, months=3)}
    assert by_channel == {"store": 700_000, "web": 900_000}
    by_month = [(r["period"], r["orders"]) for r in crm.analytics.breakdown("period", as_of=AS_OF, months=2)]
    assert by_month == [(f"{Y}-05", 3), (f"{Y}-06", 1)]
    with pytest.raises(ValidationError, match="by: unknown breakdown 'colour'"):
        crm.analytics.breakdown("colour")


def test_cohort_retention_by_hand(analytics_crm: Any, history: dict[str, int]) -> None:
    cohorts = analytics_crm.analytics.cohorts(as_of=AS_OF, months=3)
    assert cohorts == [
        {"cohort": f"{Y}-04", "customers": 2, "retention": [1.0, 0.5, 0.5]},
        {"cohort": f"{Y}-05", "customers": 1, "retention": [1.0, 0.0]},
    ]


def test_crm_activity_per_employee(analytics_crm: Any, history: dict[str, int]) -> None:
    crm = analytics_crm
    with crm.acting_as("lan"):
        crm.interactions.log(
            history["an"],
            channel="phone",
            direction="outbound",
            occurred_at=at(6, 1),
            employee="lan",
            summary="Gọi chăm sóc",
        )
        crm.interactions.log(
            history["binh"],
            channel="email",
            direction="inbound",
            occurred_at=at(6, 2),
            employee="lan",
            summary="Khiếu nại",
        )
        crm.interactions.log(
            history["binh"],
            channel="email",
            direction="outbound",
            occurred_at=at(6, 3),
            employee="lan",
            summary="Trả lời",
        )
    crm.interactions.log(
        history["chau"], channel="chat", direction="inbound", occurred_at=at(5, 2), employee="minh", summary="Hỏi size"
    )
    rows = crm.analytics.activity(as_of=AS_OF, months=2)
    assert rows == [
        {"month": f"{Y}-05", "employee": "minh", "interactions": 1, "inbound": 1, "outbound": 0, "customers": 1},
        {"month": f"{Y}-06", "employee": "lan", "interactions": 3, "inbound": 1, "outbound": 2, "customers": 2},
    ]


def test_kpis_with_no_transactions(analytics_crm: Any, people: Any) -> None:
    people(2)
    result = analytics_crm.analytics.kpis(as_of=AS_OF, months=2)
    assert result["overview"]["buyers"] == 0 and result["overview"]["aov_minor"] is None
    assert all(m["orders"] == 0 and m["retention"] is None for m in result["months"])
    assert analytics_crm.analytics.cohorts(as_of=AS_OF) == []
    with pytest.raises(ValidationError, match="months: must be between 1 and 120"):
        analytics_crm.analytics.kpis(months=0)
