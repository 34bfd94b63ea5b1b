"""Voucher codes on an order: ``crmkit_order_discounts`` (published by sales, implemented by any plugin — loyalty's
is tested in its own tests) turns codes into discounts that sales spreads over the lines before VAT."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit import Plugin, ValidationError, hookimpl
from crmkit_sales import models as m

from .conftest import count, make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")


class _Till:
    """A plugin that knows one code, ``TET50K`` (50.000 ₫), and records the orders it was placed with."""

    def __init__(self) -> None:
        self.placed: list[Any] = []

    @hookimpl
    def crmkit_order_discounts(self, order_draft: Any, codes: Any) -> list[dict[str, Any]]:
        return [
            {"code": code, "amount_minor": 50_000, "label": "Lì xì Tết"} for code in codes if code.upper() == "TET50K"
        ]

    @hookimpl
    def crmkit_order_placed(self, order: Any) -> None:
        self.placed.append(order)


def test_a_code_is_spread_over_the_lines_before_vat_and_reaches_the_placed_hook(crm_factory: Any) -> None:
    till = _Till()
    shop = make_shop(crm_factory(plugins=["sales", Plugin(name="till", hooks=(till,), requires=("sales",))]))
    order = shop.crm.sales.place_order(
        customer_id=shop.an.id,
        vouchers="tet50k",
        lines=[{"sku": "CF-ROB-500", "quantity": 4}, {"sku": "GAO-ST25-5", "quantity": 2}],
    )  # 380.000 @10% + 370.000 @5%
    assert [(line.discount_minor, line.net_minor, line.tax_minor) for line in order.lines] == [
        (25_333, 354_667, 35_467),
        (24_667, 345_333, 17_267),
    ]
    assert (order.discount_minor, order.total_minor) == (50_000, 752_734)
    assert [(d.code, d.amount_minor, d.label) for d in till.placed[-1].discounts] == [("tet50k", 50_000, "Lì xì Tết")]
    (entry,) = shop.crm.audit.entries(entity="order")
    assert entry.changes["vouchers"] == {"tet50k": 50_000}


def test_a_code_no_plugin_knows_is_refused_and_nothing_is_written(crm: Any) -> None:
    shop = make_shop(crm)
    for vouchers, message in (
        (["KHONGCO"], "unknown voucher code KHONGCO"),
        ([" "], "' ' is not a voucher code"),
        ({"a": 1}, "give voucher codes as a list of texts"),
    ):
        with pytest.raises(ValidationError) as caught:
            crm.sales.place_order(
                customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}], vouchers=vouchers
            )
        assert caught.value.errors["vouchers"][0].startswith(message)
    assert count(crm, m.orders) == 0
