"""One row per customer (purchases and purchase occasions, as the aggregates hold them) for one currency, as of a date.

Today over the whole history, that is the aggregate table itself (one indexed row per customer).
For a past date, counting only a recent window, or with each transaction its own occasion, the
transactions are rescanned set-based into a temporary table with the same columns and indexes, so
the measures above run the same SQL either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmkit.plugin_api import Id, UTCDateTime
from crmkit_analytics import aggregates
from crmkit_analytics.models import customer_value

if TYPE_CHECKING:
    from crmkit import CRM

_COLUMNS = (
    "customer_id",
    "first_purchase_at",
    "last_purchase_at",
    "purchase_count",
    "total_minor",
    "occasions",
    "first_day",
    "last_day",
    "first_occasion_minor",
    "lowest_occasion_minor",
    "occasions_minor",
)


@contextmanager
def customer_values(
    crm: CRM,
    conn: sa.Connection,
    currency: str,
    as_of: datetime,
    window_days: int | None = None,
    *,
    by_day: bool = True,
    free_buyers: bool = False,
) -> Iterator[sa.FromClause]:
    """Yield a selectable of :data:`_COLUMNS` for customers with purchases in ``currency`` up to ``as_of``
    (within ``window_days`` before it, if given; occasions by local day unless ``by_day`` is False).

    ``free_buyers`` also counts customers whose occasions up to a past ``as_of`` all cost nothing (the BTYD
    models' view); the kept aggregates, read for today, hold customers with a paid purchase only.
    """
    cv = customer_value.c
    if window_days is None and by_day:
        newest = conn.execute(sa.select(sa.func.max(cv.last_purchase_at)).where(cv.currency == currency)).scalar()
        if newest is None or newest <= as_of:
            yield sa.select(*(cv[name] for name in _COLUMNS)).where(cv.currency == currency).subquery("customer_values")
            return
    scratch = sa.Table(
        "analytics_values_scratch",
        sa.MetaData(),
        sa.Column("customer_id", Id, primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("first_purchase_at", UTCDateTime, nullable=False),
        sa.Column("last_purchase_at", UTCDateTime, nullable=False),
        sa.Column("purchase_count", sa.Integer, nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in _COLUMNS[5:]),
        prefixes=["TEMPORARY"],
    )
    scratch.drop(conn, checkfirst=True)
    scratch.create(conn)
    try:
        since = None if window_days is None else as_of - timedelta(days=window_days)
        query = aggregates.occasions_select(
            crm, by_day=by_day, currency=currency, until=as_of, since=since, free_buyers=free_buyers
        )
        conn.execute(scratch.insert().from_select(aggregates.COLUMNS, query), {"now": crm.now()})
        for column in ("last_purchase_at", "purchase_count", "total_minor"):
            sa.Index(f"ix_analytics_values_scratch_{column}", scratch.c[column]).create(conn)
        yield scratch
    finally:
        scratch.drop(conn)
