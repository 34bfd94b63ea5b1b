"""Reporting periods: a month (``2026-10``), a quarter (``2026-Q4``) or a year (``2026``) of the business's days.

Boundaries are midnight in the business's time zone (the ``timezone`` setting, Asia/Ho_Chi_Minh by
default), held as UTC instants; a period is ``[start, end)``. The previous period is the one of the
same kind just before it (September for October, Q3 for Q4, 2025 for 2026).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import attrs

from crmkit import ValidationError
from crmkit.vncalendar import DEFAULT_TIMEZONE, local_midnight

if TYPE_CHECKING:
    from crmkit import CRM

_PATTERN = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|[Qq](?P<quarter>[1-4])))?$")


@attrs.frozen
class Period:
    """A month, quarter or year of local days; ``start``/``end`` are UTC instants, ``end`` exclusive."""

    kind: str  # month | quarter | year
    year: int
    number: int  # month 1–12, quarter 1–4, or 1 for a year
    zone: str = DEFAULT_TIMEZONE

    @property
    def label(self) -> str:
        """``2026-10``, ``2026-Q4`` or ``2026``."""
        return {"month": f"{self.year}-{self.number:02d}", "quarter": f"{self.year}-Q{self.number}"}.get(
            self.kind, str(self.year)
        )

    @property
    def first_day(self) -> date:
        """The first local day of the period."""
        month = {"month": self.number, "quarter": 3 * self.number - 2}.get(self.kind, 1)
        return date(self.year, month, 1)

    @property
    def months(self) -> int:
        """How many months long the period is."""
        return {"month": 1, "quarter": 3}.get(self.kind, 12)

    def month_labels(self) -> list[str]:
        """``YYYY-MM`` of every month in the period (recorded costs are per month)."""
        first = self.first_day
        return [f"{y}-{m:02d}" for y, m in (_add_months(first.year, first.month, i) for i in range(self.months))]

    @property
    def next_first_day(self) -> date:
        """The first local day after the period."""
        year, month = _add_months(self.first_day.year, self.first_day.month, self.months)
        return date(year, month, 1)

    @property
    def start(self) -> datetime:
        """The period's first instant, UTC."""
        return _utc_midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the period, UTC."""
        return _utc_midnight(self.next_first_day, self.zone)

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        if self.number > 1:
            return attrs.evolve(self, number=self.number - 1)
        last = {"month": 12, "quarter": 4}.get(self.kind, 1)
        return attrs.evolve(self, year=self.year - 1, number=last)


def parse(text: str, zone: str = DEFAULT_TIMEZONE) -> Period:
    """``2026-10`` / ``2026-Q4`` / ``2026`` as a Period; anything else is refused naming ``period``."""
    match = _PATTERN.match(str(text).strip())
    if not match:
        raise ValidationError(
            f"{text!r} is not a period: use YYYY-MM (2026-10), YYYY-Qn (2026-Q4) or YYYY", field="period"
        )
    year = int(match["year"])
    if match["month"]:
        month = int(match["month"])
        if not 1 <= month <= 12:
            raise ValidationError(f"{text!r}: month {month} does not exist", field="period")
        return Period("month", year, month, zone)
    if match["quarter"]:
        return Period("quarter", year, int(match["quarter"]), zone)
    return Period("year", year, 1, zone)


def zone_of(crm: CRM) -> str:
    """The name of the business's time zone (``crm.timezone``)."""
    return crm.timezone.key


def resolve(crm: CRM, period: str | Period | None) -> Period:
    """The period asked for, or by default the last complete month in the business's time zone."""
    zone = zone_of(crm)
    if isinstance(period, Period):
        return period
    if period is not None:
        return parse(period, zone)
    today = crm.today()
    return Period("month", today.year, today.month, zone).previous()


def current_month(crm: CRM) -> Period:
    """The month running now, in the business's time zone."""
    today = crm.today()
    return Period("month", today.year, today.month, zone_of(crm))


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def _utc_midnight(day: date, zone: str) -> datetime:
    return local_midnight(day, ZoneInfo(zone))
