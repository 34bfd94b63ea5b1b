"""Set-based helpers for work on many customers at once (batch merges): the core and every plugin use them.

A batch merge hands plugins ``{merged_id: kept_id}``; re-pointing a column is then one prepared
statement run for every pair straight through the driver (executemany, no per-row SQLAlchemy
processing), and reading or deleting the rows of many ids is one statement whose ids travel as a
single bound parameter (a JSON array read by ``json_each`` on SQLite, an array on PostgreSQL), so
no ``IN`` list of thousands of parameters is built, bound or chunked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from crmkit.core import merge_journal

T = TypeVar("T")

#: Items per statement where a list must be spelled out (row-value ``IN`` lists): far below SQLite's
#: 32,766 bound parameters (and PostgreSQL's 65,535).
CHUNK = 1000


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def in_ids(dialect: str, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    """``column IN (ids)`` with every id in the one bound parameter ``name`` (its value: :func:`ids_value`)."""
    if dialect == "sqlite":
        return column.in_(sa.select(sa.literal_column("value")).select_from(sa.func.json_each(sa.bindparam(name))))
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(sa.BigInteger())))
    return column.in_(sa.bindparam(name, expanding=True))


def ids_value(dialect: str, ids: Iterable[int]) -> Any:
    """The value of an :func:`in_ids` parameter: a JSON array on SQLite, a list elsewhere."""
    values = [int(x) for x in ids]
    return json.dumps(values) if dialect == "sqlite" else values


def select_in(
    conn: sa.Connection, query: sa.Select[Any], column: sa.ColumnElement[Any], ids: Iterable[int]
) -> list[sa.Row[Any]]:
    """Rows of ``query`` whose ``column`` is one of ``ids`` (integer ids), in one statement."""
    ids = list(ids)
    if not ids:
        return []
    dialect = conn.dialect.name
    return list(conn.execute(query.where(in_ids(dialect, column, "_ids")), {"_ids": ids_value(dialect, ids)}).all())


def delete_in(conn: sa.Connection, column: sa.Column[Any], ids: Iterable[int]) -> int:
    """Delete the rows whose ``column`` is one of ``ids`` (integer ids); returns how many went."""
    ids = list(ids)
    if not ids:
        return 0
    dialect = conn.dialect.name
    statement = sa.delete(column.table).where(in_ids(dialect, column, "_ids"))
    return conn.execute(statement, {"_ids": ids_value(dialect, ids)}).rowcount


def repoint(conn: sa.Connection, column: sa.Column[Any], pairs: Mapping[int, int], **values: Any) -> int:
    """Set ``column`` to the kept id on every row holding a merged id (``pairs``: merged id → kept id).

    Inside a merge the rows are journaled first (:mod:`crmkit.core.merge_journal`), so an unmerge
    can give them back. ``values`` are extra column values or SQL expressions written on the same rows (constants
    only: they are not converted per row). One prepared ``UPDATE … WHERE column = ?`` runs for
    every pair, so ``column`` must be indexed. Returns the number of rows changed.
    """
    merge_journal.record(conn, column, pairs)
    statement = (
        sa.update(column.table)
        .where(column == sa.bindparam("_merged"))
        .values({column.key: sa.bindparam("_kept"), **values})
    )
    return executemany(conn, statement, [{"_merged": merged, "_kept": kept} for merged, kept in pairs.items()])


def executemany(conn: sa.Connection, statement: sa.Executable, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run ``statement`` once per row, straight through the driver's ``executemany``.

    For large batches of plain values (integers, strings): SQLAlchemy's per-row parameter
    processing, most of the cost of a big executemany, is skipped — so no value needing a type
    conversion (dates, JSON) may be passed. Returns the number of rows changed.
    """
    if not rows:
        return 0
    compiled = statement.compile(dialect=conn.dialect)
    fixed = compiled.params
    if compiled.positional:
        names = compiled.positiontup or []
        params: list[Any] = [tuple(row[n] if n in row else fixed[n] for n in names) for row in rows]
    else:
        params = [{**fixed, **row} for row in rows]
    return conn.exec_driver_sql(compiled.string, params).rowcount
