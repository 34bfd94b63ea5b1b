"""crmkit's plugin contract for QCI, and its privacy promise: no personal data about customers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from crmkit.testing import PluginContract, add_user, customer_tables
from crmkit_qci import periods
from crmkit_qci.models import metadata

RETENTION = {"RE1": 2, "RE2": 3, "RE3": 1, "RE4": None, "RE5": 2}
#: KPIs computed from customers, their interactions and the duplicate detection.
CUSTOMER_KPIS = (
    "customers_with_owner",
    "data_completeness",
    "duplicate_rate",
    "new_customers",
    "satisfaction",
    "response_time",
    "activities_per_employee",
)


class TestQciContract(PluginContract):
    plugin = "qci"

    def populate(self, crm: Any, customer_id: int) -> None:
        crm.qci.assessments.record(RETENTION)
        crm.qci.costs.add("2025-03", 10_000_000, kind="acquisition")
        crm.qci.generate_plan(areas=1)
        # data the KPIs count about this customer: a rated inbound contact this month
        crm.interactions.log(customer_id, "phone", direction="inbound", rating=4, employee="ngoc.do")

    def permission_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        return {
            "qci.assess": lambda crm, cid: crm.qci.assessments.record(RETENTION),
            "qci.read": lambda crm, cid: crm.qci.scorecard(),
            "qci.plan": lambda crm, cid: crm.qci.generate_plan(areas=1),
        }

    def scoped_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        """QCI lists no customer: its scorecard, KPIs and report aggregate. ``counted`` gives the ids of the
        customers those aggregates count (by the same scope predicate), so the kit checks the scope through it;
        the customer KPIs themselves are run as each user to show no contact detail (their scoped values are
        checked in test_permissions.py; the whole scorecard is left out here only because it is slow)."""
        return {
            "counted": lambda crm, cid: crm.qci.counted(periods.current_month(crm)),
            "kpis": lambda crm, cid: crm.qci.kpis(periods.current_month(crm), keys=list(CUSTOMER_KPIS)),
        }


def _rows(crm: Any) -> dict[str, int]:
    with crm.reading() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
        }


def test_no_table_references_a_customer() -> None:
    assert customer_tables(metadata) == []
    employee_columns = {c.name for t in metadata.sorted_tables for c in t.columns} & {
        "assessor",
        "owner",
        "created_by",
        "imported_by",
        "recorded_by",
    }
    assert employee_columns == {"assessor", "owner", "created_by", "imported_by", "recorded_by"}


def test_export_says_so_and_erase_leaves_the_plan_alone(qci_crm: Any) -> None:
    crm = qci_crm
    add_user(crm, "lan.nguyen")
    customer = crm.customers.add(name="Đặng Thị Mai", email="mai@example.vn", owner="lan.nguyen")
    crm.interactions.log(customer.id, "phone", rating=2, employee="ngoc.do")
    TestQciContract().populate(crm, customer.id)
    before = _rows(crm)
    assert before["qci_assessments"] == 1 and before["qci_actions"] >= 1 and before["qci_costs"] == 1

    exported = crm.customers.export_data(customer.id)
    assert "no personal data about customers" in exported["qci"]["note"]

    crm.customers.erase(customer.id)
    assert crm.customers.get(customer.id).status == "erased"
    assert _rows(crm) == before  # nothing of QCI's was about her
