"""QCI with crmkit-service installed: the customer-experience KPIs read case data (complaints in the last 90 days,
the CSAT average) through the ``crmkit_service_case_stats`` hook only; without a case source they say what to
install."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from crmkit.testing import add_user

CASE_KPIS = ["complaint_rate", "case_satisfaction"]


@pytest.fixture
def service_crm(crm_factory: Any) -> Any:
    return crm_factory(plugins=["qci", "service"])


def _by_key(measures: Any) -> dict[str, Any]:
    return {m.key: m for m in measures}


def _case(crm: Any, customer_id: int, category: str | None, score: int | None) -> None:
    case = crm.service.open(customer_id, "Máy lọc nước rò rỉ", channel="phone", category=category, assignee=None)
    crm.service.set_status(case.id, "resolved", resolution="Thay gioăng")
    if score is not None:
        crm.service.csat.record(case.id, score)


def test_case_kpis_count_complaints_and_csat_of_the_last_90_days(service_crm: Any) -> None:
    crm = service_crm
    an = crm.customers.add(name="Nguyễn Thị Ánh")
    binh = crm.customers.add(name="Trần Văn Bình")
    crm.customers.add(name="Lê Chi")
    crm.customers.add(name="Phạm Dũng")
    _case(crm, an.id, "complaint", 2)
    _case(crm, an.id, "question", 4)  # Ánh's average: 3
    _case(crm, binh.id, "question", 5)
    m = _by_key(crm.qci.kpis(keys=CASE_KPIS))
    assert (m["complaint_rate"].value, m["complaint_rate"].detail) == (
        Decimal("0.2500"),
        "1 of 4 customers complained in the last 90 days",
    )
    assert m["complaint_rate"].display() == "25.0%"
    assert (m["case_satisfaction"].value, m["case_satisfaction"].detail) == (
        Decimal("4.00"),
        "2 customers answered a case survey",
    )
    assert m["case_satisfaction"].source == "case data (crmkit_service_case_stats)"


def test_case_kpis_count_only_the_readers_customers(service_crm: Any) -> None:
    crm = service_crm
    add_user(crm, "lan", grants={"qci.read": "own"})
    mine = crm.customers.add(name="Của Lan", owner="lan")
    other = crm.customers.add(name="Của người khác")
    _case(crm, mine.id, "question", 5)
    _case(crm, other.id, "complaint", 1)
    lan = crm.as_user("lan")
    m = _by_key(lan.qci.kpis(keys=CASE_KPIS))
    assert m["complaint_rate"].detail == "0 of 1 customers complained in the last 90 days"
    assert m["case_satisfaction"].value == Decimal("5.00")


def test_no_answered_survey_is_no_data(service_crm: Any) -> None:
    crm = service_crm
    an = crm.customers.add(name="Nguyễn Thị Ánh")
    _case(crm, an.id, "complaint", None)
    m = _by_key(crm.qci.kpis(keys=CASE_KPIS))
    assert m["complaint_rate"].value == Decimal("1.0000")
    assert m["case_satisfaction"].display() == (
        "no data: no answered satisfaction survey of a case opened in the last 90 days"
    )


def test_without_a_case_source_the_kpis_say_what_to_install(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["qci"])
    crm.customers.add(name="Nguyễn Thị Ánh")
    m = _by_key(crm.qci.kpis(keys=CASE_KPIS))
    assert m["complaint_rate"].display() == (
        "not available: install crmkit-service (any plugin implementing crmkit_service_case_stats works)"
    )
