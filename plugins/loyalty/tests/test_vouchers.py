"""Rewards used at the till: a voucher from ``loyalty redeem`` taken off a sales order through the sales hook
``crmkit_order_discounts`` (no import between the plugins), once; cancelling the order gives it back."""

import json

import pytest
from click.testing import CliRunner

from crmkit import Conflict, ValidationError
from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_FAILED, cli

LINES = [{"sku": "CF-ARA-250", "quantity": "3"}, {"sku": "GAO-ST25-5", "quantity": "2"}]  # 360.000 @10% + 370.000 @5%


@pytest.fixture
def shop(crm_factory):
    crm = crm_factory(plugins=["sales", "loyalty"])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    crm.loyalty.programs.add_reward("voucher-100k", "Voucher 100.000 ₫", 200, kind="discount", value_minor=100_000)
    crm.loyalty.programs.add_reward("arabica-250", "Cà phê Arabica Cầu Đất 250g", 240, stock=40)
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


def _orders(crm):
    return len(crm.sales.orders.list())


def _voucher(crm, name="Nguyễn Văn An"):
    customer = crm.customers.add(name=name)
    crm.loyalty.grant(customer.id, 500, "khai trương")
    return customer, crm.loyalty.redeem(customer.id, "voucher-100k").code


def test_a_voucher_is_taken_off_an_order_once_and_comes_back_when_the_order_is_cancelled(shop):
    an, code = _voucher(shop)
    order = shop.sales.place_order(customer_id=an.id, lines=LINES, vouchers=[code.lower()])
    ((discount_code, amount, label),) = [(d.code, d.amount_minor, d.label) for d in order.discounts]
    assert (discount_code, amount) == (code.lower(), 100_000) and label.startswith("Voucher 100.000 ₫")
    coffee, rice = order.lines  # 100.000 spread over 360.000 and 370.000 before VAT: 49.315 and 50.685
    assert [(line.discount_minor, line.net_minor, line.tax_minor) for line in order.lines] == [
        (49_315, 310_685, 31_068),
        (50_685, 319_315, 15_966),
    ]
    assert (order.discount_minor, order.total_minor) == (100_000, 677_034)
    assert shop.sales.orders.get(order.id).total_minor == 677_034
    (redemption,) = shop.loyalty.redemptions(an.id)
    assert (redemption.status, redemption.order_id) == ("used", str(order.id))
    earned = [e for e in shop.loyalty.history(an.id) if e.reason == "purchase"]
    assert [e.amount_minor for e in earned] == [677_034]  # points on what the customer paid

    with pytest.raises(ValidationError) as caught:  # a second use: refused, naming the code; nothing written
        shop.sales.place_order(customer_id=an.id, lines=LINES, vouchers=[code])
    assert caught.value.errors == {
        "vouchers": [
            f"voucher {code} was already used on order {order.id} "
            f"({redemption.used_at.astimezone(shop.timezone):%d/%m/%Y %H:%M})"
        ]
    }
    assert _orders(shop) == 1
    with pytest.raises(Conflict, match=f"voucher {code}\\) was used on order {order.id}: cancel the order first"):
        shop.loyalty.cancel_redemption(redemption.id)

    shop.sales.orders.cancel(order.id, reason="Khách đổi ý")
    (redemption,) = shop.loyalty.redemptions(an.id)
    assert (redemption.status, redemption.order_id, redemption.used_at) == ("completed", None, None)
    again = shop.sales.place_order(customer_id=an.id, lines=LINES, vouchers=[code])
    assert again.total_minor == 677_034 and shop.loyalty.redemptions(an.id)[0].order_id == str(again.id)
    assert [e.action for e in shop.audit.entries(entity="loyalty_redemption")][:3] == ["use", "return", "use"]
    assert shop.loyalty.jobs.verify() == []


def test_vouchers_that_cannot_be_used_are_refused_naming_the_code(shop):
    an, code = _voucher(shop)
    _, binh_code = _voucher(shop, "Trần Thị Bình")
    cancelled = shop.loyalty.redeem(an.id, "voucher-100k")
    shop.loyalty.cancel_redemption(cancelled.id)
    product = shop.loyalty.redeem(an.id, "arabica-250").code
    small = [{"sku": "CF-ARA-250", "quantity": "0.5"}]  # 60.000 before VAT
    refused = [
        ([binh_code], LINES, f"voucher {binh_code} belongs to another customer, not to customer {an.id} of this order"),
        ([cancelled.code], LINES, f"voucher {cancelled.code} was cancelled ("),
        (
            [product],
            LINES,
            f"voucher {product} is for 'Cà phê Arabica Cầu Đất 250g', a product reward with no money "
            "value: hand the reward over",
        ),
        (["LYNOSUCHCODE"], LINES, "unknown voucher code LYNOSUCHCODE"),
        ([code], small, f"vouchers worth 100.000 ₫ ({code} 100.000 ₫) are more than the order's 60.000 ₫ before VAT"),
        ([code, code.lower()], LINES, f"voucher {code.lower()} is given twice"),
    ]
    for codes, lines, message in refused:
        with pytest.raises(ValidationError) as caught:
            shop.sales.place_order(customer_id=an.id, lines=lines, vouchers=codes)
        (text,) = caught.value.errors["vouchers"]
        assert text.startswith(message), text
    assert _orders(shop) == 0
    assert {r.code: r.status for r in shop.loyalty.redemptions(an.id)}[code] == "completed"


def test_place_with_a_voucher_from_the_command_line(shop):
    an, code = _voucher(shop)
    url = shop.engine.url.render_as_string(hide_password=False)

    def run(*args):
        return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["sales", "loyalty"]))

    placed = run(
        "--format",
        "json",
        "sales",
        "orders",
        "place",
        str(an.id),
        "--line",
        "CF-ARA-250:3",
        "--line",
        "GAO-ST25-5:2",
        "--voucher",
        code,
    )
    assert placed.exit_code == 0, placed.stderr
    head = json.loads(placed.stdout[: placed.stdout.index("\n}\n") + 2])
    assert head["vouchers"].startswith(f"{code} −100.000 ₫ (Voucher 100.000 ₫")
    assert head["total"] == "677.034 ₫"
    again = run("sales", "orders", "place", str(an.id), "--line", "CF-ARA-250:3", "--voucher", code)
    assert again.exit_code == EXIT_FAILED
    (line,) = again.stderr.splitlines()
    assert line.startswith(f"error: vouchers: voucher {code} was already used on order {head['id']} (")
