"""Unmerge recomputes both customers' aggregates from their purchases as they are after it: the restored customer's
orders count for it again, and the kept customer keeps only its own and those placed since the merge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from crmkit_analytics.models import customer_value

PRICE = 120_000


def totals(crm: Any) -> dict[int, tuple[int, int]]:
    cv = customer_value.c
    with crm.reading() as conn:
        rows = conn.execute(sa.select(cv.customer_id, cv.purchase_count, cv.total_minor).order_by(cv.customer_id))
        return {customer_id: (count, total) for customer_id, count, total in rows}


def test_unmerge_recomputes_both_customers_aggregates(crm_factory: Callable[..., Any]) -> None:
    crm = crm_factory(plugins=["analytics", "sales"])
    crm.sales.products.add(sku="CF-500", name="Cà phê Robusta 500g", price_minor=PRICE, currency="VND", tax_rate="0%")
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    twin = crm.customers.add(name="Nguyen Van An", phone="0912345678")

    def buy(customer_id: int, quantity: int) -> None:
        crm.sales.orders.place(customer_id=customer_id, lines=[{"sku": "CF-500", "quantity": quantity}])

    buy(an.id, 1)
    buy(twin.id, 2)
    buy(twin.id, 3)
    merge = crm.customers.merge_many([(an.id, twin.id)])[0]
    assert totals(crm) == {an.id: (3, 6 * PRICE)}
    buy(an.id, 4)  # since the merge: the kept customer's

    crm.customers.unmerge(merge.id)

    assert totals(crm) == {an.id: (2, 5 * PRICE), twin.id: (2, 5 * PRICE)}
    crm.analytics.rebuild()  # from scratch: the same figures
    assert totals(crm) == {an.id: (2, 5 * PRICE), twin.id: (2, 5 * PRICE)}
