"""KPIs, breakdowns and cohorts over the transactions and the core tables, grouped in SQL by the month of the
business's time zone (``crm.timezone``), as sales' revenue report groups them.

Definitions (per month, one currency; a purchase is a transaction with a positive net amount):

* **acquired** — customers whose first purchase ever (in the currency) falls in the month;
* **active** — customers with at least one purchase in the month;
* **orders**, **revenue** — purchases and their net amount; **AOV** = revenue / orders;
  **purchase frequency** = orders / active customers;
* **retention** — of the customers active in the previous month, the share active again in this one;
  **churn** = 1 − retention (empty when the previous month had no active customer);
* **repeat-purchase rate** — share of buyers (as of the date) with two purchases or more;
* **data freshness** — share of active customers whose record was updated in the last N days;
* **CRM activity** — interactions per employee per month (inbound, outbound, customers reached).

A **cohort** is the customers whose first purchase was in a month; its row gives, for each following
month, the share of the cohort that purchased in that month (month 0 is always 100%).

Every function takes ``scope``: for a ``customer_id`` column, the SQL predicate of the customers the
figures may count (the acting user's ``analytics.read`` scope; always true for the system), so a
scoped user's KPIs aggregate only their customers, in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.plugin_api import core_tables as core
from crmkit.plugin_api import month_index, month_label
from crmkit.vncalendar import local_midnight
from crmkit_analytics import aggregates

if TYPE_CHECKING:
    from crmkit import CRM

#: Age bands by age in whole years at the as-of date (lower bound, label).
AGE_BANDS = ((65, "65+"), (55, "55-64"), (45, "45-54"), (35, "35-44"), (25, "25-34"), (18, "18-24"), (0, "under 18"))
UNKNOWN = "(unknown)"
DIMENSIONS = ("age_band", "gender", "province", "city", "category", "channel", "period")
#: ``scope(customer_id_column)`` → the predicate of the customers a report may count.
Scope = Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]


def local_month(moment: datetime, zone: tzinfo) -> int:
    """The :func:`~crmkit.sqlfunctions.month_index` of ``moment``'s month in ``zone``."""
    local = moment.astimezone(zone)
    return local.year * 12 + local.month - 1


def first_month(as_of: datetime, months: int, zone: tzinfo) -> datetime:
    """The instant (UTC) the month of ``zone`` ``months − 1`` months before ``as_of``'s month begins there."""
    index = local_month(as_of, zone) - (months - 1)
    return local_midnight(date(index // 12, index % 12 + 1, 1), zone)


def _purchases(
    crm: CRM, currency: str, start: datetime | None, end: datetime, scope: Scope
) -> tuple[sa.Subquery, sa.ColumnElement[bool]]:
    vt = aggregates.transactions(crm)
    window = sa.and_(vt.c.currency == currency, vt.c.amount_minor > 0, vt.c.occurred_at <= end, scope(vt.c.customer_id))
    return vt, window if start is None else sa.and_(window, vt.c.occurred_at >= start)


#: GROUP BY the select's labelled key: PostgreSQL rejects a repeated expression whose parameters differ.
GROUP = sa.literal_column("grp")
#: The same for a labelled local month (``month_index(...).label("month_key")``).
MONTH = sa.literal_column("month_key")


def monthly(
    crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, months: int, scope: Scope
) -> list[dict[str, Any]]:
    """One row per month (oldest first) with acquired, active, orders, revenue, AOV, frequency, retention, churn."""
    zone = crm.timezone
    start = first_month(as_of, months, zone)
    since = first_month(start, 2, zone)  # one month more, for retention
    vt, window = _purchases(crm, currency, since, as_of, scope)
    month = month_index(vt.c.occurred_at, zone, since, as_of).label("month_key")
    per_month = {
        m: (n, revenue, active)
        for m, n, revenue, active in conn.execute(
            sa.select(
                month, sa.func.count(), sa.func.sum(vt.c.amount_minor), sa.func.count(sa.distinct(vt.c.customer_id))
            )
            .where(window)
            .group_by(MONTH)
        )
    }
    first = (
        sa.select(vt.c.customer_id, sa.func.min(vt.c.occurred_at).label("first_at"))
        .where(vt.c.currency == currency, vt.c.amount_minor > 0, scope(vt.c.customer_id))
        .group_by(vt.c.currency, vt.c.customer_id)
        .subquery("first")
    )
    acquired = dict(
        conn.execute(
            sa.select(month_index(first.c.first_at, zone, start, as_of).label("month_key"), sa.func.count())
            .where(first.c.first_at >= start, first.c.first_at <= as_of)
            .group_by(MONTH)
        ).all()
    )
    pairs = sa.select(vt.c.customer_id, month.label("m")).where(window).distinct().cte("active_months")
    a, b = pairs.alias("a"), pairs.alias("b")
    retained = dict(
        conn.execute(
            sa.select(b.c.m, sa.func.count())
            .select_from(a.join(b, sa.and_(b.c.customer_id == a.c.customer_id, b.c.m == a.c.m + 1)))
            .group_by(b.c.m)
        ).all()
    )
    rows = []
    first_index = local_month(start, zone)
    for m in range(first_index, first_index + months):
        orders, revenue, active = per_month.get(m, (0, 0, 0))
        previous_active = per_month.get(m - 1, (0, 0, 0))[2]
        retention = retained.get(m, 0) / previous_active if previous_active else None
        rows.append(
            {
                "month": month_label(m),
                "acquired": int(acquired.get(m, 0)),
                "active": int(active),
                "orders": int(orders),
                "revenue_minor": int(revenue or 0),
                "aov_minor": round(int(revenue) / orders) if orders else None,
                "purchase_frequency": round(orders / active, 3) if active else None,
                "retention": None if retention is None else round(retention, 4),
                "churn": None if retention is None else round(1 - retention, 4),
            }
        )
    return rows


def overview(
    crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, freshness_days: int, scope: Scope
) -> dict[str, Any]:
    """Headline figures as of the date: customers, buyers, repeat-purchase rate, AOV, frequency, data freshness."""
    c = core.customers.c
    mine = sa.and_(c.status == "active", scope(c.id))
    customers = conn.execute(sa.select(sa.func.count()).where(mine, c.created_at <= as_of)).scalar_one()
    fresh = conn.execute(
        sa.select(sa.func.count()).where(
            mine, c.updated_at > as_of - timedelta(days=freshness_days), c.updated_at <= as_of
        )
    ).scalar_one()
    vt, window = _purchases(crm, currency, None, as_of, scope)
    per_customer = (
        sa.select(vt.c.customer_id, sa.func.count().label("n"), sa.func.sum(vt.c.amount_minor).label("s"))
        .where(window)
        .group_by(vt.c.currency, vt.c.customer_id)
        .subquery("per_customer")
    )
    p = per_customer.c
    buyers, repeat, orders, revenue = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((p.n >= 2, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(p.n), 0),
            sa.func.coalesce(sa.func.sum(p.s), 0),
        )
    ).one()
    return {
        "as_of": as_of,
        "currency": currency,
        "customers": int(customers),
        "buyers": int(buyers),
        "prospects": int(customers) - int(buyers),
        "repeat_purchase_rate": round(repeat / buyers, 4) if buyers else None,
        "orders": int(orders),
        "revenue_minor": int(revenue),
        "aov_minor": round(int(revenue) / orders) if orders else None,
        "purchase_frequency": round(orders / buyers, 3) if buyers else None,
        "freshness_days": freshness_days,
        "fresh_customers": int(fresh),
        "data_freshness": round(fresh / customers, 4) if customers else None,
    }


def breakdown(
    crm: CRM, conn: sa.Connection, *, by: str, currency: str, start: datetime, end: datetime, scope: Scope
) -> list[dict[str, Any]]:
    """Customers, buyers, orders and revenue in [start, end] grouped by one dimension (see ``DIMENSIONS``)."""
    if by not in DIMENSIONS:
        raise ValidationError(f"unknown breakdown {by!r} (one of {', '.join(DIMENSIONS)})", field="by")
    vt, window = _purchases(crm, currency, start, end, scope)
    if by in ("category", "channel", "period"):
        key = (
            month_index(vt.c.occurred_at, crm.timezone, start, end)
            if by == "period"
            else sa.func.coalesce(vt.c[by], UNKNOWN)
        )
        rows = conn.execute(
            sa.select(
                key.label("grp"),
                sa.func.count(sa.distinct(vt.c.customer_id)),
                sa.func.count(),
                sa.func.sum(vt.c.amount_minor),
            )
            .where(window)
            .group_by(GROUP)
            .order_by(GROUP)
        ).all()
        return [
            {
                by: month_label(k) if by == "period" else k,
                "customers": None,
                "buyers": int(b),
                "orders": int(n),
                "revenue_minor": int(s),
            }
            for k, b, n, s in rows
        ]
    c = core.customers.c
    spend = (
        sa.select(vt.c.customer_id, sa.func.count().label("orders"), sa.func.sum(vt.c.amount_minor).label("revenue"))
        .where(window)
        .group_by(vt.c.currency, vt.c.customer_id)
        .subquery("spend")
    )
    key = _age_band(c.birth_date, end.date()) if by == "age_band" else sa.func.coalesce(c[by], UNKNOWN)
    rows = conn.execute(
        sa.select(
            key.label("grp"),
            sa.func.count(),
            sa.func.count(spend.c.customer_id),
            sa.func.coalesce(sa.func.sum(spend.c.orders), 0),
            sa.func.coalesce(sa.func.sum(spend.c.revenue), 0),
        )
        .select_from(core.customers.outerjoin(spend, spend.c.customer_id == c.id))
        .where(c.status == "active", scope(c.id))
        .group_by(GROUP)
    ).all()
    ordered = sorted(rows, key=lambda r: (-int(r[4]), str(r[0])))
    return [
        {by: k, "customers": int(n), "buyers": int(b), "orders": int(o), "revenue_minor": int(s)}
        for k, n, b, o, s in ordered
    ]


def _age_band(birth_date: sa.ColumnElement[date], on: date) -> sa.ColumnElement[str]:
    def years_before(years: int) -> date:
        try:
            return on.replace(year=on.year - years)
        except ValueError:  # 29 February
            return on.replace(year=on.year - years, day=28)

    return sa.case(
        (birth_date.is_(None), UNKNOWN),
        *((birth_date <= years_before(low), label) for low, label in AGE_BANDS if low > 0),
        else_=AGE_BANDS[-1][1],
    )


def cohorts(
    crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, months: int, scope: Scope
) -> list[dict[str, Any]]:
    """Cohorts by first-purchase month over the last ``months`` months: size and share active in month 0, 1, …"""
    zone = crm.timezone
    start = first_month(as_of, months, zone)
    vt = aggregates.transactions(crm)
    mine = sa.and_(vt.c.currency == currency, vt.c.amount_minor > 0, vt.c.occurred_at <= as_of, scope(vt.c.customer_id))
    first = (
        sa.select(vt.c.customer_id, sa.func.min(vt.c.occurred_at).label("first_at"))
        .where(mine)
        .group_by(vt.c.currency, vt.c.customer_id)
        .subquery("first")
    )
    cohort = (
        sa.select(first.c.customer_id, month_index(first.c.first_at, zone, start, as_of).label("cohort"))
        .where(first.c.first_at >= start)
        .subquery("cohort")
    )
    active = (
        sa.select(vt.c.customer_id, month_index(vt.c.occurred_at, zone, start, as_of).label("m"))
        .where(mine, vt.c.occurred_at >= start)
        .distinct()
        .subquery("active")
    )
    offset = (active.c.m - cohort.c.cohort).label("offset")
    counts = conn.execute(
        sa.select(cohort.c.cohort, offset, sa.func.count())
        .select_from(cohort.join(active, active.c.customer_id == cohort.c.customer_id))
        .group_by(cohort.c.cohort, offset)
    ).all()
    table: dict[int, dict[int, int]] = {}
    for cohort_month, k, n in counts:
        table.setdefault(cohort_month, {})[k] = n
    rows = []
    last = local_month(as_of, zone)
    for cohort_month in sorted(table):
        size = table[cohort_month].get(0, 0)
        shares = [
            round(table[cohort_month].get(k, 0) / size, 4) if size else None for k in range(last - cohort_month + 1)
        ]
        rows.append({"cohort": month_label(cohort_month), "customers": size, "retention": shares})
    return rows


def activity(crm: CRM, conn: sa.Connection, *, as_of: datetime, months: int, scope: Scope) -> list[dict[str, Any]]:
    """Interactions per employee per month (inbound, outbound, customers reached), busiest first within a month."""
    i = core.interactions.c
    start = first_month(as_of, months, crm.timezone)
    month = month_index(i.occurred_at, crm.timezone, start, as_of).label("month_key")
    employee = sa.func.coalesce(i.employee, UNKNOWN)
    rows = conn.execute(
        sa.select(
            month,
            employee.label("grp"),
            sa.func.count(),
            sa.func.sum(sa.case((i.direction == "inbound", 1), else_=0)),
            sa.func.count(sa.distinct(i.customer_id)),
        )
        .where(i.occurred_at >= start, i.occurred_at <= as_of, scope(i.customer_id))
        .group_by(MONTH, GROUP)
        .order_by(MONTH, sa.func.count().desc(), GROUP)
    ).all()
    return [
        {
            "month": month_label(m),
            "employee": e,
            "interactions": int(n),
            "inbound": int(inbound),
            "outbound": int(n) - int(inbound),
            "customers": int(reached),
        }
        for m, e, n, inbound, reached in rows
    ]
