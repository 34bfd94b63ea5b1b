"""KPIs computed from the CRM: values on hand-made data, "no data" in empty periods, "not available" without a source."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from crmkit_qci import periods

from .conftest import at, buy, people, staff


def _by_key(measures: list[Any]) -> dict[str, Any]:
    return {m.key: m for m in measures}


def _interactions(crm: Any) -> tuple[int, int, int]:
    """March 2025 (Asia/Ho_Chi_Minh): three inbound contacts, replies after 6 h and 48 h, one never answered."""
    staff(crm, "lan.nguyen")
    a = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", city="Hà Nội", owner="lan.nguyen").id
    b = crm.customers.add(name="Trần Thị Bình", phone="0912 345 678").id
    c = crm.customers.add(name="Lê Minh Châu").id
    crm.customers.set_consent(a, "email", True, source="web form")
    log = crm.interactions.log
    log(
        a,
        "phone",
        direction="inbound",
        occurred_at=at("2025-03-10", 9),
        rating=4,
        employee="ngoc.do",
        outcome="escalated",
    )
    log(a, "email", direction="outbound", occurred_at=at("2025-03-10", 15), employee="lan.nguyen", outcome="follow-up")
    log(a, "phone", direction="outbound", occurred_at=at("2025-03-12", 9), employee="lan.nguyen", outcome="Resolved")
    log(
        b,
        "chat",
        direction="inbound",
        occurred_at=at("2025-03-15", 8),
        rating=2,
        employee="ngoc.do",
        outcome="resolved",
    )
    log(b, "email", direction="outbound", occurred_at=at("2025-03-17", 8), employee="ngoc.do")
    log(c, "email", direction="inbound", occurred_at=at("2025-03-20", 8), employee="tuan.bui")
    log(c, "phone", direction="inbound", occurred_at=at("2025-02-20", 8), rating=5, employee="tuan.bui")
    # 18:00 UTC on 31 March is 01:00 on 1 April in Hà Nội: April's, not March's
    log(c, "phone", direction="inbound", occurred_at=at("2025-03-31", 18), rating=1, employee="tuan.bui")
    return a, b, c


def test_customer_experience_process_and_people_kpis(qci_crm: Any) -> None:
    _interactions(qci_crm)
    m = _by_key(qci_crm.qci.kpis("2025-03"))
    assert (m["satisfaction"].value, m["satisfaction"].detail, m["satisfaction"].display()) == (
        Decimal("3.00"),
        "2 ratings",
        "3.00 / 5",
    )
    assert (m["response_time"].value, m["response_time"].detail) == (
        Decimal("27.0"),
        "2 of 3 inbound contacts answered",
    )
    assert m["answered_within_24h"].value == Decimal("0.3333") and m["answered_within_24h"].display() == "33.3%"
    # a: resolved 48 h later; b: resolved at first contact (0 h); c: never → (48 + 0) / 2
    assert (m["resolution_time"].value, m["resolution_time"].detail) == (Decimal("24.0"), "2 of 3 cases resolved")
    assert (m["activities_per_employee"].value, m["activities_per_employee"].detail) == (
        Decimal("2.00"),
        "6 interactions by 3 employees",
    )
    assert all(x.period == "2025-03" and x.status == "ok" for x in (m["satisfaction"], m["response_time"]))
    april = _by_key(qci_crm.qci.kpis("2025-04", keys=["satisfaction"]))
    assert (april["satisfaction"].value, april["satisfaction"].detail) == (Decimal("1.00"), "1 rating")


def test_a_period_without_data_says_no_data_never_zero(qci_crm: Any) -> None:
    _interactions(qci_crm)
    m = _by_key(qci_crm.qci.kpis("2024-01"))
    for key, reason in {
        "satisfaction": "no rated interaction in 2024-01",
        "response_time": "no inbound interaction in 2024-01",
        "answered_within_24h": "no inbound interaction in 2024-01",
        "resolution_time": "no inbound interaction in 2024-01",
        "activities_per_employee": "no interaction in 2024-01 names an employee",
        "new_customers": "no customer existed by the end of 2024-01",
    }.items():
        assert (m[key].status, m[key].value, m[key].reason) == ("no data", None, reason), key
    assert m["satisfaction"].display() == "no data: no rated interaction in 2024-01"


def test_data_quality_kpis_read_the_data_as_it_is_now(qci_crm: Any) -> None:
    _interactions(qci_crm)
    qci_crm.customers.add(name="Nguyen Van An", email="an@example.vn")  # the same e-mail typed again: a duplicate
    m = _by_key(qci_crm.qci.kpis("2025-03"))
    # an: contact, place, owner, consent = 4; Bình: phone = 1; Châu: 0; the duplicate: e-mail = 1 → 6 / 16
    assert (m["data_completeness"].value, m["data_completeness"].detail) == (
        Decimal("0.3750"),
        "4 customers: contact 75%, place 25%, owner 25%, consent 25%",
    )
    assert m["data_completeness"].period.startswith("now (")
    assert (m["duplicate_rate"].value, m["duplicate_rate"].detail) == (
        Decimal("0.5000"),
        "1 possible duplicate pair involving 2 customers",
    )
    assert m["customers_with_owner"].value == Decimal("0.2500")
    assert m["data_freshness"].value == Decimal("1.0000")  # every record was just created


def test_new_customers_and_cost_per_acquisition(qci_crm: Any) -> None:
    month = periods.current_month(qci_crm)
    people(qci_crm, 3)
    m = _by_key(qci_crm.qci.kpis(month))
    assert (m["new_customers"].value, m["new_customers"].status) == (3, "ok")
    assert m["cost_per_acquisition"].status == "not available"
    assert m["cost_per_acquisition"].reason == (
        f"install crmkit-campaigns, or record acquisition costs (crmkit qci costs add {month.label} AMOUNT --kind acquisition)"
    )
    qci_crm.qci.costs.add(month.label, 3_000_000, kind="acquisition", note="Quảng cáo Zalo")
    qci_crm.qci.costs.add(month.label, 9_000_000, kind="service")  # not an acquisition cost
    cpa = _by_key(qci_crm.qci.kpis(month, keys=["cost_per_acquisition"]))["cost_per_acquisition"]
    assert (cpa.value, cpa.currency, cpa.display()) == (1_000_000, "VND", "1.000.000 ₫")
    assert cpa.detail == "recorded 3.000.000 ₫ for 3 new customers"


def test_without_the_source_plugins_kpis_are_not_available(qci_crm: Any) -> None:
    m = _by_key(qci_crm.qci.kpis("2025-03"))
    for key in (
        "retention_rate",
        "churn_rate",
        "win_backs",
        "purchases_per_buyer",
        "multi_category_share",
        "gross_margin_rate",
        "revenue_per_employee",
        "cost_per_order",
    ):
        assert m[key].status == "not available", key
        assert m[key].reason.startswith("install crmkit-sales (its orders are the purchases"), key
        assert m[key].value is None
    for key in ("share_of_wallet", "analysis_age"):
        assert (m[key].status, m[key].reason) == ("not available", "install crmkit-analytics")
    for key in ("campaign_roi", "campaign_lift"):
        assert (m[key].status, m[key].reason) == ("not available", "install crmkit-campaigns")
    assert m["campaign_roi"].display() == "not available: install crmkit-campaigns"


def _shop(crm: Any) -> list[int]:
    x1, x2, x3, x4, x5 = people(crm, 5)
    for who in (x1, x2, x3, x4):
        buy(crm, who, at("2025-02-14"), 120_000)
    buy(crm, x1, at("2025-03-03"), 200_000, margin=60_000, category="Cà phê")
    buy(crm, x1, at("2025-03-20"), 100_000, category="Gạo")
    buy(crm, x2, at("2025-03-08"), 300_000, margin=90_000, category="Cà phê")
    buy(crm, x2, at("2025-03-09"), 1_999, currency="USD")
    buy(crm, x3, at("2025-03-11"), 0)  # a fully refunded order is not a purchase
    buy(crm, x5, at("2024-06-01"), 80_000)
    buy(crm, x5, at("2025-03-25"), 150_000)  # back after nine months: won back
    crm.interactions.log(x1, "phone", occurred_at=at("2025-03-05"), employee="lan.nguyen")
    crm.interactions.log(
        x2, "zalo" if "zalo" in crm.channels else "chat", occurred_at=at("2025-03-06"), employee="minh.tran"
    )
    return [x1, x2, x3, x4, x5]


def test_purchase_kpis_from_any_purchase_source(shop_crm: Any) -> None:
    _shop(shop_crm)
    shop_crm.qci.costs.add("2025-03", 1_000_000, kind="service")
    m = _by_key(shop_crm.qci.kpis("2025-03"))
    assert (m["retention_rate"].value, m["retention_rate"].detail) == (
        Decimal("0.5000"),
        "2 of 4 buyers of 2025-02 bought again",
    )
    assert m["churn_rate"].value == Decimal("0.5000")
    assert (m["win_backs"].value, m["win_backs"].display()) == (1, "1")
    assert (m["purchases_per_buyer"].value, m["purchases_per_buyer"].detail) == (
        Decimal("1.67"),
        "5 purchases by 3 buyers",
    )
    assert (m["multi_category_share"].value, m["multi_category_share"].detail) == (
        Decimal("0.5000"),
        "1 of 2 buyers bought in 2+ categories",
    )
    # VND only: 200.000 + 100.000 + 300.000 + 150.000 over two employees named on March's interactions
    assert (m["revenue_per_employee"].value, m["revenue_per_employee"].display()) == (375_000, "375.000 ₫")
    assert m["gross_margin_rate"].value == Decimal("0.3000")
    assert (m["cost_per_order"].value, m["cost_per_order"].detail) == (200_000, "recorded 1.000.000 ₫ for 5 purchases")
    assert m["retention_rate"].source == "purchases (crmkit_value_transactions)"


def test_purchase_kpis_say_what_the_source_lacks(shop_crm: Any) -> None:
    (x1,) = people(shop_crm, 1)
    buy(shop_crm, x1, at("2025-03-03"))
    m = _by_key(shop_crm.qci.kpis("2025-03"))
    assert m["multi_category_share"].status == "not available"
    assert m["multi_category_share"].reason.startswith("the purchase source gives no product category")
    assert m["gross_margin_rate"].reason.startswith("the purchase source gives no margin")
    assert (m["retention_rate"].status, m["retention_rate"].reason) == (
        "no data",
        "nobody bought in the previous period (2025-02): retention needs buyers to keep",
    )
    assert (m["cost_per_order"].status, m["cost_per_order"].reason) == (
        "not available",
        "install crmkit-campaigns, or record costs (crmkit qci costs add 2025-03 AMOUNT)",
    )
    quiet = _by_key(shop_crm.qci.kpis("2025-01"))
    assert (quiet["purchases_per_buyer"].status, quiet["purchases_per_buyer"].reason) == (
        "no data",
        "no purchase in 2025-01",
    )
    assert (quiet["revenue_per_employee"].status, quiet["revenue_per_employee"].reason) == (
        "no data",
        "no purchase in VND in 2025-01",
    )


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("2025-03", "2025-03", "2025-02-28T17:00:00+00:00", "2025-03-31T17:00:00+00:00"),
        ("2025-q1", "2025-Q1", "2024-12-31T17:00:00+00:00", "2025-03-31T17:00:00+00:00"),
        ("2025", "2025", "2024-12-31T17:00:00+00:00", "2025-12-31T17:00:00+00:00"),
    ],
)
def test_periods_are_local_days(text: str, label: str, start: str, end: str) -> None:
    period = periods.parse(text)
    assert (period.label, period.start.isoformat(), period.end.isoformat()) == (label, start, end)
    assert periods.parse("2025-01").previous().label == "2024-12"
    assert periods.parse("2025-Q1").previous().label == "2024-Q4"
    assert periods.parse("2025-Q2").month_labels() == ["2025-04", "2025-05", "2025-06"]


@pytest.mark.parametrize("bad", ["2025-13", "03/2025", "2025-Q5", ""])
def test_a_bad_period_is_refused(bad: str) -> None:
    from crmkit import ValidationError

    with pytest.raises(ValidationError, match="period: "):
        periods.parse(bad)
