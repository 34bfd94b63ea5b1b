"""What an order earns, rule by rule, in the documented order (pure functions: no database).

1. **Basis**: the order total, tax included unless the program says ``include_tax=False``.
2. **Minimum order**: below the program's ``min_order`` amount the purchase earns 0 points and no bonus.
3. **Base rate** with **product / category multipliers**: each line's share of the basis is weighted by
   the highest matching product rule (SKU or product id), else the highest matching category rule, else 1;
   ``earn_points`` per ``earn_amount_minor`` of the weighted basis.
4. **Tier multiplier** of the member's tier before this order.
5. **Day multiplier**: the highest multiplier of the birthday rule (on the customer's birthday) and the
   occasion rules falling on the order's local date (the business's time zone, ``crm.timezone``). They do
   not stack.
6. **Rounding**, once, with the program's rule (floor by default) — the ``purchase`` entry.
7. **Fixed bonuses**: a birthday bonus and each occasion's bonus, at most once per customer per year.

Sign-up and referral bonuses are not order rules: they are paid on enrolment and on the referred
customer's first order (see the service).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from crmkit.money import Money
from crmkit.vncalendar import is_birthday, is_occasion, local_date
from crmkit_loyalty.records import Program, Rule, Tier

_ONE = Fraction(1)


@attrs.frozen
class Earning:
    """One ledger entry an order produces: purchase points, or a once-a-year bonus."""

    reason: str  # purchase | birthday:<year> | occasion:<target>:<year>
    units: int
    amount_minor: int | None  # the spend behind it (purchase only)
    detail: str

    @property
    def is_purchase(self) -> bool:
        return self.reason == "purchase"


def basis_of(program: Program, order: Any) -> int:
    """The amount an order earns on: its total, minus tax when the program excludes tax."""
    total = int(order.total_minor) - (0 if program.include_tax else int(order.tax_minor or 0))
    return max(total, 0)


def order_earnings(
    program: Program,
    rules: Sequence[Rule],
    tier: Tier | None,
    order: Any,
    birth_date: date | None,
    zone: tzinfo,
    *,
    founding: tuple[int, int] | None = None,
) -> list[Earning]:
    """The entries ``order`` earns in ``program`` for a member in ``tier`` born on ``birth_date``; its day is
    the date it was placed in ``zone``; occasions are ``crmkit.vncalendar``'s (``founding``: the shop's founding day)."""
    day = local_date(order.placed_at, zone)
    active = [rule for rule in rules if rule.applies_on(day)]
    basis = basis_of(program, order)
    if basis == 0:
        return []
    minimum = max((rule.amount_minor or 0 for rule in active if rule.kind == "min_order"), default=0)
    if basis < minimum:
        below = f"below the minimum order of {Money(program.currency, minimum).format()}"
        return [Earning("purchase", 0, basis, below)]
    rate = _rate_text(program.currency, program.earn_points, program.earn_amount_minor)
    steps = [f"{Money(program.currency, basis).format()}{rate}"]
    weight = _line_weight(active, getattr(order, "lines", None) or ())
    if weight != 1:
        steps.append(f"product/category ×{_show(weight)}")
    exact = basis * weight * _units_per_minor(program.earn_points, program.earn_amount_minor, program.point_decimals)
    if tier is not None and tier.multiplier != 1:
        exact *= Fraction(tier.multiplier)
        steps.append(f"tier {tier.name} ×{_show(Fraction(tier.multiplier))}")
    birthday = is_birthday(birth_date, day)
    day_rules = [
        rule
        for rule in active
        if (rule.kind == "birthday" and birthday)
        or (rule.kind == "occasion" and rule.target is not None and is_occasion(rule.target, day, founding=founding))
    ]
    day_multiplier = max((Fraction(rule.multiplier) for rule in day_rules if rule.multiplier), default=_ONE)
    if day_multiplier != 1:
        exact *= day_multiplier
        steps.append(
            f"{'birthday/occasion' if len(day_rules) > 1 else _day_name(day_rules[0])} ×{_show(day_multiplier)}"
        )
    result = [Earning("purchase", program.round(exact), basis, ", ".join(steps) + f", {program.rounding}")]
    for rule in day_rules:
        if rule.bonus_points:
            units = program.to_units(rule.bonus_points, "bonus_points")
            reason = f"birthday:{day.year}" if rule.kind == "birthday" else f"occasion:{rule.target}:{day.year}"
            result.append(Earning(reason, units, None, f"{_day_name(rule)} bonus"))
    return result


@functools.lru_cache(maxsize=64)
def _units_per_minor(earn_points: Decimal, earn_amount_minor: int, point_decimals: int) -> Fraction:
    """Point units a program earns per minor unit of basis (the same for every order: kept, not recomputed)."""
    return Fraction(earn_points) * 10**point_decimals / earn_amount_minor


@functools.lru_cache(maxsize=64)
def _rate_text(currency: str, earn_points: Decimal, earn_amount_minor: int) -> str:
    """`` at 1 per 10.000 ₫``: how a purchase entry's note states the program's rate."""
    return f" at {earn_points.normalize():f} per {Money(currency, earn_amount_minor).format()}"


def refund_share(
    program: Program, purchase_units: int, purchase_amount: int, order_total: int, refunded_total: int
) -> tuple[int, int]:
    """Points and spend to have reversed, in total, once ``refunded_total`` of ``order_total`` was refunded.

    Proportional, rounded with the program's rule (the spend is floored), computed on the running
    total so that several partial refunds never drift from one refund of the same amount.
    """
    share = Fraction(min(refunded_total, order_total), order_total) if order_total > 0 else Fraction(1)
    return program.round(purchase_units * share), int(purchase_amount * share)


def _line_weight(rules: Sequence[Rule], lines: Sequence[Any]) -> Fraction:
    """The basis-weighted average multiplier of the order's lines (1 without product/category rules)."""
    products = [rule for rule in rules if rule.kind == "product"]
    categories = [rule for rule in rules if rule.kind == "category"]
    if not (products or categories):
        return _ONE
    total = sum(int(line.total_minor) for line in lines)
    if total <= 0:
        return _ONE
    weighted = Fraction(0)
    for line in lines:
        keys = {str(getattr(line, "sku", "") or ""), str(getattr(line, "product_id", "") or "")} - {""}
        category = (getattr(line, "category", None) or "").casefold()
        matched = [Fraction(r.multiplier or 1) for r in products if r.target in keys]
        if not matched:
            matched = [Fraction(r.multiplier or 1) for r in categories if (r.target or "").casefold() == category]
        weighted += int(line.total_minor) * max(matched, default=Fraction(1))
    return weighted / total


def _day_name(rule: Rule) -> str:
    return "birthday" if rule.kind == "birthday" else f"occasion {rule.target}"


def _show(value: Fraction) -> str:
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.4f}".rstrip("0").rstrip(".")
