"""Issue 21: orders are not placed in the future (beyond a small clock skew), a first order or a won deal makes
a lead or prospect a customer, and line errors count lines from 1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from crmkit import PermissionDenied, ValidationError
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core.types import utcnow
from crmkit.testing import FrozenClock, add_user
from crmkit_sales import models as m
from crmkit_sales.schemas import CLOCK_SKEW

from .conftest import Shop, count, make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")

LINE = [{"sku": "CF-ROB-500", "quantity": 1}]


def _cli(crm: Any, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), catch_exceptions=False)


def test_an_order_placed_in_the_future_is_refused_naming_the_field(crm_factory: Any) -> None:
    clock = FrozenClock("2026-10-31T17:30:00+00:00")  # "the future" is the CRM's: a day ahead of it, not of the machine
    shop = make_shop(crm_factory(plugins=["sales"], clock=clock))
    sales = shop.crm.sales
    tomorrow = clock() + timedelta(days=1)
    with pytest.raises(ValidationError) as error:
        sales.orders.place(customer_id=shop.an.id, lines=LINE, placed_at=tomorrow)
    assert list(error.value.errors) == ["placed_at"]
    assert str(error.value).startswith("placed_at: ") and "is in the future" in str(error.value)
    assert "5 minutes" in str(error.value)
    quote = sales.quotes.create(customer_id=shop.an.id, lines=LINE)
    sales.quotes.send(quote.id)
    sales.quotes.accept(quote.id)
    with pytest.raises(ValidationError, match="placed_at: .* is in the future"):
        sales.quotes.place_order(quote.id, placed_at=tomorrow)
    assert count(shop.crm, m.orders) == 0

    skewed = clock() + CLOCK_SKEW - timedelta(seconds=30)  # a till whose clock runs a little fast
    assert sales.orders.place(customer_id=shop.an.id, lines=LINE, placed_at=skewed).placed_at == skewed
    earlier = clock() - timedelta(days=3)
    assert sales.quotes.place_order(quote.id, placed_at=earlier).placed_at == earlier


def test_the_cli_takes_a_past_placement_time_and_refuses_a_future_one(shop: Shop) -> None:
    crm = shop.crm
    zone = crm.timezone
    future = (utcnow() + timedelta(hours=2)).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    bad = _cli(crm, "sales", "orders", "place", str(shop.an.id), "--line", "CF-ROB-500:1", "--placed-at", future)
    assert bad.exit_code == 1 and bad.stderr.startswith("error: placed_at: ") and "in the future" in bad.stderr
    assert count(crm, m.orders) == 0
    past = (utcnow() - timedelta(days=2)).astimezone(zone).replace(second=0, microsecond=0)
    good = _cli(
        crm,
        "--format",
        "json",
        "sales",
        "orders",
        "place",
        str(shop.an.id),
        "--line",
        "CF-ROB-500:1",
        "--placed-at",
        past.strftime("%Y-%m-%d %H:%M"),
    )
    assert good.exit_code == 0, good.output
    assert crm.sales.orders.list()[0].placed_at == past


def test_line_errors_count_lines_from_1_in_the_service_and_the_cli(shop: Shop) -> None:
    sales = shop.crm.sales
    two = [{"sku": "CF-ROB-500", "quantity": 1}, {"sku": "GAO-ST25-5", "quantity": 0}]
    with pytest.raises(ValidationError) as error:
        sales.orders.place(customer_id=shop.an.id, lines=two)
    assert list(error.value.errors) == ["lines.2.quantity"]
    assert str(error.value) == "lines.2.quantity: must be greater than 0"
    with pytest.raises(ValidationError, match=r"^lines\.1\.sku: unknown product 'KHONG-CO'$"):
        sales.quotes.create(customer_id=shop.an.id, lines=[{"sku": "KHONG-CO", "quantity": 1}])
    quote = sales.quotes.create(customer_id=shop.an.id, lines=LINE)
    with pytest.raises(ValidationError, match=r"^lines\.2\.discount_minor: discount "):
        sales.quotes.revise(quote.id, lines=[*LINE, {"sku": "CF-ROB-500", "quantity": 1, "discount_minor": 999_999}])
    with pytest.raises(ValidationError, match=r"^lines\.1: "):
        sales.orders.place(customer_id=shop.an.id, lines=["CF-ROB-500"])
    bad = _cli(shop.crm, "sales", "orders", "place", str(shop.an.id), "--line", "CF-ROB-500:1", "--line", "GAO")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: lines.2.sku: 'GAO': use SKU:QTY")
    bad = _cli(
        shop.crm, "sales", "quotes", "create", str(shop.an.id), "--line", "CF-ROB-500:1", "--line", "GAO-ST25-5:1:abc"
    )
    assert bad.exit_code == 2 and "Invalid value for lines.2.discount" in bad.stderr
    assert count(shop.crm, m.orders) == 0


def _stage(crm: Any, customer_id: int) -> str:
    return str(crm.customers.get(customer_id).lifecycle_stage)


def _updates(crm: Any, customer_id: int) -> int:
    return sum(e.action == "update" for e in crm.audit.entries(customer_id=customer_id, entity="customer").items)


def test_a_first_order_makes_a_lead_or_prospect_a_customer_audited_under_the_seller(shop: Shop) -> None:
    crm = shop.crm
    # a cashier may place orders but not edit customers: the move is the order's consequence, not their edit
    add_user(
        crm,
        "thu.ngan",
        grants={
            "customers.read": "all",
            "sales.products.read": "all",
            "sales.orders.place": "all",
            "sales.orders.read": "all",
        },
    )
    cashier = crm.as_user("thu.ngan")
    with pytest.raises(PermissionDenied):
        cashier.customers.update(shop.an.id, lifecycle_stage="customer")
    prospect = crm.customers.add(name="Trần Thị Bích", lifecycle_stage="prospect")
    assert _stage(crm, shop.an.id) == "lead"
    order = cashier.sales.orders.place(customer_id=shop.an.id, lines=LINE)
    assert _stage(crm, shop.an.id) == "customer"
    entry = next(e for e in crm.audit.entries(customer_id=shop.an.id, entity="customer").items if e.action == "update")
    assert entry.actor == "thu.ngan"
    assert entry.changes == {"before": {"lifecycle_stage": "lead"}, "after": {"lifecycle_stage": "customer"}}
    updates = _updates(crm, shop.an.id)
    cashier.sales.orders.place(customer_id=shop.an.id, lines=LINE)  # already a customer: nothing more to record
    assert _updates(crm, shop.an.id) == updates
    assert order.customer_id == shop.an.id

    quote = crm.sales.quotes.create(customer_id=prospect.id, lines=LINE)  # an order from a quote counts too
    crm.sales.quotes.send(quote.id)
    crm.sales.quotes.accept(quote.id)
    crm.sales.quotes.place_order(quote.id)
    assert _stage(crm, prospect.id) == "customer"

    crm.sales.orders.place(customer_id=shop.dist.id, lines=LINE)  # a distributor stays a distributor
    assert _stage(crm, shop.dist.id) == "distributor"


def test_a_failed_order_leaves_the_lifecycle_as_it_was(shop: Shop) -> None:
    with pytest.raises(ValidationError):
        shop.crm.sales.orders.place(customer_id=shop.an.id, lines=[*LINE, {"sku": "KHONG-CO", "quantity": 1}])
    assert _stage(shop.crm, shop.an.id) == "lead"


def test_a_won_deal_makes_a_lead_a_customer(shop: Shop) -> None:
    crm = shop.crm
    sales = crm.sales
    sales.pipelines.add("B2B", [{"name": "Tiếp cận", "probability": "0.1"}])
    add_user(
        crm,
        "ban.hang",
        grants={
            "customers.read": "all",
            "sales.products.read": "all",
            "sales.deals.read": "all",
            "sales.deals.update": "all",
        },
    )
    seller = crm.as_user("ban.hang")
    deal = seller.sales.deals.add(customer_id=shop.an.id, pipeline="B2B", title="Cà phê cho văn phòng")
    lost = seller.sales.deals.add(customer_id=shop.bob.id, pipeline="B2B", title="Trà")
    assert _stage(crm, shop.an.id) == "lead"
    seller.sales.deals.lose(lost.id, reason="Chọn nhà cung cấp khác")
    assert _stage(crm, shop.bob.id) == "lead"
    seller.sales.deals.win(deal.id)
    assert _stage(crm, shop.an.id) == "customer"
    entry = crm.audit.entries(customer_id=shop.an.id, entity="customer").items[0]
    assert (entry.action, entry.actor) == ("update", "ban.hang")
    assert entry.changes["after"] == {"lifecycle_stage": "customer"}
    born_won = crm.customers.add(name="Lê Văn Cường", lifecycle_stage="prospect")
    won = next(s for s in sales.pipelines.get("B2B").stages if s.outcome == "won")
    sales.deals.add(customer_id=born_won.id, pipeline="B2B", title="Ký ngay", stage=won.id)
    assert _stage(crm, born_won.id) == "customer"


def test_the_lifecycle_move_is_a_setting_on_by_default(shop: Shop) -> None:
    crm = shop.crm
    assert crm.sales.lifecycle_on_order() is True
    add_user(crm, "nv", roles=["sales"])
    with pytest.raises(PermissionDenied):
        crm.as_user("nv").sales.set_lifecycle_on_order(False)
    with pytest.raises(ValidationError, match="lifecycle_on_order"):
        crm.sales.set_lifecycle_on_order("no")  # type: ignore[arg-type]
    off = _cli(crm, "sales", "lifecycle-on-order", "off")
    assert off.exit_code == 0 and "off" in off.stdout
    assert crm.sales.lifecycle_on_order() is False
    crm.sales.orders.place(customer_id=shop.an.id, lines=LINE)
    assert _stage(crm, shop.an.id) == "lead"
    assert crm.audit.entries(entity="setting").items[0].entity_id == "sales.lifecycle_on_order"
    crm.sales.set_lifecycle_on_order(True)
    crm.sales.orders.place(customer_id=shop.an.id, lines=LINE)
    assert _stage(crm, shop.an.id) == "customer"
