"""The bad inputs the issue names: each is a ValidationError naming the field, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from crmkit import ValidationError
from crmkit.core import tables as core
from crmkit_sales import models as m

from .conftest import Shop, count

pytestmark = pytest.mark.crmkit_plugins("sales")

WATCHED = [*m.metadata.sorted_tables, core.audit_log]


def _snapshot(shop: Shop) -> dict[str, int]:
    return {table.name: count(shop.crm, table) for table in WATCHED}


def test_each_bad_input_names_its_field_and_writes_nothing(shop: Shop) -> None:
    sales = shop.crm.sales
    vip = sales.pricelists.add(name="Khách VIP", currency="VND", group_tag="vip")
    order = sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 2}])  # 209.000 ₫
    sales.pipelines.add("B2B", [{"name": "Tiếp cận", "probability": "0.1"}])
    other = sales.pipelines.add("Bảo trì", [{"name": "Liên hệ", "probability": "0.2"}])
    deal = sales.deals.add(
        customer_id=shop.an.id, pipeline="B2B", title="Cà phê cho chuỗi quán", amount_minor=50_000_000
    )
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    cases: list[tuple[str, Callable[[], Any], tuple[Any, ...]]] = [
        (
            "quote line for an unknown product",
            lambda: sales.quotes.create(customer_id=shop.an.id, lines=[{"sku": "KHONG-CO", "quantity": 1}]),
            ("lines.1.sku",),
        ),
        (
            "negative quantity",
            lambda: sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": -2}]),
            ("lines.1.quantity",),
        ),
        (
            "currency mismatch between price list and order",
            lambda: sales.orders.place(
                customer_id=shop.an.id, currency="USD", price_list_id=vip.id, lines=[{"sku": "TEA-GIFT", "quantity": 1}]
            ),
            ("currency",),
        ),
        (
            "paying more than the outstanding balance",
            lambda: sales.payments.record(order.id, order.total_minor + 1),
            ("amount_minor",),
        ),
        (
            "moving a deal to a stage of another pipeline",
            lambda: sales.deals.move(deal.id, other.stages[0].id),
            ("stage",),
        ),
        (
            "a contract that ends before it starts",
            lambda: sales.contracts.add(
                customer_id=shop.an.id,
                number="HĐ-1",
                title="Bảo trì",
                value_minor=1,
                currency="VND",
                start_date=date(2026, 3, 1),
                end_date=date(2026, 2, 28),
            ),
            ("end_date",),
        ),
        (
            "an appointment that ends before it starts",
            lambda: sales.appointments.add(
                customer_id=shop.an.id, employee="lan", subject="Gặp", starts_at=at, ends_at=at.replace(hour=8)
            ),
            ("ends_at",),
        ),
        (
            "a price list valid until before it is valid from",
            lambda: sales.pricelists.add(
                name="Sai", currency="VND", valid_from=date(2026, 3, 1), valid_until=date(2026, 1, 1)
            ),
            ("valid_until",),
        ),
        (
            "a report period that ends before it starts",
            lambda: sales.reports.revenue_by_month(since=date(2026, 3, 1), until=date(2026, 2, 1)),
            ("until",),
        ),
    ]
    for what, attempt, path in cases:
        before = _snapshot(shop)
        with pytest.raises(ValidationError) as error:
            attempt()
        found: Any = error.value.errors
        for key in path:
            assert key in found, f"{what}: {path} not in {error.value.errors}"
            found = found[key]
        assert str(path[-1]) in str(error.value), f"{what}: the message does not name the field: {error.value}"
        assert _snapshot(shop) == before, f"{what}: something was written"
    assert sales.orders.get(order.id).paid_minor == 0
    assert sales.deals.get(deal.id).stage_id == sales.pipelines.get("B2B").stages[0].id


def test_control_characters_are_refused_by_field_and_a_newline_only_where_text_has_lines(shop: Shop) -> None:
    sales = shop.crm.sales
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("name", lambda: sales.products.add(sku="CF-NUL", name="Cà phê\x00 sữa", price_minor=1, currency="VND")),
        (
            "notes",
            lambda: sales.orders.place(
                customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}], notes="Giao gấp\x1b[31m"
            ),
        ),
        (
            "shipping_name",
            lambda: sales.orders.place(
                customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}], shipping_name="Nguyễn\nVăn An"
            ),
        ),
        (
            "title",
            lambda: sales.tasks.add(
                customer_id=shop.an.id, employee="lan", title="Gọi\tlại", due_at=datetime(2026, 3, 2, 9, tzinfo=UTC)
            ),
        ),
    ]
    for field, attempt in cases:
        before = _snapshot(shop)
        with pytest.raises(ValidationError, match=f"^{field}: contains a control character \\(U\\+00"):
            attempt()
        assert _snapshot(shop) == before, f"{field}: something was written"
    order = sales.orders.place(
        customer_id=shop.an.id,
        lines=[{"sku": "CF-ROB-500", "quantity": 1}],
        notes="Giao sau 17h\n\tgọi trước",
        shipping_address="12 Lý Thường Kiệt\nHoàn Kiếm",
    )
    assert (order.notes, order.shipping_address) == ("Giao sau 17h\n\tgọi trước", "12 Lý Thường Kiệt\nHoàn Kiếm")
