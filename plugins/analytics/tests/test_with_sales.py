"""End to end with the real sales plugin: its orders feed the aggregates inside the order transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit.core.types import utcnow
from crmkit_analytics.models import customer_value


@pytest.fixture
def store(crm_factory: Any) -> Any:
    crm = crm_factory(plugins=["sales", "analytics"])
    crm.sales.products.add(
        sku="CF-ROB-500",
        name="Cà phê Robusta 500g",
        unit="gói",
        category="Cà phê",
        price_minor=100_000,
        currency="VND",
        cost_minor=60_000,
        tax_rate="0",
    )
    return crm


def aggregate(crm: Any, customer_id: int) -> tuple[Any, ...] | None:
    cv = customer_value.c
    with crm.reading() as conn:
        row = conn.execute(sa.select(cv.purchase_count, cv.total_minor).where(cv.customer_id == customer_id)).first()
    return None if row is None else tuple(row)


def test_sales_orders_drive_aggregates_and_measures(store: Any) -> None:
    crm = store
    an = crm.customers.add(name="Nguyễn Văn An").id
    binh = crm.customers.add(name="Trần Thị Bình").id
    now = utcnow()
    first = crm.sales.orders.place(
        customer_id=an, lines=[{"sku": "CF-ROB-500", "quantity": 2}], placed_at=now - timedelta(days=40)
    )
    crm.sales.orders.place(
        customer_id=an, lines=[{"sku": "CF-ROB-500", "quantity": 1}], placed_at=now - timedelta(days=5)
    )
    other = crm.sales.orders.place(
        customer_id=binh, lines=[{"sku": "CF-ROB-500", "quantity": 3}], placed_at=now - timedelta(days=2)
    )
    assert aggregate(crm, an) == (2, 300_000)  # kept current by crmkit_order_placed, no rebuild
    crm.sales.payments.record(first.id, 200_000, method="cash")
    crm.sales.orders.refund(first.id, 50_000, reason="một gói bị hỏng")
    assert aggregate(crm, an) == (2, 250_000)
    crm.sales.orders.cancel(other.id, reason="khách đổi ý")
    assert aggregate(crm, binh) is None  # a cancelled order is no purchase
    before = aggregate(crm, an)
    assert crm.analytics.rebuild() == 1 and aggregate(crm, an) == before
    run = crm.analytics.rfm()
    assert run.currency == "VND" and run.summary["customers"] == 1
    pcv = crm.analytics.pcv(discount_rate=0, margin_rate="0.5")
    # sales knows the cost: its margin (price − cost, scaled down by the refunded share) is used, not the rate
    assert pcv.summary["total_minor"] == (200_000 - 120_000) - (80_000 * 50_000) // 200_000 + (100_000 - 60_000)
    kinds = {
        r["customer_id"]: r["customer_type"]
        for r in (crm.analytics.customer_types(), crm.analytics.customers("types"))[1]
    }
    assert kinds == {an: "new", binh: "prospect"}
