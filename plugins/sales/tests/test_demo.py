"""The demo: realistic Vietnamese sales data for the demo customers, and the overview sections."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit_sales import models as m

from .conftest import count

pytestmark = pytest.mark.crmkit_plugins("sales")


def test_demo_populates_every_area_and_summarises_it(crm: Any) -> None:
    stages = ("customer", "distributor", "retailer", "lead")
    ids = [crm.customers.add(name=f"Khách demo {n}", lifecycle_stage=stages[n % 4]).id for n in range(12)]
    crm.hooks.demo_populate(ids, 7)
    for table in (
        m.products,
        m.price_lists,
        m.price_list_items,
        m.pipelines,
        m.deals,
        m.deal_history,
        m.quotes,
        m.orders,
        m.order_lines,
        m.payments,
        m.contracts,
        m.appointments,
        m.tasks,
    ):
        assert count(crm, table) > 0, table.name
    skus = {p.sku for p in crm.sales.products.list()}
    assert {"CF-ROB-500", "NM-PQ-500", "GAO-ST25-5", "DV-BT-GIO"} <= skus
    assert {p.currency for p in crm.sales.products.list()} == {"VND"}
    trade = crm.sales.pricelists.get("Giá đại lý & bán lẻ")
    distributor = ids[1]
    assert crm.sales.pricelists.price_for(distributor, "NM-PQ-T12").price_list_id == trade.id
    assert crm.sales.pricelists.price_for(ids[0], "NM-PQ-T12").price_list_id is None

    sections = crm.hooks.demo_overview()
    assert set(sections) >= {"Sales pipeline by stage", "Revenue by month", "Top products", "Overdue tasks"}
    assert sections["Revenue by month"] and all(
        line.endswith("orders)") and "₫" in line for line in sections["Revenue by month"]
    )
    assert sections["Top products"][0].startswith("1. ")
    assert sections["Sales pipeline by stage"][0].startswith("Bán hàng B2B · Tiếp cận")
