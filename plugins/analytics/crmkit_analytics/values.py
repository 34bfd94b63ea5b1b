"""One row per customer (first and last purchase, purchases, total) for one currency, as of a date.

Today over the whole history, that is the aggregate table itself (one indexed row per customer).
For a past date, or counting only a recent window, the transactions are rescanned set-based into a
temporary table with the same columns and indexes, so the measures above run the same SQL either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmkit.core.types import Id, UTCDateTime
from crmkit_analytics import aggregates
from crmkit_analytics.models import customer_value

if TYPE_CHECKING:
    from crmkit import CRM

_COLUMNS = ("customer_id", "first_purchase_at", "last_purchase_at", "purchase_count", "total_minor")


@contextmanager
def customer_values(crm: CRM, conn: sa.Connection, currency: str, as_of: datetime,
                    window_days: int | None = None) -> Iterator[sa.FromClause]:
    """Yield a selectable of ``customer_id, first_purchase_at, last_purchase_at, purchase_count, total_minor``
    for customers with purchases in ``currency`` up to ``as_of`` (within ``window_days`` before it, if given)."""
    cv = customer_value.c
    if window_days is None:
        newest = conn.execute(sa.select(sa.func.max(cv.last_purchase_at)).where(cv.currency == currency)).scalar()
        if newest is None or newest <= as_of:
            yield sa.select(*(cv[name] for name in _COLUMNS)).where(cv.currency == currency).subquery("customer_values")
            return
    scratch = sa.Table(
        "analytics_values_scratch", sa.MetaData(),
        sa.Column("customer_id", Id, primary_key=True),
        sa.Column("first_purchase_at", UTCDateTime, nullable=False),
        sa.Column("last_purchase_at", UTCDateTime, nullable=False),
        sa.Column("purchase_count", sa.Integer, nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        prefixes=["TEMPORARY"],
    )
    scratch.drop(conn, checkfirst=True)
    scratch.create(conn)
    try:
        vt = aggregates.transactions(crm)
        query = (
            sa.select(vt.c.customer_id, sa.func.min(vt.c.occurred_at), sa.func.max(vt.c.occurred_at), sa.func.count(),
                      sa.func.sum(vt.c.amount_minor))
            .where(vt.c.currency == currency, vt.c.amount_minor > 0, vt.c.occurred_at <= as_of)
            .group_by(vt.c.currency, vt.c.customer_id)  # currency first: a table scan, not index walks
        )
        if window_days is not None:
            query = query.where(vt.c.occurred_at > as_of - timedelta(days=window_days))
        conn.execute(scratch.insert().from_select(list(_COLUMNS), aggregates.only_active(query)))
        for column in ("last_purchase_at", "purchase_count", "total_minor"):
            sa.Index(f"ix_analytics_values_scratch_{column}", scratch.c[column]).create(conn)
        yield scratch
    finally:
        scratch.drop(conn)
