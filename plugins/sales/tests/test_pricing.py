"""The price rule and the rounding rule, on hand-computed cases (VND and USD)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from crmkit import ValidationError
from crmkit_sales import models as m

from .conftest import Shop, count

pytestmark = pytest.mark.crmkit_plugins("sales")

DAY = date(2026, 3, 2)


def test_lowest_price_among_the_lists_that_apply_to_the_customer_else_list_price(shop: Shop) -> None:
    lists = shop.crm.sales.pricelists
    price = lists.price_for(shop.an.id, "CF-ROB-500", on=DAY)
    assert (price.unit_price_minor, price.currency, price.price_list_id) == (95_000, "VND", None)
    everyone = lists.add(name="Giá chung", currency="VND")
    lists.set_price(everyone.id, "CF-ROB-500", 90_000)
    vip = lists.add(name="Khách VIP", currency="VND", group_tag="vip")
    lists.set_price(vip.id, "CF-ROB-500", 85_000)
    trade = lists.add(
        name="Đại lý", currency="VND", group_condition={"field": "lifecycle_stage", "op": "=", "value": "distributor"}
    )
    lists.set_price(trade.id, "CF-ROB-500", 80_000)
    lists.set_price(trade.id, "CF-ROB-500", 76_000, min_quantity=10)

    def price(customer_id: int, quantity: int = 1) -> tuple[int, int | None]:
        found = lists.price_for(customer_id, "CF-ROB-500", on=DAY, quantity=quantity)
        return found.unit_price_minor, found.price_list_id

    assert price(shop.bob.id) == (90_000, everyone.id)  # no tag, not a distributor: the list for everyone
    assert price(shop.an.id) == (85_000, vip.id)  # tagged vip: the lower of 90.000 and 85.000
    assert price(shop.dist.id) == (80_000, trade.id)  # distributor condition
    assert price(shop.dist.id, 9) == (80_000, trade.id)
    assert price(shop.dist.id, 10) == (76_000, trade.id)  # quantity break from 10


def test_validity_dates_are_inclusive_inactive_lists_do_not_count_and_ties_go_to_the_lowest_id(shop: Shop) -> None:
    lists = shop.crm.sales.pricelists
    ended = lists.add(name="Tết cũ", currency="VND", valid_until=DAY - timedelta(days=1))
    future = lists.add(name="Tết sau", currency="VND", valid_from=DAY + timedelta(days=1))
    last_day = lists.add(name="Hết hôm nay", currency="VND", valid_from=DAY - timedelta(days=10), valid_until=DAY)
    off = lists.add(name="Tắt", currency="VND", active=False)
    for price_list, amount in ((ended, 50_000), (future, 51_000), (last_day, 93_000), (off, 52_000)):
        lists.set_price(price_list.id, "CF-ROB-500", amount)
    assert lists.price_for(shop.an.id, "CF-ROB-500", on=DAY).unit_price_minor == 93_000
    assert lists.price_for(shop.an.id, "CF-ROB-500", on=DAY + timedelta(days=1)).unit_price_minor == 51_000
    assert lists.price_for(shop.an.id, "CF-ROB-500", on=DAY - timedelta(days=11)).unit_price_minor == 50_000
    # a tie goes to the price list with the lowest id
    first = lists.add(name="A", currency="VND")
    second = lists.add(name="B", currency="VND", group_tag="vip")
    lists.set_price(second.id, "GAO-ST25-5", 170_000)
    lists.set_price(first.id, "GAO-ST25-5", 170_000)
    assert lists.price_for(shop.an.id, "GAO-ST25-5", on=DAY).price_list_id == first.id


def test_a_condition_may_use_a_segment_field(shop: Shop) -> None:
    lists = shop.crm.sales.pricelists
    loyal = lists.add(
        name="Khách thân thiết",
        currency="VND",
        group_condition={"field": "total_spend", "op": ">=", "value": 1_000_000},
    )
    lists.set_price(loyal.id, "GAO-ST25-5", 160_000)
    assert lists.price_for(shop.an.id, "GAO-ST25-5", on=DAY).price_list_id is None
    shop.crm.sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "GAO-ST25-5", "quantity": 6}])
    assert lists.price_for(shop.an.id, "GAO-ST25-5", on=DAY).unit_price_minor == 160_000


def test_prices_are_never_converted_between_currencies(shop: Shop) -> None:
    lists = shop.crm.sales.pricelists
    export = lists.add(name="Export USD", currency="USD")
    lists.set_price(export.id, "CF-ROB-500", 400)
    assert lists.price_for(shop.bob.id, "CF-ROB-500", currency="USD", on=DAY).unit_price_minor == 400
    assert lists.price_for(shop.bob.id, "CF-ROB-500", currency="VND", on=DAY).unit_price_minor == 95_000
    with pytest.raises(ValidationError) as error:
        shop.crm.sales.orders.place(
            customer_id=shop.bob.id,
            currency="USD",
            lines=[{"sku": "CF-ROB-500", "quantity": 1}, {"sku": "GAO-ST25-5", "quantity": 1}],
        )
    assert list(error.value.errors) == ["lines.2.currency"]  # the second line, counted from 1
    assert "no price in USD" in error.value.errors["lines.2.currency"][0]
    assert count(shop.crm, m.orders) == 0


def test_a_named_price_list_must_be_in_the_documents_currency_and_apply(shop: Shop) -> None:
    lists = shop.crm.sales.pricelists
    vip = lists.add(name="Khách VIP", currency="VND", group_tag="vip")
    lists.set_price(vip.id, "CF-ROB-500", 85_000)
    with pytest.raises(ValidationError) as error:
        shop.crm.sales.orders.place(
            customer_id=shop.an.id, currency="USD", price_list_id=vip.id, lines=[{"sku": "TEA-GIFT", "quantity": 1}]
        )
    assert "currency" in error.value.errors and "VND" in str(error.value)
    with pytest.raises(ValidationError) as error:
        shop.crm.sales.orders.place(
            customer_id=shop.bob.id, price_list_id=vip.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}]
        )
    assert "price_list_id" in error.value.errors
    order = shop.crm.sales.orders.place(
        customer_id=shop.an.id,
        price_list_id=vip.id,
        lines=[{"sku": "CF-ROB-500", "quantity": 1}, {"sku": "GAO-ST25-5", "quantity": 1}],
    )
    assert [(line.unit_price_minor, line.price_list_id) for line in order.lines] == [(85_000, vip.id), (185_000, None)]
    assert count(shop.crm, m.orders) == 1


def test_exact_totals_of_a_vnd_order_rounded_per_line_half_to_even(shop: Shop) -> None:
    order = shop.crm.sales.orders.place(
        customer_id=shop.an.id,
        lines=[
            {"sku": "CF-ROB-500", "quantity": 3, "discount_percent": 10},  # 285.000 − 28.500 = 256.500; VAT 10% 25.650
            {
                "sku": "GAO-ST25-5",
                "quantity": "2.5",
                "discount_minor": 12_345,
            },  # 462.500 − 12.345 = 450.155; 5%: 22.507,75
            {"sku": "DV-BT-GIO", "quantity": "1.5"},  # 525.000; VAT 8% 42.000
        ],
    )
    assert [(line.net_minor, line.tax_minor, line.total_minor) for line in order.lines] == [
        (256_500, 25_650, 282_150),
        (450_155, 22_508, 472_663),
        (525_000, 42_000, 567_000),
    ]
    assert (order.subtotal_minor, order.discount_minor, order.tax_minor, order.total_minor) == (
        1_272_500,
        40_845,
        90_158,
        1_321_813,
    )
    assert order.total.format() == "1.321.813 ₫"
    assert order.margin_minor is None  # the service has no cost
    stored = shop.crm.sales.orders.get(order.id)
    assert stored.lines == order.lines and stored.total_minor == 1_321_813
    # rounding is per line and half-to-even
    order = shop.crm.sales.orders.place(
        customer_id=shop.an.id,
        lines=[
            {"sku": "CF-ROB-500", "quantity": 1, "discount_minor": 82_655},  # net 12.345: VAT 1.234,5 → 1.234
            {"sku": "CF-ROB-500", "quantity": 1, "discount_minor": 82_645},  # net 12.355: VAT 1.235,5 → 1.236
            {"sku": "GAO-ST25-5", "quantity": "0.001"},  # 185 đồng; VAT 5% 9,25 → 9
        ],
    )
    assert [line.tax_minor for line in order.lines] == [1_234, 1_236, 9]
    assert order.tax_minor == 1_234 + 1_236 + 9  # the sum of the rounded lines, not the rounded sum


def test_exact_totals_of_a_usd_order(shop: Shop) -> None:
    order = shop.crm.sales.orders.place(
        customer_id=shop.bob.id,
        currency="USD",
        lines=[
            {"sku": "TEA-GIFT", "quantity": 3, "discount_percent": 15},  # 37.50 − 5.625 → 5.62 (half-even) = 31.88
            {"sku": "TEA-GIFT", "quantity": 7, "tax_rate": "8%"},  # 87.50 + VAT 7.00
        ],
    )
    assert [(line.discount_minor, line.net_minor, line.tax_minor) for line in order.lines] == [
        (562, 3_188, 0),
        (0, 8_750, 700),
    ]
    assert (order.subtotal_minor, order.discount_minor, order.tax_minor, order.total_minor) == (
        12_500,
        562,
        700,
        12_638,
    )
    assert order.total.format() == "$126.38"
    assert order.margin_minor == 3_188 - 2_100 + 8_750 - 4_900  # net minus quantity × unit cost (7.00)


def test_line_input_is_checked_field_by_field_and_retired_products_refused(shop: Shop) -> None:
    place = shop.crm.sales.orders.place
    cases = [
        ({"sku": "CF-ROB-500", "quantity": "1.2345"}, "quantity"),
        ({"sku": "CF-ROB-500", "quantity": 1.5}, "quantity"),  # a float is refused
        ({"sku": "CF-ROB-500", "quantity": 1, "tax_rate": "7%"}, "tax_rate"),
        ({"sku": "CF-ROB-500", "quantity": 1, "discount_percent": 120}, "discount_percent"),
        ({"sku": "CF-ROB-500", "quantity": 1, "discount_minor": 100_000}, "discount_minor"),  # more than the line
        ({"quantity": 1}, "sku"),
    ]
    for line, field in cases:
        with pytest.raises(ValidationError) as error:
            place(customer_id=shop.an.id, lines=[line])
        assert f"lines.1.{field}" in error.value.errors, (line, error.value.errors)
        assert str(error.value).startswith(f"lines.1.{field}: "), error.value
    assert count(shop.crm, m.orders) == 0 and count(shop.crm, m.order_lines) == 0
    shop.crm.sales.products.deactivate("DV-BT-GIO")
    with pytest.raises(ValidationError, match="no longer sold"):
        shop.crm.sales.quotes.create(customer_id=shop.an.id, lines=[{"sku": "DV-BT-GIO", "quantity": 1}])
    assert [p.sku for p in shop.crm.sales.products.list()] == ["CF-ROB-500", "GAO-ST25-5", "TEA-GIFT"]
    assert Decimal("0.08") == shop.crm.sales.products.get("DV-BT-GIO").tax_rate
