"""crmkit's plugin contract for QCI, and its privacy promise: no personal data about customers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crmkit.testing import PluginContract, customer_tables
from crmkit_qci.models import metadata


class TestQciContract(PluginContract):
    plugin = "qci"

    def populate(self, crm: Any, customer_id: int) -> None:
        crm.qci.assessments.record({"RE1": 2, "RE2": 3, "RE3": 1, "RE4": None, "RE5": 2})
        crm.qci.costs.add("2025-03", 10_000_000, kind="acquisition")
        crm.qci.generate_plan(areas=1)


def _rows(crm: Any) -> dict[str, int]:
    with crm.reading() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


def test_no_table_references_a_customer() -> None:
    assert customer_tables(metadata) == []
    employee_columns = {c.name for t in metadata.sorted_tables for c in t.columns} & {"assessor", "owner", "created_by",
                                                                                    "imported_by", "recorded_by"}
    assert employee_columns == {"assessor", "owner", "created_by", "imported_by", "recorded_by"}


def test_export_says_so_and_erase_leaves_the_plan_alone(qci_crm: Any) -> None:
    crm = qci_crm
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
