"""The loyalty plugin's value objects (attrs, frozen): what ``crm.loyalty`` returns and its hooks pass.

Points shown to callers are ``int`` in a whole-point program and ``Decimal`` in a program that
allows fractional points; the database keeps integer *units* (see ``Program.to_units``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import attrs

from crmkit.errors import ValidationError
from crmkit.money import Money

#: Points as callers see them: int, or Decimal in a program with fractional points.
Points = int | Decimal

ROUNDING = ("floor", "round", "ceil")
#: The most points (in units) one entry may move, and the most a balance may hold: far inside the 64-bit
#: columns, so that a balance, a report's sum or a tier window's total never overflows.
MAX_UNITS = 10**15
MAX_BALANCE = 10**18
#: A member's tier moves are audit-log entries: action ``tier`` on entity ``loyalty_member``, id ``program:customer``.
TIER_MOVE, TIER_ENTITY = "tier", "loyalty_member"


def tier_entity_id(program: Any, customer_id: int) -> str:
    """The audit entity id of a member's tier moves in ``program`` (anything with a ``code``)."""
    return f"{program.code}:{customer_id}"


def points_of(units: int, decimals: int) -> Points:
    """Integer units of a program with ``decimals`` point decimals as the points callers see."""
    return Decimal(units).scaleb(-decimals) if decimals else units


@attrs.frozen
class Program:
    """A loyalty program: its currency, how purchases turn into points, expiry and tier settings.

    ``earn_points`` points are earned per ``earn_amount_minor`` spent (e.g. 1 point per 10.000 ₫),
    rounded once per order with ``rounding`` (``floor`` by default; ``round`` is half-up).
    """

    id: int
    code: str
    name: str
    currency: str
    earn_points: Decimal
    earn_amount_minor: int
    rounding: str
    point_decimals: int
    include_tax: bool
    expiry_days: int | None
    tier_basis: str
    tier_window_days: int
    point_value_minor: int | None
    auto_enroll: bool
    active: bool
    created_at: datetime

    @property
    def fractional(self) -> bool:
        """True when points may have decimals (``point_decimals > 0``)."""
        return self.point_decimals > 0

    def to_units(self, value: Any, field: str = "points") -> int:
        """Points given by a caller (int, Decimal or numeric string) as integer units; floats are refused."""
        if isinstance(value, (bool, float)):
            raise ValidationError("give points as an integer or a decimal string, not a float", field=field)
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError(f"not a number: {value!r}", field=field) from None
        if not number.is_finite():
            raise ValidationError(f"not a number: {value!r}", field=field)
        most = points_of(MAX_UNITS, self.point_decimals)
        if number.copy_abs() > most:
            raise ValidationError(f"at most {most} points at a time", field=field)
        scaled = number.scaleb(self.point_decimals)
        if scaled != scaled.to_integral_value():
            message = (
                f"fractional points are not allowed in program {self.code!r}"
                if not self.fractional
                else f"at most {self.point_decimals} decimal places in program {self.code!r}"
            )
            raise ValidationError(message, field=field)
        return int(scaled)

    def points(self, units: int) -> Points:
        """Integer units as the points callers see (int, or Decimal in a fractional program)."""
        return points_of(units, self.point_decimals)

    def round(self, value: Fraction) -> int:
        """Exact points (in units) rounded with the program's rule: floor, round (half up) or ceil."""
        if self.rounding == "ceil":
            return math.ceil(value)
        if self.rounding == "round":
            return math.floor(value + Fraction(1, 2))
        return math.floor(value)

    def expiry_from(self, moment: datetime) -> datetime | None:
        """When points earned at ``moment`` expire (None: the program's points never expire)."""
        return None if self.expiry_days is None else moment + timedelta(days=self.expiry_days)

    def window_start(self, now: datetime) -> datetime:
        """Where the rolling tier window ending at ``now`` starts (entries after it count towards the tier)."""
        return now - timedelta(days=self.tier_window_days)

    def value_of(self, units: int) -> Money | None:
        """The money value of ``units`` points (half-even to the minor unit), if the program has a point value."""
        if self.point_value_minor is None:
            return None
        exact = Fraction(units * self.point_value_minor, 10**self.point_decimals)
        return Money(self.currency, round(exact))


@attrs.frozen
class Rule:
    """An earn rule of a program; which fields matter depends on ``kind`` (see the README's rule order)."""

    id: int
    program: str
    kind: str
    target: str | None
    multiplier: Decimal | None
    bonus_points: Points | None
    amount_minor: int | None
    starts_on: date | None
    ends_on: date | None
    active: bool

    def applies_on(self, day: date) -> bool:
        """True when the rule is active and ``day`` (a local date) is inside its validity window."""
        return (
            self.active
            and (self.starts_on is None or self.starts_on <= day)
            and (self.ends_on is None or day <= self.ends_on)
        )


@attrs.frozen
class Tier:
    """A tier of a program: reached at ``threshold`` qualifying points (or spend), earning at ``multiplier``."""

    code: str
    name: str
    rank: int
    threshold: Points
    multiplier: Decimal


@attrs.frozen
class Member:
    """A customer's membership of a program: balance, tier and since when."""

    customer_id: int
    program: str
    points: Points
    tier: str | None
    tier_since: datetime | None
    enrolled_at: datetime


@attrs.frozen
class TierChange:
    """A member's move from one tier to another (``old_tier`` None when unknown), by the job or a purchase."""

    program: str
    customer_id: int
    at: datetime
    old_tier: str | None
    new_tier: str
    actor: str


@attrs.frozen
class LedgerEntry:
    """One append-only ledger entry: who, which program, how many points (+/-), why and from what."""

    id: int
    program: str
    customer_id: int
    points: Points
    kind: str  # earn | reverse | redeem | expire | adjust
    reason: str
    source_kind: str
    source_id: str
    order_id: str | None
    amount_minor: int | None
    qualifying: bool
    created_at: datetime
    expires_at: datetime | None
    note: str | None
    actor: str


@attrs.frozen
class Reward:
    """Something members exchange points for: a product, a service or a discount, with a stock (None: unlimited)."""

    id: int
    program: str
    code: str
    name: str
    kind: str
    points_cost: Points
    stock: int | None
    value: Money | None
    description: str | None
    active: bool


@attrs.frozen
class Redemption:
    """A reward taken for points; ``code`` is the voucher code handed to the customer."""

    id: int
    program: str
    customer_id: int
    reward: str
    reward_name: str
    quantity: int
    points: Points
    status: str  # completed | used (on an order: ``order_id``, ``used_at``) | cancelled
    code: str
    created_at: datetime
    cancelled_at: datetime | None
    note: str | None
    order_id: str | None = None
    used_at: datetime | None = None


@attrs.frozen
class EarnLine:
    """One line of what an order earns: ``reason`` (purchase, birthday:2025, occasion:tet:2025) and points."""

    program: str
    reason: str
    points: Points
    detail: str


@attrs.frozen
class Statement:
    """A member's points over a period (local dates, both included): opening + movements = closing."""

    customer_id: int
    program: str
    start: date
    end: date
    opening: Points
    earned: Points
    reversed: Points
    spent: Points
    expired: Points
    adjusted: Points
    closing: Points
    entries: Sequence[LedgerEntry]


@attrs.frozen
class Mismatch:
    """A member whose balance row disagrees with its ledger (or whose open lots disagree with the balance)."""

    customer_id: int
    program: str
    balance: int
    ledger_sum: int
    open_lots: int
