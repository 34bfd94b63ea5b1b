"""Date-triggered campaigns: birthdays, first-purchase anniversaries, and the calendar's occasions.

``crmkit campaigns run-due`` handles each local day (Asia/Ho_Chi_Minh unless configured) once per
campaign, catching up at most ``CATCH_UP_DAYS`` missed days. A day's run targets the customers
whose occasion falls ``days_before`` days later; its period is the occasion's year, so the unique
outbox key (campaign, period, customer) sends each occasion once per customer per year, however
often cron runs. Every occasion but the customer's own comes from ``crmkit.vncalendar`` (solar and lunar days,
Tết, the founding day), the same definitions loyalty's occasion rules use.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

import marshmallow
import sqlalchemy as sa

from crmkit.plugin_api import core_tables as core
from crmkit.vncalendar import FIXED_OCCASIONS, FOUNDING_DAY, LUNAR_OCCASIONS, check_occasion, occasion_dates
from crmkit_campaigns.segment_sql import Clock, shift

#: Each customer's own occasions; every other occasion is the calendar's (``crmkit.vncalendar.check_occasion``).
PERSONAL = ("birthday", "first_purchase")
#: The named occasions (any solar ``DD/MM``/``MM-DD`` or lunar ``DD/MM âm lịch`` day is accepted too).
OCCASIONS = (*PERSONAL, FOUNDING_DAY, "tet", *LUNAR_OCCASIONS, *FIXED_OCCASIONS)


def normalize(occasion: str) -> str:
    """``birthday``, ``first_purchase``, or the calendar's stored form of any occasion it accepts; ``ValueError``."""
    name = occasion.strip().lower()
    if name in PERSONAL:
        return name
    try:
        return check_occasion(occasion)
    except ValueError as exc:
        raise ValueError(str(exc).replace(": use ", ": use birthday, first_purchase, ", 1)) from None


def validate(occasion: str) -> None:
    """The schema's check of ``occasion`` (a marshmallow ``ValidationError`` with the accepted spellings)."""
    try:
        normalize(occasion)
    except ValueError as exc:
        raise marshmallow.ValidationError(str(exc)) from None


CATCH_UP_DAYS = 7
#: How many years back first-purchase anniversaries are looked for.
ANNIVERSARY_YEARS = 60


def days_to_process(checked_through: date | None, started: date, today: date) -> list[date]:
    """The local days a run-due pass handles: after the last one handled, from the start, at most a week back."""
    first = max(started, today - timedelta(days=CATCH_UP_DAYS))
    if checked_through is not None:
        first = max(first, checked_through + timedelta(days=1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def condition(
    occasion: str, target: date, *, clock: Clock, founding_day: tuple[int, int] | None, purchases: Any = None
) -> sa.ColumnElement[bool] | None:
    """Who celebrates ``occasion`` on local date ``target``: a condition over ``customers``, or None (nobody).

    ``purchases`` is the purchase subquery (``crmkit.purchases``), needed by ``first_purchase``.
    """
    if occasion == "birthday":
        return _month_day_match(core.customers.c.birth_date, target)
    if occasion == "first_purchase":
        return _anniversary(target, clock, purchases)
    # the calendar's occasions (Tết's first day, lunar days, the founding day, solar days): the whole audience
    return sa.true() if target in occasion_dates(occasion, target.year, founding=founding_day) else None


def _month_day_match(column: Any, target: date) -> sa.ColumnElement[bool]:
    """Dates whose month and day are ``target``'s (29 February celebrates on the 28th in other years)."""
    month, day = sa.extract("month", column), sa.extract("day", column)
    same = sa.and_(month == target.month, day == target.day)
    if (target.month, target.day) == (2, 28) and not calendar.isleap(target.year):
        return sa.or_(same, sa.and_(month == 2, day == 29))
    return same


def _anniversary(target: date, clock: Clock, purchases: Any) -> sa.ColumnElement[bool] | None:
    """Customers whose first purchase (local date) was on ``target``'s day and month in an earlier year."""
    if purchases is None:
        return None
    p = purchases.c
    first = sa.func.min(p.occurred_at)
    days = []
    for years in range(1, ANNIVERSARY_YEARS + 1):
        earlier = shift(target, months=-12 * years)
        if (earlier.month, earlier.day) == (target.month, target.day):
            days.append(earlier)
        if (target.month, target.day) == (2, 28) and not calendar.isleap(target.year) and calendar.isleap(earlier.year):
            days.append(date(earlier.year, 2, 29))
    ranges = [sa.and_(first >= clock.day_start(d), first < clock.day_start(d + timedelta(days=1))) for d in days]
    # One aggregation over the purchases: each customer's first one, kept when it falls on an anniversary.
    firsts = sa.select(p.customer_id).where(p.amount_minor > 0).group_by(p.customer_id).having(sa.or_(*ranges))
    return core.customers.c.id.in_(firsts)
