"""Orders, payments, refunds and cancellation, and the hooks other plugins build on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import Plugin, PluginError, ValidationError, hookimpl
from crmkit.core import tables as core
from crmkit.purchases import purchases
from crmkit_sales import models as m

from .conftest import Recorder, Shop, count, make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")


def test_order_payments_refunds_and_the_hooks_they_fire(recorded: tuple[Shop, Recorder]) -> None:
    shop, recorder = recorded
    sales = shop.crm.sales
    order = sales.place_order(
        customer_id=shop.an.id,
        owner="lan.nguyen",
        lines=[{"sku": "CF-ROB-500", "quantity": 4}, {"sku": "GAO-ST25-5", "quantity": 2}],
    )  # 418.000 + 388.500
    assert (order.number, order.status, order.total_minor) == ("SO-000001", "placed", 806_500)
    name, placed = recorder.calls[-1]
    assert name == "order_placed" and placed["order"] == order
    line = placed["order"].lines[0]
    assert (
        line.product_id,
        line.sku,
        line.category,
        line.quantity,
        line.unit_price_minor,
        line.tax_rate,
        line.total_minor,
    ) == (1, "CF-ROB-500", "Cà phê", Decimal(4), 95_000, Decimal("0.1"), 418_000)

    payment = sales.payments.record(order.id, 300_000, method="momo", reference="MOMO-889911")
    name, paid = recorder.calls[-1]
    assert name == "payment_recorded" and paid["payment"] == payment
    assert (paid["order"].paid_minor, paid["order"].outstanding_minor, paid["order"].paid_in_full) == (
        300_000,
        506_500,
        False,
    )
    sales.payments.record(order.id, 506_500, method="bank_transfer")
    assert sales.orders.get(order.id).paid_in_full
    assert sales.payments.outstanding(shop.an.id) == {}
    with pytest.raises(ValidationError, match="outstanding balance 0 ₫"):
        sales.payments.record(order.id, 1)

    sales.orders.ship(order.id)
    delivered = sales.orders.deliver(order.id)
    assert delivered.status == "delivered" and delivered.shipped_at <= delivered.delivered_at
    with pytest.raises(ValidationError, match="it is delivered"):
        sales.orders.ship(order.id)
    with pytest.raises(ValidationError, match="cancel"):
        sales.orders.cancel(order.id)

    refund = sales.orders.refund(order.id, 95_000, reason="Một gói bị rách")
    name, refunded = recorder.calls[-1]
    assert name == "order_refunded" and refunded["refund"] == refund
    assert (refunded["order"].refunded_minor, refunded["order"].status) == (95_000, "delivered")
    with pytest.raises(ValidationError, match="more than the 711.500 ₫ paid and not yet refunded"):
        sales.orders.refund(order.id, 711_501)
    sales.orders.refund(order.id, 711_500)
    final = sales.orders.get(order.id)
    assert (final.status, final.refunded_minor, final.outstanding_minor) == ("refunded", 806_500, 0)
    assert [r.amount_minor for r in sales.orders.refunds(order.id)] == [95_000, 711_500]
    assert [p.method for p in sales.payments.list(customer_id=shop.an.id)] == ["bank_transfer", "momo"]

    unpaid = sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "DV-BT-GIO", "quantity": 2}])
    sales.payments.record(unpaid.id, 100_000)
    with pytest.raises(ValidationError, match="refund it instead of cancelling"):
        sales.orders.cancel(unpaid.id)
    sales.orders.refund(unpaid.id, 100_000)
    cancelled = sales.orders.cancel(unpaid.id, reason="Khách đổi lịch")
    assert recorder.names()[-1] == "order_cancelled" and cancelled.outstanding_minor == 0
    with pytest.raises(ValidationError, match="cancelled"):
        sales.payments.record(unpaid.id, 1_000)
    assert recorder.names().count("order_placed") == 2


class Boom:
    """A plugin whose order hook fails, as a broken loyalty plugin would."""

    @hookimpl
    def crmkit_order_placed(self, order: Any) -> None:
        raise RuntimeError(f"ledger unavailable for {order.number}")


def test_a_failing_order_placed_hook_rolls_the_whole_order_back(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["sales", Plugin(name="boom", hooks=(Boom(),), requires=("sales",))])
    shop = make_shop(crm)
    audit_before = count(crm, core.audit_log)
    with pytest.raises(PluginError) as error:
        crm.sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}])
    assert "plugin boom" in str(error.value) and "crmkit_order_placed" in str(error.value)
    assert "ledger unavailable for SO-000001" in str(error.value)
    assert (count(crm, m.orders), count(crm, m.order_lines), count(crm, core.audit_log)) == (0, 0, audit_before)


def test_value_transactions_segment_fields_and_order_listing(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["sales"])
    shop = make_shop(crm)
    sales = crm.sales
    early = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    first = sales.orders.place(customer_id=shop.an.id, placed_at=early, lines=[{"sku": "CF-ROB-500", "quantity": 10}])
    sales.payments.record(first.id, first.total_minor)
    sales.orders.refund(first.id, 104_500)  # a tenth of 1.045.000
    second = sales.orders.place(
        customer_id=shop.an.id, placed_at=early + timedelta(days=30), lines=[{"sku": "DV-BT-GIO", "quantity": 1}]
    )
    gone = sales.orders.place(customer_id=shop.dist.id, lines=[{"sku": "GAO-ST25-5", "quantity": 1}])
    sales.orders.cancel(gone.id)

    with crm.reading() as conn:  # the purchases every other plugin reads
        rows = conn.execute(sa.select(purchases(crm)).order_by("occurred_at")).mappings().all()
    assert [(r["customer_id"], r["amount_minor"], r["currency"], r["margin_minor"]) for r in rows] == [
        (shop.an.id, 940_500, "VND", 340_000 - 34_000),
        (shop.an.id, second.total_minor, "VND", None),
    ]
    assert rows[0]["occurred_at"] == early

    fields = crm.hooks.segment_fields()
    c = core.customers.c
    with crm.reading() as conn:
        values = {r.id: r for r in conn.execute(sa.select(c.id, *(f.label(n) for n, f in fields.items()))).all()}
    an, dist = values[shop.an.id], values[shop.dist.id]
    assert (an.total_spend, an.order_count, an.outstanding_balance, an.open_deal_count) == (
        940_500 + 378_000,
        2,
        378_000,
        0,
    )
    assert an.last_order_at is not None
    assert (dist.total_spend, dist.order_count, dist.last_order_at) == (0, 0, None)

    assert [o.id for o in sales.orders.list(customer_id=shop.an.id)] == [second.id, first.id]
    assert [o.id for o in sales.orders.list(since=early + timedelta(days=1), until=early + timedelta(days=60))] == [
        second.id
    ]
    assert [o.id for o in sales.orders.list(status="cancelled")] == [gone.id]
