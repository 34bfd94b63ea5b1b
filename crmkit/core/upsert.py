"""Writes of keyed rows that concurrent transactions cannot make fail, on SQLite and PostgreSQL alike.

A per-customer aggregate written as "delete, then insert" inside a business transaction fails on
PostgreSQL when two transactions do it for the same customer at once (the second insert hits the
primary key). :func:`upsert` and :func:`insert_ignore` use ``INSERT … ON CONFLICT`` (both dialects
have it); :func:`lock_keys` serialises transactions that recompute the same rows from what they
read, so the last one to write has seen everything the others committed.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(CAST(:space AS integer), k) "
    "FROM (SELECT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) AS ordered"
)
_insert_ignore_cache: dict[tuple[str, str, tuple[str, ...], str], Any] = {}


def dialect_insert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` in the connection's dialect, which has ``on_conflict_do_update/nothing``."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> None:
    """Insert ``rows``, or overwrite the columns they carry where a row with the same unique ``key`` exists."""
    if not rows:
        return
    insert = dialect_insert(conn, table)
    changed = {name: insert.excluded[name] for name in rows[0] if name not in key}
    conn.execute(insert.on_conflict_do_update(index_elements=list(key), set_=changed), [dict(r) for r in rows])


def insert_ignore(
    conn: sa.Connection, table: sa.Table, values: Mapping[str, Any], conflict: Sequence[str], returning: sa.Column[Any]
) -> Any:
    """Insert a row unless it clashes with the unique ``conflict`` columns; returns ``returning`` (None if skipped).

    (RETURNING, not the row count: psycopg reports -1 rows for ``ON CONFLICT DO NOTHING``.)
    """
    cache_key = (conn.dialect.name, table.name, tuple(conflict), returning.name)
    statement = _insert_ignore_cache.get(cache_key)
    if statement is None:
        statement = (
            dialect_insert(conn, table).on_conflict_do_nothing(index_elements=list(conflict)).returning(returning)
        )
        _insert_ignore_cache[cache_key] = statement
    return conn.execute(statement, dict(values)).scalar()


def lock_keys(conn: sa.Connection, purpose: str, ids: Iterable[int]) -> None:
    """Hold, until the transaction ends, a lock on each of ``ids`` for ``purpose`` (e.g. a table's name).

    PostgreSQL: transaction-scoped advisory locks, taken in id order so that two transactions never
    wait on each other crosswise. SQLite needs none: crmkit's write transactions start with
    ``BEGIN IMMEDIATE`` and so already run one at a time.
    """
    keys = sorted({key % 2**31 for key in ids})  # the second int4 key (a wrapped-around id only locks more)
    if conn.dialect.name != "postgresql" or not keys:
        return
    space = zlib.crc32(purpose.encode()) - 2**31  # the first int4 key: one space per purpose
    conn.execute(_LOCK, {"space": space, "keys": keys}).all()
