"""The scorecard: every KPI against its target, with a traffic light and the trend against the previous period.

Targets (defaults in the KPI catalogue, overridden per KPI with ``crm.qci.set_target``) are either
*absolute* — a number in the KPI's unit (``90%`` or ``0.9`` for a share, ``24`` hours, ``150000``
for money in major units) — or *relative* to the previous period: ``+5%`` (at least 5% better than
last period), ``+0%`` (at least as good), ``-10%``.

Traffic lights, with ``t`` the target and ``tol`` the KPI's tolerance (10% unless set):

* higher is better — **green** when value ≥ t; **amber** when value ≥ t − tol × |t|; else **red**;
* lower is better — **green** when value ≤ t; **amber** when value ≤ t + tol × |t|; else **red**;
* **none** (grey) when the KPI has no value (no data / not available) or no target.

A relative target needs the previous period's value; without it the light is none. The data score
of an area is the mean of its lit KPIs, green = 100, amber = 50, red = 0 (None when none is lit).

A scorecard read by a user whose ``qci.read`` scope is their own or their teams' customers is
*scoped*: its KPIs count those customers only, and ``coverage``, the headline and every row say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import ValidationError
from crmkit.money import Money, minor_units
from crmkit_qci.areas import AREA_KEYS
from crmkit_qci.kpis import BY_KEY, HIGHER, OK, Coverage, Measure, format_value, kpi
from crmkit_qci.periods import Period

if TYPE_CHECKING:
    from crmkit import CRM

GREEN, AMBER, RED, NONE = "green", "amber", "red", "none"
LIGHT_POINTS = {GREEN: 100, AMBER: 50, RED: 0}
DEFAULT_TOLERANCE = Decimal("0.10")
TARGETS_SETTING = "qci.targets"
_RELATIVE = re.compile(r"^(?P<sign>[+-])\s*(?P<number>\d+(?:\.\d+)?)\s*%$")


@attrs.frozen
class Target:
    """A KPI's target: an absolute value in the KPI's stored unit, or a relative change on the previous period."""

    text: str  # as the user wrote it (shown)
    absolute: Decimal | None = None
    relative: Decimal | None = None  # +0.05 for "+5%"
    tolerance: Decimal = DEFAULT_TOLERANCE

    def value_for(self, previous: Measure | None) -> Decimal | None:
        """The number to compare with: the absolute value, or the previous period's value moved by ``relative``."""
        if self.absolute is not None:
            return self.absolute
        if previous is None or previous.status != OK or previous.value is None:
            return None
        return Decimal(previous.value) * (1 + (self.relative or 0))


@attrs.frozen
class Row:
    """One scorecard line: the measure, its target, light, the previous period's measure and the change."""

    measure: Measure
    direction: str
    target: Target | None
    target_value: Decimal | None
    light: str
    previous: Measure | None
    change: Decimal | None  # value − previous value (None when either is missing or not comparable)
    trend: str  # better | worse | same | n/a

    def as_dict(self) -> dict[str, Any]:
        """A flat record for ``--format json|csv`` and the report (values in stored units: minor, 0–1 shares)."""
        m = self.measure
        return {
            "kpi": m.key,
            "area": m.area,
            "title": m.title,
            "period": m.period,
            "status": m.status,
            "value": m.value,
            "unit": m.unit,
            "currency": m.currency,
            "display": m.display(),
            "detail": m.detail,
            "reason": m.reason,
            "source": m.source,
            "target": None if self.target is None else self.target.text,
            "target_value": self.target_value,
            "light": self.light,
            "previous": None if self.previous is None else self.previous.value,
            "previous_display": None if self.previous is None else self.previous.display(),
            "change": self.change,
            "trend": self.trend,
            "better_when": self.direction,
            "scoped_to": m.coverage.describe() if m.coverage.scoped else None,
        }

    def target_display(self) -> str:
        """The target in the KPI's unit (``≥ 90.0%``, ``≤ 24.0 h``), with the relative rule when there is one."""
        if self.target is None:
            return "—"
        sign = "≥" if self.direction == HIGHER else "≤"
        if self.target_value is None:
            return f"{self.target.text} vs previous (no previous value)"
        shown = format_value(self.measure.unit, _stored(self.measure.unit, self.target_value), self.measure.currency)
        return f"{sign} {shown}" + (f" ({self.target.text} vs previous)" if self.target.relative is not None else "")

    def change_display(self) -> str:
        """The change on the previous period in the KPI's unit with an arrow (``▲ +3.2 pp``), or ``—``."""
        if self.change is None:
            return "—"
        arrow = "▲" if self.change > 0 else "▼" if self.change < 0 else "="
        unit = self.measure.unit
        if unit in ("share", "points"):
            return f"{arrow} {self.change * 100:+.1f} pp"
        if unit == "money":
            amount = Money(self.measure.currency or "VND", abs(int(self.change))).format()
            return f"{arrow} {'+' if self.change >= 0 else '-'}{amount}"
        if unit == "rating":
            return f"{arrow} {self.change:+.2f}"
        return f"{arrow} {'+' if self.change >= 0 else ''}{format_value(unit, self.change, self.measure.currency)}"


@attrs.frozen
class Scorecard:
    """Every KPI of a period against its target; ``area_scores`` are the data scores per QCI area.

    ``coverage`` says whose customers the KPIs count (``coverage.scoped``: only the reader's own or teams')."""

    period: Period
    currency: str
    rows: tuple[Row, ...]
    coverage: Coverage = Coverage()

    @property
    def scoped(self) -> bool:
        """True when the KPIs count only the customers in the reader's scope, not every customer."""
        return self.coverage.scoped

    def area_scores(self) -> dict[str, float | None]:
        """Per area: the mean light points of its lit KPIs (green 100, amber 50, red 0), or None."""
        result: dict[str, float | None] = {}
        for area in AREA_KEYS:
            points = [LIGHT_POINTS[r.light] for r in self.rows if r.measure.area == area and r.light in LIGHT_POINTS]
            result[area] = round(sum(points) / len(points), 1) if points else None
        return result

    def lights(self) -> dict[str, int]:
        """How many KPIs are green, amber, red and unlit."""
        counts = {GREEN: 0, AMBER: 0, RED: 0, NONE: 0}
        for row in self.rows:
            counts[row.light] += 1
        return counts

    def headline(self) -> str:
        """One line: ``2026-10: 6 green, 3 amber, 4 red, 10 without a light (no data or no target)``, ending
        with ``· scoped to customers of lan's teams`` on a scoped scorecard."""
        n = self.lights()
        return (
            f"{self.period.label}: {n[GREEN]} green, {n[AMBER]} amber, {n[RED]} red, "
            f"{n[NONE]} without a light (no data, not available or no target)"
        ) + self.scope_note()

    def scope_note(self) -> str:
        """`` · scoped to customers of lan's teams`` on a scoped scorecard, else nothing."""
        return f" · scoped to {self.coverage.describe()}" if self.scoped else ""


def parse_target(
    key: str, text: str | int | float | Decimal, *, currency: str = "VND", tolerance: str | Decimal | None = None
) -> Target:
    """Read a target for KPI ``key`` (see the module docstring); refuses naming ``target`` with the KPI."""
    definition = kpi(key)
    raw = str(text).strip().replace(",", "") if not isinstance(text, float) else repr(text)
    tol = _tolerance(key, tolerance)
    match = _RELATIVE.match(raw)
    if match:
        relative = Decimal(match["number"]) / 100 * (1 if match["sign"] == "+" else -1)
        return Target(raw, relative=relative, tolerance=tol)
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValidationError(
            f"{key}: {text!r} is not a target (a number such as 90%, 0.9, 24 or 150000; "
            "or a change on the previous period such as +5%)",
            field="target",
        ) from None
    if not value.is_finite():
        raise ValidationError(f"{key}: {text!r} is not a finite number", field="target")
    if raw.endswith("%"):
        if definition.unit not in ("share", "points"):
            raise ValidationError(
                f"{key}: {text!r}: only shares take a % target ({key} is in {definition.unit})", field="target"
            )
        value = value / 100
    elif definition.unit == "money":
        value = value.scaleb(minor_units(currency))  # typed in major units, compared in minor units
    if definition.unit in ("share",) and not Decimal(-10) <= value <= Decimal(10):
        raise ValidationError(f"{key}: {text!r} is not a share (write 90% or 0.9)", field="target")
    if definition.unit == "rating" and not Decimal(1) <= value <= Decimal(5):
        raise ValidationError(f"{key}: a rating target is between 1 and 5, not {text!r}", field="target")
    return Target(raw, absolute=value, tolerance=tol)


def _tolerance(key: str, tolerance: str | Decimal | None) -> Decimal:
    if tolerance is None:
        return DEFAULT_TOLERANCE
    raw = str(tolerance).strip()
    try:
        value = Decimal(raw[:-1]) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        raise ValidationError(f"{key}: {tolerance!r} is not a tolerance (e.g. 10% or 0.1)", field="tolerance") from None
    if not Decimal(0) <= value <= Decimal(1):
        raise ValidationError(f"{key}: the tolerance is between 0% and 100%, not {tolerance!r}", field="tolerance")
    return value


def targets(crm: CRM, currency: str) -> dict[str, Target | None]:
    """The target of every KPI: the stored one (``qci.targets`` setting) or the catalogue default (or None)."""
    stored: Mapping[str, Any] = crm.settings.get(TARGETS_SETTING) or {}
    result: dict[str, Target | None] = {}
    for key, definition in BY_KEY.items():
        entry = stored.get(key)
        if entry is not None:
            result[key] = (
                None
                if entry.get("target") is None
                else parse_target(key, entry["target"], currency=currency, tolerance=entry.get("tolerance"))
            )
        else:
            result[key] = None if definition.target is None else parse_target(key, definition.target, currency=currency)
    return result


def light(direction: str, value: Decimal | None, target: Decimal | None, tolerance: Decimal) -> str:
    """Green, amber, red or none by the thresholds in the module docstring."""
    if value is None or target is None:
        return NONE
    band = tolerance * abs(target)
    if direction == HIGHER:
        return GREEN if value >= target else AMBER if value >= target - band else RED
    return GREEN if value <= target else AMBER if value <= target + band else RED


def build(
    period: Period,
    currency: str,
    current: Sequence[Measure],
    previous: Sequence[Measure],
    goals: Mapping[str, Target | None],
    coverage: Coverage | None = None,
) -> Scorecard:
    """Combine this period's and the previous period's measures with the targets into a scorecard (of
    ``coverage``: every customer unless given)."""
    before = {m.key: m for m in previous}
    rows = []
    for m in current:
        definition = BY_KEY[m.key]
        prev = None if definition.snapshot else before.get(m.key)
        target = goals.get(m.key)
        target_value = None if target is None else target.value_for(prev)
        value = None if m.status != OK or m.value is None else Decimal(m.value)
        comparable = value is not None and prev is not None and prev.status == OK and prev.value is not None
        change = value - Decimal(prev.value) if comparable else None  # type: ignore[operator, union-attr, arg-type]
        trend = (
            "n/a"
            if change is None
            else "same"
            if change == 0
            else ("better" if (change > 0) == (definition.direction == HIGHER) else "worse")
        )
        rows.append(
            Row(
                m,
                definition.direction,
                target,
                target_value,
                light(definition.direction, value, target_value, target.tolerance if target else DEFAULT_TOLERANCE),
                prev,
                change,
                trend,
            )
        )
    return Scorecard(period, currency, tuple(rows), coverage or Coverage())


def _stored(unit: str, value: Decimal) -> int | Decimal:
    return int(value) if unit in ("money", "count") else value
