"""Numbers in range: extreme and malformed numbers given to loyalty's and sales' services and commands end in one
clear message naming the field (or are accepted), never in an overflow or a database error."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import CRM, ValidationError
from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_BUG, cli
from crmkit.errors import CRMError

pytestmark = pytest.mark.crmkit_plugins("sales", "loyalty")

#: Integers around every bound that matters (the 10^15 amounts and points, 32- and 64-bit columns), huge
#: and tiny decimals, floats, malformed text, and values of the wrong type.
EXTREME = st.one_of(
    st.sampled_from([0, -1, 1, 10**9 + 1, 10**15, 10**15 + 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**23]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(
        [
            "1e30",
            "1e999999999",
            "-1e999999999",
            "1e-999999999",
            "NaN",
            "-Infinity",
            "",
            " ",
            "1,5",
            "0x10",
            "١٢٣",
            "1_000",
            "99999999999999999999999",
            "10%",
            "1e3%",
        ]
    ),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def shop(crm: CRM) -> tuple[CRM, int, int]:
    """A program, a product, a customer and an order of theirs (paid in full, so it can be refunded)."""
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    crm.sales.products.add(sku="CF-500", name="Cà phê Robusta 500g", price_minor=120_000, currency="VND", tax_rate="0%")
    an = crm.customers.add(name="Nguyễn Văn An")
    order = crm.sales.orders.place(customer_id=an.id, lines=[{"sku": "CF-500", "quantity": 2}])
    crm.sales.payments.record(order.id, order.total_minor)
    return crm, an.id, order.id


def _entry_points(crm: CRM, customer: int, order: int) -> dict[str, Callable[[Any], Any]]:
    """Each numeric input of the main loyalty and sales calls, fed ``value``."""
    codes = (f"c{n}" for n in itertools.count())
    loyalty, sales = crm.loyalty, crm.sales
    return {
        "grant points": lambda value: loyalty.grant(customer, value, "quà tặng"),
        "deduct points": lambda value: loyalty.deduct(customer, value, "điều chỉnh"),
        "history limit": lambda value: loyalty.history(customer, limit=value),
        "program point value": lambda value: loyalty.programs.create(next(codes), "P", point_value_minor=value),
        "program earn points": lambda value: loyalty.programs.create(next(codes), "P", earn_points=value),
        "program earn amount": lambda value: loyalty.programs.create(next(codes), "P", earn_amount_minor=value),
        "program expiry days": lambda value: loyalty.programs.create(next(codes), "P", expiry_days=value),
        "reward points cost": lambda value: loyalty.programs.add_reward(next(codes), "R", value),
        "reward stock": lambda value: loyalty.programs.add_reward(next(codes), "R", 10, stock=value),
        "product price": lambda value: sales.products.add(sku=next(codes), name="P", price_minor=value, currency="VND"),
        "product tax rate": lambda value: sales.products.add(
            sku=next(codes), name="P", price_minor=1, currency="VND", tax_rate=value
        ),
        "order quantity": lambda value: sales.orders.place(
            customer_id=customer, lines=[{"sku": "CF-500", "quantity": value}]
        ),
        "payment amount": lambda value: sales.payments.record(order, value),
        "refund amount": lambda value: sales.orders.refund(order, value),
        "orders limit": lambda value: sales.orders.list(limit=value),
        "payments limit": lambda value: sales.payments.list(limit=value),
    }


def _id_calls(crm: CRM) -> dict[str, Callable[[int], Any]]:
    """Calls taking the id of a customer, fed an integer id no row has."""
    return {
        "loyalty balance": lambda value: crm.loyalty.balance(value),
        "loyalty grant": lambda value: crm.loyalty.grant(value, 5, "quà"),
        "order for customer": lambda value: crm.sales.orders.place(
            customer_id=value, lines=[{"sku": "CF-500", "quantity": 1}]
        ),
        "customer": lambda value: crm.customers.get(value),
    }


def _clear_or_works(call: Callable[[Any], Any], value: Any) -> None:
    """Call; a refusal must be crmkit's own error, with a message, and no overflow in it."""
    try:
        call(value)
    except CRMError as exc:
        assert str(exc) and "overflow" not in str(exc).lower(), (value, exc)


@SETTINGS
@given(value=EXTREME, which=st.integers(min_value=0))
def test_extreme_numbers_to_loyalty_and_sales_calls_give_a_clear_error_or_work(
    shop: tuple[CRM, int, int], value: Any, which: int
) -> None:
    calls = _entry_points(*shop)
    _clear_or_works(calls[sorted(calls)[which % len(calls)]], value)


@SETTINGS
@given(
    value=st.one_of(st.integers(), st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63) - 1, 10**23])),
    which=st.integers(min_value=0),
)
def test_ids_no_row_has_are_not_found_not_an_overflow(shop: tuple[CRM, int, int], value: int, which: int) -> None:
    calls = _id_calls(shop[0])
    _clear_or_works(calls[sorted(calls)[which % len(calls)]], value if abs(value) > 10**6 else -abs(value) - 1)


def test_a_grant_beyond_the_bound_names_the_field_and_the_largest_allowed(shop: tuple[CRM, int, int]) -> None:
    crm, customer, _ = shop
    with pytest.raises(ValidationError) as refused:
        crm.loyalty.grant(customer, 99999999999999999999999, "quà")
    assert refused.value.errors == {"points": ["at most 1000000000000000 points at a time"]}
    crm.loyalty.grant(customer, 10**15, "quà")
    assert crm.loyalty.balance(customer) >= 10**15
    with pytest.raises(ValidationError, match="expiry_days"):
        crm.loyalty.programs.create("p2", "P", expiry_days=10**9)
    assert crm.loyalty.programs.create("p3", "P", earn_points=Decimal("0.5")).code == "p3"


CLI_ARGS = st.one_of(
    st.sampled_from(
        [
            "99999999999999999999999",
            "-99999999999999999999999",
            "1e999999999",
            "NaN",
            "9223372036854775808",
            "0",
            "-1",
            "1.5",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=CLI_ARGS, command=st.sampled_from(["grant", "deduct", "balance", "record", "refund"]))
def test_extreme_numbers_on_the_command_line_never_end_in_an_unexpected_error(
    shop: tuple[CRM, int, int], number: str, command: str
) -> None:
    crm, customer, order = shop
    args = {
        "grant": ["loyalty", "grant", str(customer), number, "--note", "quà"],
        "deduct": ["loyalty", "deduct", str(customer), number, "--note", "điều chỉnh"],
        "balance": ["loyalty", "balance", number],
        "record": ["sales", "payments", "record", str(order), number],
        "refund": ["sales", "orders", "refund", str(order), number],
    }[command]
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli, ["--db", url, "--locale", "en", *args], obj=CLIContext(plugins=["sales", "loyalty"])
    )
    assert result.exit_code != EXIT_BUG and "unexpected" not in result.stderr, (args, result.stderr)
