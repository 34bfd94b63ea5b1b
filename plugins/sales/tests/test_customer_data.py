"""The plugin contract, and the sales side of customer 360, export, erasure and merge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crmkit.core.types import utcnow
from crmkit.testing import PluginContract
from crmkit_sales import models as m

from .conftest import Shop, make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")


def _fill(crm: Any, customer_id: int) -> dict[str, Any]:
    """One row about the customer in every sales table (with personal free text where a table has some)."""
    sales = crm.sales
    if not sales.products.list():
        make_shop(crm)
    if not sales.pipelines.list():
        sales.pipelines.add("B2B", [{"name": "Tiếp cận", "probability": "0.1"}])
    deal = sales.deals.add(customer_id=customer_id, pipeline="B2B", title="Cà phê văn phòng", amount_minor=20_000_000,
                           expected_close=crm.today() + timedelta(days=20))
    sales.deals.move(deal.id, "Won")
    quote = sales.quotes.create(customer_id=customer_id, deal_id=deal.id, lines=[{"sku": "CF-ROB-500", "quantity": 2}])
    sales.quotes.accept(sales.quotes.send(quote.id).id)
    order = sales.quotes.place_order(quote.id, shipping_name="Chị Hoa", shipping_phone="0912 345 678",
                                     shipping_address="5 Nguyễn Huệ, Quận 1", notes="Gọi trước khi giao")
    sales.payments.record(order.id, order.total_minor, reference="CK Nguyen Thi Hoa")
    sales.orders.refund(order.id, 10_000, reason="Chị Hoa báo thiếu hàng")
    contract = sales.contracts.add(customer_id=customer_id, order_id=order.id, number=f"HĐ-{customer_id}",
                                   title="Hợp đồng với chị Hoa", start_date=crm.today() - timedelta(days=10),
                                   end_date=crm.today() + timedelta(days=355), value_minor=order.total_minor,
                                   currency="VND", notes="Chị Hoa thích giao buổi sáng")
    appointment = sales.appointments.add(customer_id=customer_id, employee="lan.nguyen", subject="Thử cà phê",
                                         starts_at=utcnow() + timedelta(days=2))
    sales.tasks.add(customer_id=customer_id, employee="lan.nguyen", title="Gọi lại", due_at=utcnow() + timedelta(days=1))
    open_deal = sales.deals.add(customer_id=customer_id, pipeline="B2B", title="Gạo cho bếp ăn", amount_minor=5_000_000)
    return {"deal": deal, "order": order, "contract": contract, "appointment": appointment, "open_deal": open_deal}


class TestSalesContract(PluginContract):
    plugin = "sales"

    def populate(self, crm: Any, customer_id: int) -> None:
        _fill(crm, customer_id)


def test_profile_export_erase_and_merge(shop: Shop) -> None:
    crm = shop.crm
    made = _fill(crm, shop.an.id)
    sections = crm.customers.profile(shop.an.id).sections["sales"]
    assert [d["title"] for d in sections["open_deals"]] == ["Gạo cho bếp ăn"]
    assert sections["last_orders"][0]["number"] == made["order"].number
    assert sections["outstanding"] == {} and sections["total_spend"] == {"VND": "199.000 ₫"}
    assert [c["number"] for c in sections["active_contracts"]] == [made["contract"].number]
    assert sections["next_appointment"]["id"] == made["appointment"].id

    exported = crm.customers.export_data(shop.an.id)["sales"]
    for table in m.metadata.sorted_tables:
        if table.name in ("sales_products", "sales_price_lists", "sales_price_list_items", "sales_pipelines",
                          "sales_stages"):
            assert table.name not in exported
        else:
            assert exported[table.name], f"export misses {table.name}"
    assert exported["sales_payments"][0]["reference"] == "CK Nguyen Thi Hoa"

    other = crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.com")
    _fill(crm, other.id)
    crm.customers.merge(shop.an.id, other.id)
    assert len(crm.sales.orders.list(customer_id=shop.an.id)) == 2
    assert crm.sales.orders.list(customer_id=other.id) == []
    assert len(crm.sales.deals.list(customer_id=shop.an.id)) == 4
    assert len(crm.sales.contracts.list(customer_id=shop.an.id)) == 2

    crm.customers.erase(shop.an.id)
    after = crm.customers.export_data(shop.an.id)["sales"]
    for gone in ("sales_deals", "sales_deal_history", "sales_quotes", "sales_quote_lines", "sales_appointments",
                 "sales_tasks"):
        assert after[gone] == [], gone
    assert len(after["sales_orders"]) == 2 and len(after["sales_order_lines"]) == 2
    kept = after["sales_orders"][0]
    assert (kept["total_minor"], kept["paid_minor"], kept["refunded_minor"]) == (209_000, 209_000, 10_000)
    assert all(kept[f] is None for f in ("shipping_name", "shipping_phone", "shipping_address", "notes", "quote_id",
                                         "deal_id"))
    assert all(p["reference"] is None for p in after["sales_payments"])
    assert all(r["reason"] is None for r in after["sales_refunds"])
    assert all(c["notes"] is None and "Hoa" not in c["title"] for c in after["sales_contracts"])
    assert "Hoa" not in repr(after)
    assert set(crm.registry.infos["sales"].plugin.retained_tables) >= {"sales_orders", "sales_contracts"}
