"""Purchase history: the union of every ``crmkit_value_transactions`` source, and the per-customer aggregates.

A *purchase* is a value transaction with a positive net amount (a fully refunded order, net 0,
is not one). The aggregate row of a customer and currency holds the first and last purchase
time, the number of purchases and the total net amount; it is recomputed for the customers an
order touches inside that order's transaction (so re-delivered or refunded orders never
double-count), rebuilt set-based for everyone with :func:`rebuild`, and combined arithmetically
when two customers merge. Only active customers have aggregates (erased ones are removed).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import PluginError
from crmkit.core import tables as core
from crmkit.core.types import Id, UTCDateTime, utcnow
from crmkit_analytics.models import REBUILT_INDEXES, customer_value

if TYPE_CHECKING:
    from crmkit import CRM

REQUIRED = ("customer_id", "occurred_at", "amount_minor", "currency")
#: Optional columns and their types; a source without one gives NULL.
OPTIONAL = {"margin_minor": sa.BigInteger(), "category": sa.String(), "channel": sa.String()}
_TYPES = {"customer_id": Id, "occurred_at": UTCDateTime(), "amount_minor": sa.BigInteger(), "currency": sa.String(),
          **OPTIONAL}


_cache: weakref.WeakKeyDictionary[CRM, dict[str, Any]] = weakref.WeakKeyDictionary()


def _cached(crm: CRM, key: str, build: Any) -> Any:
    """Statements built once per CRM: the sources' selectables do not change while it is open."""
    mine = _cache.setdefault(crm, {})
    if key not in mine:
        mine[key] = build()
    return mine[key]


def transactions(crm: CRM) -> sa.Subquery:
    """Every source's transactions as one subquery with columns ``customer_id, occurred_at, amount_minor,
    currency, margin_minor, category, channel`` (NULL where a source lacks an optional one).

    The sources are asked once per CRM (``crmkit_value_transactions``) and the result reused."""
    return _cached(crm, "transactions", lambda: _union(crm))


def _union(crm: CRM) -> sa.Subquery:
    selects = [_normalized(source) for source in crm.hooks.call("crmkit_value_transactions") if source is not None]
    if not selects:
        empty = sa.select(*(sa.type_coerce(sa.null(), type_).label(name) for name, type_ in _TYPES.items())).where(sa.false())
        return empty.subquery("value_transactions")
    if len(selects) == 1:
        return selects[0].subquery("value_transactions")
    return sa.union_all(*selects).subquery("value_transactions")


def _normalized(source: Any) -> sa.Select[Any]:
    src = source.subquery() if isinstance(source, sa.Select) else source
    columns = getattr(src, "c", None)
    if columns is None:
        raise PluginError("?", f"returned {type(source).__name__}, not a SQLAlchemy selectable",
                          hook="crmkit_value_transactions")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise PluginError("?", f"a source lacks column(s) {', '.join(missing)} (it has {', '.join(columns.keys())})",
                          hook="crmkit_value_transactions")
    return sa.select(*(
        sa.type_coerce(columns[name] if name in columns else sa.null(), type_).label(name)
        for name, type_ in _TYPES.items()
    ))


def _aggregate_select(crm: CRM, some: bool) -> sa.Select[Any]:
    """Aggregates per customer and currency; with ``some``, only the customers of the ``ids`` parameter."""
    vt = transactions(crm)
    query = (
        sa.select(
            vt.c.customer_id, vt.c.currency, sa.func.min(vt.c.occurred_at), sa.func.max(vt.c.occurred_at),
            sa.func.count(), sa.func.sum(vt.c.amount_minor), sa.bindparam("now", type_=UTCDateTime()),
        )
        .where(vt.c.amount_minor > 0)
        # currency first: SQLite then scans the source and sorts, instead of walking its customer index and
        # fetching every row one by one (167 s for 10M orders); every scan below groups the same way
        .group_by(vt.c.currency, vt.c.customer_id)
    )
    if some:
        query = query.where(vt.c.customer_id.in_(sa.bindparam("ids", expanding=True)))
    return only_active(query)


def only_active(grouped: sa.Select[Any]) -> sa.Select[Any]:
    """The rows of ``grouped`` (its first column is the customer id) whose customer is active.

    A join rather than ``IN (SELECT id FROM customers …)``: PostgreSQL cannot hash a million ids
    within its default work_mem and would rescan the whole list for every group.
    """
    inner = grouped.subquery("grouped")
    columns = list(inner.c)
    c = core.customers.c
    return sa.select(*columns).join(core.customers, c.id == columns[0]).where(c.status == "active")


def _refresh_statements(crm: CRM) -> tuple[Any, Any]:
    return (customer_value.delete().where(customer_value.c.customer_id.in_(sa.bindparam("ids", expanding=True))),
            customer_value.insert().from_select(_COLUMNS, _aggregate_select(crm, some=True)))


_COLUMNS = ["customer_id", "currency", "first_purchase_at", "last_purchase_at", "purchase_count", "total_minor",
            "updated_at"]


def rebuild(crm: CRM, conn: sa.Connection) -> int:
    """Recompute every customer's aggregates from the transactions (one INSERT … SELECT … GROUP BY); returns rows.

    The secondary indexes are dropped first and built again after the insert: building an index
    from sorted data is far cheaper than updating it row by row. All in the caller's transaction.
    """
    with large_cache(conn):
        for index in REBUILT_INDEXES:
            index.drop(conn)
        conn.execute(customer_value.delete())
        query = _aggregate_select(crm, some=False)
        if conn.dialect.name == "sqlite":  # rows then append to the table, stored in (currency, customer) order
            query = query.order_by(query.selected_columns[1], query.selected_columns[0])
        conn.execute(customer_value.insert().from_select(_COLUMNS, query), {"now": utcnow()})
        for index in REBUILT_INDEXES:
            index.create(conn)
    return int(conn.execute(sa.select(sa.func.count()).select_from(customer_value)).scalar_one())


@contextmanager
def large_cache(conn: sa.Connection, mebibytes: int = 256) -> Iterator[None]:
    """On SQLite, a bigger page cache for this connection during bulk work (the default is 2 MiB), then restored."""
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{mebibytes * 1024}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")


def refresh(crm: CRM, conn: sa.Connection, customer_ids: Iterable[int]) -> None:
    """Recompute the aggregates of these customers from their transactions (idempotent), in the caller's transaction."""
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return
    delete, insert = _cached(crm, "refresh", lambda: _refresh_statements(crm))
    conn.execute(delete, {"ids": ids})
    conn.execute(insert, {"ids": ids, "now": utcnow()})


def merge(conn: sa.Connection, kept_id: int, merged_id: int) -> None:
    """Fold ``merged_id``'s aggregates into ``kept_id``'s (min first, max last, summed count and total)."""
    cv = customer_value.c
    rows = conn.execute(sa.select(customer_value).where(cv.customer_id.in_([kept_id, merged_id]))).mappings().all()
    combined: dict[str, dict[str, Any]] = {}
    for row in rows:
        mine = combined.get(row["currency"])
        if mine is None:
            combined[row["currency"]] = {**row, "customer_id": kept_id}
        else:
            mine.update(
                first_purchase_at=min(mine["first_purchase_at"], row["first_purchase_at"]),
                last_purchase_at=max(mine["last_purchase_at"], row["last_purchase_at"]),
                purchase_count=mine["purchase_count"] + row["purchase_count"],
                total_minor=mine["total_minor"] + row["total_minor"],
            )
    conn.execute(customer_value.delete().where(cv.customer_id.in_([kept_id, merged_id])))
    if combined:
        now = utcnow()
        conn.execute(customer_value.insert(), [{**values, "updated_at": now} for values in combined.values()])


def currencies(conn: sa.Connection) -> list[str]:
    """Currencies customers have purchased in, from the aggregates."""
    return sorted(conn.execute(sa.select(customer_value.c.currency).distinct()).scalars())
