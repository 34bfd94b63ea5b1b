"""End to end with the real sales plugin: orders placed, paid, refunded and cancelled through ``crm.sales``."""

from datetime import timedelta

import pytest

from crmkit.core.types import utcnow


@pytest.fixture
def shop(crm_factory):
    crm = crm_factory(plugins=["sales", "loyalty"])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    crm.sales.products.add(
        sku="CF-ARA-250",
        name="Cà phê Arabica Cầu Đất 250g",
        category="Cà phê",
        price_minor=120_000,
        currency="VND",
        tax_rate="0.1",
    )
    crm.sales.products.add(
        sku="GAO-ST25-5",
        name="Gạo ST25 Sóc Trăng túi 5kg",
        category="Gạo",
        price_minor=185_000,
        currency="VND",
        tax_rate="0.05",
    )
    return crm


def _order(crm, customer_id, **extra):
    return crm.sales.place_order(
        customer_id=customer_id,
        lines=[{"sku": "CF-ARA-250", "quantity": "3"}, {"sku": "GAO-ST25-5", "quantity": "2"}],
        **extra,
    )


def test_an_order_placed_through_sales_earns_by_its_lines(shop):
    shop.loyalty.programs.add_rule("category", target="Cà phê", multiplier=2)
    an = shop.customers.add(name="Nguyễn Văn An")
    order = _order(shop, an.id)
    coffee, rice = order.lines
    assert shop.loyalty.balance(an.id) == (coffee.total_minor * 2 + rice.total_minor) // 10_000
    (entry,) = shop.loyalty.history(an.id)
    assert (entry.order_id, entry.amount_minor) == (str(order.id), order.total_minor)


def test_refund_and_cancellation_through_sales_reverse_points(shop):
    an = shop.customers.add(name="Nguyễn Văn An")
    paid = _order(shop, an.id)
    earned = paid.total_minor // 10_000
    shop.sales.payments.record(paid.id, paid.total_minor)
    shop.sales.orders.refund(paid.id, paid.total_minor // 4, reason="Hàng lỗi, hoàn một phần")
    assert shop.loyalty.balance(an.id) == earned - earned * (paid.total_minor // 4) // paid.total_minor
    unpaid = _order(shop, an.id)
    shop.sales.orders.cancel(unpaid.id, reason="Khách đổi ý")
    assert shop.loyalty.balance(an.id) == earned - earned * (paid.total_minor // 4) // paid.total_minor
    assert shop.loyalty.jobs.verify() == []


def test_repeat_purchase_rate_reads_sales_orders(shop):
    shop.loyalty.programs.update("default", auto_enroll=False)
    member, guest = (shop.customers.add(name=n) for n in ("Nguyễn Văn An", "Khách vãng lai"))
    shop.loyalty.enroll(member.id)
    for _ in range(2):
        _order(shop, member.id)
    _order(shop, guest.id)
    rates = {row.group: (row.buyers, row.repeat_buyers) for row in shop.loyalty.reports.repeat_purchase()}
    assert rates == {"members": (1, 1), "non-members": (1, 0)}


def test_backfill_reads_orders_placed_before_the_program(crm_factory):
    crm = crm_factory(plugins=["sales", "loyalty"])
    crm.sales.products.add(sku="GAO-ST25-5", name="Gạo ST25 Sóc Trăng túi 5kg", price_minor=185_000, currency="VND")
    an = crm.customers.add(name="Nguyễn Văn An")
    orders = [
        crm.sales.place_order(
            customer_id=an.id,
            lines=[{"sku": "GAO-ST25-5", "quantity": str(n)}],
            placed_at=utcnow() - timedelta(days=10 * n),
        )
        for n in (1, 2, 3)
    ]
    crm.loyalty.programs.create("default", "Khách hàng thân thiết")
    assert crm.loyalty.balance(an.id) == 0
    assert crm.loyalty.jobs.backfill() == 3
    assert crm.loyalty.jobs.backfill() == 3
    assert crm.loyalty.balance(an.id) == sum(o.total_minor // 10_000 for o in orders)
