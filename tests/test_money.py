"""``crmkit.money``: exact amounts in minor units, formatted the local way, parsed from what people type."""

from __future__ import annotations

from decimal import Decimal

import click
import pytest

from crmkit.cli.params import amount_minor
from crmkit.money import Money


def test_vnd_has_no_minor_unit_and_formats_with_dots() -> None:
    assert Money.of("1500000", "vnd") == Money("VND", 1_500_000)
    assert Money("VND", 1_500_000).format() == "1.500.000 ₫"
    assert Money("VND", -25_000).format() == "-25.000 ₫"
    assert Money("USD", 123_450).format() == "$1,234.50"


def test_arithmetic_is_exact_and_refuses_floats_and_mixed_currencies() -> None:
    assert Money.of("0.10", "USD") + Money.of("0.20", "USD") == Money.of("0.30", "USD")
    assert Money("VND", 99_999).times(Decimal("0.08")) == Money("VND", 8_000)  # 7,999.92 rounds half-even
    with pytest.raises(TypeError):
        Money.of(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot combine VND with"):
        Money("VND", 1) + Money("USD", 1)


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [("1500000", "VND", 1_500_000), ("1_500_000", "VND", 1_500_000), (" 19.99 ", "USD", 1999), ("5", "USD", 500)],
)
def test_typed_amounts_parse_exactly(typed: str, currency: str, minor: int) -> None:
    assert Money.parse(typed, currency).minor == minor
    assert amount_minor(typed, currency, "--amount") == minor


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [
        ("50.000", "VND", "VND amounts have 0 decimal places"),  # fifty thousand, the Vietnamese way: never 50 ₫
        ("1.500.000", "VND", "is not an amount"),
        ("19.999", "USD", "USD amounts have 2 decimal places"),
        ("mười triệu", "VND", "is not an amount"),
        ("NaN", "VND", "VND amounts have 0 decimal places"),
    ],
)
def test_ambiguous_or_bad_amounts_are_refused_never_rounded(typed: str, currency: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Money.parse(typed, currency)
    with pytest.raises(click.BadParameter, match=message) as refused:
        amount_minor(typed, currency, "--amount")
    assert refused.value.param_hint == "--amount"
