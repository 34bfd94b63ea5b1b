"""Money without floats: integer minor units with an ISO 4217 currency, formatted the local way.

VND has no minor unit (``1500000`` is 1.500.000 ₫); USD has two (``1999`` is $19.99).
Plugins (sales, loyalty, campaigns, analytics) share this instead of each inventing one.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

import attrs

#: Digits after the decimal point per currency (ISO 4217); others default to 2.
MINOR_UNITS = {"VND": 0, "JPY": 0, "KRW": 0, "USD": 2, "EUR": 2, "GBP": 2, "SGD": 2, "THB": 2, "CNY": 2, "KWD": 3}
_SYMBOLS = {"VND": "₫", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


#: The largest amount in minor units an input may hold (10^15: a quadrillion đồng, ten trillion dollars):
#: the sums reports and balances make of many such amounts still fit a 64-bit column.
MAX_MINOR = 10**15


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency (CLDR's list): imports refuse a typo like ``UDS``."""
    return code.upper() in _currencies()


@cache
def _currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def minor_units(currency: str) -> int:
    """Decimal places of ``currency`` (0 for VND, 2 for USD)."""
    return MINOR_UNITS.get(currency.upper(), 2)


@attrs.frozen(order=True)
class Money:
    """An amount in minor units of ``currency``; arithmetic refuses to mix currencies."""

    currency: str = attrs.field(converter=str.upper)
    minor: int = attrs.field()

    @minor.validator
    def _integer(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"Money.minor must be an int, got {type(value).__name__}")

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """From a major-unit amount (``Money.of("19.99", "USD")``); floats are refused, rounding is half-even."""
        if isinstance(amount, float):
            raise TypeError("money amounts must not be floats; pass a Decimal, int or str")
        exponent = Decimal(1).scaleb(-minor_units(currency))
        value = Decimal(amount).quantize(exponent, rounding=ROUND_HALF_EVEN)
        return cls(currency, int(value.scaleb(minor_units(currency))))

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """An amount a person typed in major units (``1500000``, ``1_500_000``, ``19.99``), exactly.

        More decimals than the currency has are refused, never rounded: ``50.000`` in VND is most
        likely fifty thousand written the Vietnamese way, not fifty. ``ValueError`` says why.
        """
        try:
            value = Decimal(str(text).strip().replace("_", ""))
        except ArithmeticError:
            raise ValueError(f"{text!r} is not an amount (write 1500000 or 19.99)") from None
        places = minor_units(currency)
        if not value.is_finite() or -int(value.as_tuple().exponent) > places:
            raise ValueError(
                f"{text!r}: {currency.upper()} amounts have {places} decimal places "
                "(write 50000, without thousands separators)"
            )
        most = Decimal(MAX_MINOR).scaleb(-places)
        if value.copy_abs() > most:
            raise ValueError(f"{text!r}: at most {most} {currency.upper()}")
        return cls.of(value, currency)

    @property
    def amount(self) -> Decimal:
        """The value in major units as an exact Decimal."""
        return Decimal(self.minor).scaleb(-minor_units(self.currency))

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {getattr(other, 'currency', other)!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.minor + other.minor)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.minor - other.minor)

    def __neg__(self) -> Money:
        return Money(self.currency, -self.minor)

    def times(self, factor: Decimal | int) -> Money:
        """Multiplied by an exact factor (quantity, rate), rounded half-even to the minor unit."""
        if isinstance(factor, float):
            raise TypeError("multiply money by a Decimal or int, not a float")
        return Money(
            self.currency, int((Decimal(self.minor) * Decimal(factor)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        )

    def format(self) -> str:
        """Local formatting: ``1.500.000 ₫`` for VND, ``$1,234.50`` for USD, ``12.00 XYZ`` otherwise."""
        places = minor_units(self.currency)
        sign = "-" if self.minor < 0 else ""
        text = f"{abs(self.amount):,.{places}f}"
        if self.currency == "VND":
            return f"{sign}{text.replace(',', '.')} ₫"
        symbol = _SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {self.currency}"

    def __str__(self) -> str:
        return self.format()
