"""With the real sales and loyalty plugins: their segment fields, conversions from orders, points in templates."""

from __future__ import annotations

from decimal import Decimal

import campaigns_testkit as kit
import pytest

from crmkit.core.types import utcnow


@pytest.fixture
def store(crm_factory, tmp_path):
    listener = kit.Listener()
    crm = crm_factory(plugins=["sales", "loyalty", "campaigns", listener.plugin])
    kit.outbox(crm, tmp_path / "outbox")
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    crm.sales.products.add(
        sku="CF-ARA-250",
        name="Cà phê Arabica Cầu Đất 250g",
        category="Cà phê",
        price_minor=120_000,
        currency="VND",
        tax_rate="0.1",
    )
    return crm, listener


def order(crm, customer_id, quantity="10"):
    return crm.sales.place_order(customer_id=customer_id, lines=[{"sku": "CF-ARA-250", "quantity": quantity}])


def test_segments_use_sales_and_loyalty_fields(store):
    crm, _ = store
    big, small, _ = kit.people(crm, 3)  # the third buys nothing
    order(crm, big.id, "20")
    order(crm, small.id, "1")
    segments = crm.campaigns.segments
    assert segments.count(expression="total_spend >= 1000000") == 1
    assert segments.count(expression="order_count = 0 or points_balance < 100") == 2
    assert segments.count(expression="last_order_at >= today") == 2
    assert {"total_spend", "points_balance", "loyalty_tier"} <= set(segments.fields())


def test_orders_after_a_message_are_its_conversions(store):
    crm, listener = store
    buyer, _ = kit.people(crm, 2)  # the second gets the message and buys nothing
    order(crm, buyer.id, "2")  # before the campaign: no conversion
    campaign = crm.campaigns.create(
        "Cà phê Tết",
        channel="email",
        attribution_days=3,
        cost_fixed_minor=100_000,
        body="Chào {{ first_name }}, bạn có {{ points_balance | number }} điểm ({{ total_spend | money }} đã mua).",
    )
    preview = crm.campaigns.preview(campaign.id, buyer.id)
    points = crm.loyalty.balance(buyer.id)
    assert points > 0 and f"bạn có {points} điểm (264.000 ₫ đã mua)" in preview.text
    now = utcnow()
    crm.campaigns.run(campaign.id, now=now)
    crm.campaigns.dispatch(now=now)
    placed = order(crm, buyer.id, "5")
    converted = [e for e in listener.events if e.kind == "converted"]
    assert [(e.customer_id, e.detail["order_id"], e.detail["amount_minor"]) for e in converted] == [
        (buyer.id, placed.id, placed.total_minor)
    ]
    report = crm.campaigns.report(campaign.id)
    assert (report.treated.converted, report.revenue_minor) == (1, placed.total_minor)
    assert report.roi == (Decimal(placed.total_minor - 100_000) / Decimal(100_000)).quantize(Decimal("0.0001"))
    profile = crm.customers.profile(buyer.id).sections["campaigns"]
    assert profile["latest_responses"][0]["kind"] == "converted"
