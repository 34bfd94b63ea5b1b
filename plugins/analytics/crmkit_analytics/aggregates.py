"""Purchase history (``crmkit.purchases``) and the per-customer aggregates kept from it.

A *purchase* is a value transaction with a positive net amount (a fully refunded order, net 0,
is not one). The aggregate row of a customer and currency holds the first and last purchase
time, the number of purchases and the total net amount, and the purchase occasions the BTYD models
read (see :func:`occasions_select`); it is recomputed for the customers an
order touches inside that order's transaction (so re-delivered or refunded orders never
double-count), rebuilt set-based for everyone with :func:`rebuild`, and combined arithmetically
when two customers merge. Only active customers have aggregates (erased ones are removed).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from crmkit.plugin_api import UTCDateTime, delete_in, epoch_seconds, lock_keys, purchases, select_in, upsert
from crmkit.plugin_api import core_tables as core
from crmkit.vncalendar import utc_offsets
from crmkit_analytics.models import REBUILT_INDEXES, customer_value

if TYPE_CHECKING:
    from crmkit import CRM

_cache: weakref.WeakKeyDictionary[CRM, dict[str, Any]] = weakref.WeakKeyDictionary()


def _cached(crm: CRM, key: str, build: Any) -> Any:
    """Statements built once per CRM: the sources' selectables do not change while it is open."""
    mine = _cache.setdefault(crm, {})
    if key not in mine:
        mine[key] = build()
    return mine[key]


def transactions(crm: CRM) -> sa.Subquery:
    """Every purchase source's transactions as one subquery (``crmkit.purchases.purchases``): columns
    ``customer_id, occurred_at, amount_minor, currency, margin_minor, category, channel``."""
    return purchases(crm)


def local_day(crm: CRM, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """The day of a UTC timestamp column in the business's time zone, as days since 1970-01-01 (an integer).

    PostgreSQL converts with the zone itself; SQLite adds the zone's UTC offset at that instant (from 1970 to
    twenty years ahead, daylight saving included), so a purchase never moves to another day by the zone's rules.
    """
    zone = crm.timezone
    if crm.engine.dialect.name == "postgresql":
        local = sa.cast(sa.func.timezone(zone.key, column), sa.Date)
        return sa.cast(local - sa.cast(sa.literal("1970-01-01"), sa.Date), sa.BigInteger)
    changes = _offsets(zone.key)
    offset: sa.ColumnElement[int] = sa.literal(changes[0][1], sa.BigInteger)
    if len(changes) > 1:
        offset = sa.case(*((column >= start, seconds) for start, seconds in reversed(changes[1:])), else_=changes[0][1])
    return (epoch_seconds(column) + offset) // sa.literal(86400, sa.BigInteger)


@functools.lru_cache(maxsize=8)
def _offsets(zone: str) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets from 1970 to twenty years from now (computed once per zone)."""
    until = datetime.now(UTC) + timedelta(days=366 * 20)
    return utc_offsets(ZoneInfo(zone), datetime(1970, 1, 1, tzinfo=UTC), until)


def occasions_select(
    crm: CRM,
    *,
    by_day: bool = True,
    currency: str | None = None,
    until: datetime | None = None,
    since: datetime | None = None,
    ids: bool = False,
    free_buyers: bool = False,
) -> sa.Select[Any]:
    """Per customer and currency: the purchase aggregates and the purchase occasions (:data:`COLUMNS`).

    *Purchases* are transactions with a positive amount (first and last time, count, total: what RFM and the
    customer types read). *Occasions* are every transaction of one local day netted into one (``by_day``; else
    each transaction is one): a zero-amount day counts, a refund lowers its day. Only transactions before
    ``until`` (inclusive; and after ``since``) in ``currency`` (default all) are read; with ``ids``, only the
    customers of the ``ids`` parameter.
    Customers need a purchase to have a row, or with ``free_buyers`` any occasion (a free item is a purchase
    occasion to the BTYD models: their first and last purchase times are then their occasions').
    """
    vt = transactions(crm)
    amount, at = vt.c.amount_minor, vt.c.occurred_at
    positive = amount > 0
    day = local_day(crm, at).label("day")
    parts: list[sa.ColumnElement[Any]] = [
        sa.case((positive, at)).label("first_at"),
        sa.case((positive, at)).label("last_at"),
        sa.case((positive, 1), else_=0).label("n"),
        sa.case((positive, amount), else_=0).label("total"),
        amount.label("net"),
    ]
    if by_day:
        folded = [
            sa.func.min(parts[0]),
            sa.func.max(parts[1]),
            sa.func.sum(parts[2]),
            sa.func.sum(parts[3]),
            sa.func.sum(parts[4]),
        ]
        inner = sa.select(
            vt.c.customer_id,
            vt.c.currency,
            day,
            *(f.label(p.name) for f, p in zip(folded, parts)),
            sa.func.min(at).label("at"),
        ).group_by(vt.c.currency, vt.c.customer_id, day)
    else:
        inner = sa.select(vt.c.customer_id, vt.c.currency, day, *parts, at.label("at"))
    if currency is not None:
        inner = inner.where(vt.c.currency == currency)
    if until is not None:
        inner = inner.where(at <= until)
    if since is not None:
        inner = inner.where(at > since)
    if ids:
        inner = inner.where(vt.c.customer_id.in_(sa.bindparam("ids", expanding=True)))
    days = inner.subquery("days")
    d = days.c
    rank = sa.func.row_number().over(partition_by=(d.customer_id, d.currency), order_by=(d.day, d.at)).label("k")
    ranked = sa.select(*d, rank).subquery("ranked")
    r = ranked.c
    query = (
        sa.select(
            r.customer_id,
            r.currency,
            sa.func.coalesce(sa.func.min(r.first_at), sa.func.min(r.at)),
            sa.func.coalesce(sa.func.max(r.last_at), sa.func.max(r.at)),
            sa.func.sum(r.n),
            sa.func.sum(r.total),
            sa.bindparam("now", type_=UTCDateTime()),
            sa.func.count(),
            sa.func.min(r.day),
            sa.func.max(r.day),
            sa.func.sum(sa.case((r.k == 1, r.net), else_=0)),
            sa.func.min(r.net),
            sa.func.sum(r.net),
        )
        # currency first: SQLite then scans the source and sorts, instead of walking its customer index and
        # fetching every row one by one (167 s for 10M orders); every scan below groups the same way
        .group_by(r.currency, r.customer_id)
        .having(sa.func.count() > 0 if free_buyers else sa.func.sum(r.n) > 0)
    )
    return only_active(query)


def _aggregate_select(crm: CRM, some: bool) -> sa.Select[Any]:
    """Aggregates per customer and currency; with ``some``, only the customers of the ``ids`` parameter."""
    return occasions_select(crm, ids=some)


def only_active(grouped: sa.Select[Any]) -> sa.Select[Any]:
    """The rows of ``grouped`` (its first column is the customer id) whose customer is active.

    A join rather than ``IN (SELECT id FROM customers …)``: PostgreSQL cannot hash a million ids
    within its default work_mem and would rescan the whole list for every group.
    """
    inner = grouped.subquery("grouped")
    columns = list(inner.c)
    c = core.customers.c
    return sa.select(*columns).join(core.customers, c.id == columns[0]).where(c.status == "active")


_KEY = ("customer_id", "currency")  # the primary key of the aggregates
COLUMNS = [
    "customer_id",
    "currency",
    "first_purchase_at",
    "last_purchase_at",
    "purchase_count",
    "total_minor",
    "updated_at",
    "occasions",
    "first_day",
    "last_day",
    "first_occasion_minor",
    "lowest_occasion_minor",
    "occasions_minor",
]


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
        conn.execute(customer_value.insert().from_select(COLUMNS, query), {"now": crm.now()})
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
    """Recompute the aggregates of these customers from their transactions (idempotent), in the caller's transaction.

    The customers' aggregates are locked first, so two orders of one customer written at once refresh
    one after the other, the second reading the first's committed order; then each (customer,
    currency) row is upserted and those of currencies no longer purchased in are deleted.
    """
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return
    lock_keys(conn, customer_value.name, ids)
    query = _cached(crm, "refresh", lambda: _aggregate_select(crm, some=True))
    fresh = [dict(zip(COLUMNS, row)) for row in conn.execute(query, {"ids": ids, "now": crm.now()})]
    cv = customer_value.c
    gone = cv.customer_id.in_(ids)
    if fresh:
        gone &= sa.tuple_(cv.customer_id, cv.currency).not_in([(r["customer_id"], r["currency"]) for r in fresh])
    conn.execute(customer_value.delete().where(gone))
    upsert(conn, customer_value, fresh, _KEY)


def merge_many(conn: sa.Connection, pairs: Mapping[int, int], now: datetime) -> None:
    """Fold each merged customer's aggregates into its kept one's (``pairs``: merged id → kept id): per
    currency the earliest first purchase, the latest last one, summed counts and totals; written back in bulk, stamped ``now``."""
    cv = customer_value.c
    ids = sorted({*pairs, *pairs.values()})
    lock_keys(conn, customer_value.name, ids)  # an order of one of them refreshing at the same time waits
    rows = select_in(conn, sa.select(customer_value), cv.customer_id, ids)
    if not rows:
        return
    combined: dict[tuple[int, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r.customer_id in pairs):  # the kept customers' own rows first
        values = dict(row._mapping)
        key = (pairs.get(row.customer_id, row.customer_id), row.currency)
        mine = combined.get(key)
        if mine is None:
            combined[key] = {**values, "customer_id": key[0]}
        else:
            mine.update(
                first_purchase_at=min(mine["first_purchase_at"], values["first_purchase_at"]),
                last_purchase_at=max(mine["last_purchase_at"], values["last_purchase_at"]),
                purchase_count=mine["purchase_count"] + values["purchase_count"],
                total_minor=mine["total_minor"] + values["total_minor"],
                # a day both bought on stays two occasions until the next rebuild (the days are not kept)
                occasions=mine["occasions"] + values["occasions"],
                first_occasion_minor=(
                    mine["first_occasion_minor"]
                    if mine["first_day"] < values["first_day"]
                    else values["first_occasion_minor"]
                    if values["first_day"] < mine["first_day"]
                    else mine["first_occasion_minor"] + values["first_occasion_minor"]
                ),
                first_day=min(mine["first_day"], values["first_day"]),
                last_day=max(mine["last_day"], values["last_day"]),
                lowest_occasion_minor=min(mine["lowest_occasion_minor"], values["lowest_occasion_minor"]),
                occasions_minor=mine["occasions_minor"] + values["occasions_minor"],
            )
    delete_in(conn, cv.customer_id, list(pairs))
    upsert(conn, customer_value, [{**values, "updated_at": now} for values in combined.values()], _KEY)


def currencies(conn: sa.Connection) -> list[str]:
    """Currencies customers have purchased in, from the aggregates."""
    return sorted(conn.execute(sa.select(customer_value.c.currency).distinct()).scalars())
