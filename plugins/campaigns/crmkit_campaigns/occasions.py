"""Date-triggered campaigns: birthdays, first-purchase anniversaries, fixed dates and Tết.

``crmkit campaigns run-due`` handles each local day (Asia/Ho_Chi_Minh unless configured) once per
campaign, catching up at most ``CATCH_UP_DAYS`` missed days. A day's run targets the customers
whose occasion falls ``days_before`` days later; its period is the occasion's year, so the unique
outbox key (campaign, period, customer) sends each occasion once per customer per year, however
often cron runs. Dates come from ``crmkit.calendar`` (Tết from the lunar calendar).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from crmkit.calendar import FIXED_OCCASIONS, occasion_date, tet
from crmkit.core import tables as core
from crmkit_campaigns.segment_sql import Clock, shift

OCCASIONS = ("birthday", "first_purchase", "founding_day", "tet", *FIXED_OCCASIONS)
CATCH_UP_DAYS = 7
#: How many years back first-purchase anniversaries are looked for.
ANNIVERSARY_YEARS = 60


def days_to_process(checked_through: date | None, started: date, today: date) -> list[date]:
    """The local days a run-due pass handles: after the last one handled, from the start, at most a week back."""
    first = max(started, today - timedelta(days=CATCH_UP_DAYS))
    if checked_through is not None:
        first = max(first, checked_through + timedelta(days=1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def condition(occasion: str, target: date, *, clock: Clock, founding_day: tuple[int, int] | None,
              purchases: Any = None) -> sa.ColumnElement[bool] | None:
    """Who celebrates ``occasion`` on local date ``target``: a condition over ``customers``, or None (nobody).

    ``purchases`` is the purchase subquery (``crmkit.purchases``), needed by ``first_purchase``.
    """
    if occasion == "birthday":
        return _month_day_match(core.customers.c.birth_date, target)
    if occasion == "first_purchase":
        return _anniversary(target, clock, purchases)
    if occasion == "tet":
        return sa.true() if tet(target.year) == target else None
    if occasion == "founding_day":
        return sa.true() if founding_day and (target.day, target.month) == founding_day else None
    return sa.true() if occasion_date(occasion, target.year) == target else None


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

