"""The merge journal: which rows of which table every merge moved from the merged customer to the kept one.

A merge opens :func:`recording` with its merge ids; while it is open, :func:`crmkit.core.bulk_sql.repoint`
journals every row it re-points (one ``INSERT … SELECT`` per pair, in the merge's transaction), so a
plugin that re-points through it cannot forget to. A plugin moving rows some other way names them with
:func:`journal_moved`. An unmerge hands every journaled row back with :func:`give_back`: rows created on the kept
customer after the merge are not in the journal and stay with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from crmkit.core import bulk_sql
from crmkit.core import tables as t
from crmkit.errors import Conflict

#: The merge being written: merged customer id → its merge's id (None outside a merge).
_RECORDING: ContextVar[Mapping[int, int] | None] = ContextVar("crmkit_merge_journal", default=None)


@contextmanager
def recording(merge_ids: Mapping[int, int]) -> Iterator[None]:
    """Journal the rows moved while the block runs (``merge_ids``: merged customer id → merge id)."""
    token = _RECORDING.set(dict(merge_ids))
    try:
        yield
    finally:
        _RECORDING.reset(token)


def key_column(table: sa.Table, column: sa.Column[Any]) -> sa.Column[Any] | None:
    """The primary-key column naming a row of ``table`` besides the moved ``column`` (None: ``column`` is the key).

    The journal keys a row by one column, so a table whose primary key has two columns besides the
    moved one cannot be journaled (``TypeError`` when the merge writes, never a silent gap).
    """
    others = [c for c in table.primary_key.columns if c is not column]
    if len(others) > 1:
        raise TypeError(f"the merge journal names a row by one key column: {table.name} has {len(others)}")
    return others[0] if others else None


def _merge_ids(merged_ids: Iterable[int]) -> Mapping[int, int] | None:
    active = _RECORDING.get()
    if active is None:
        return None
    unknown = [m for m in merged_ids if m not in active]
    if unknown:
        raise RuntimeError(f"customers {unknown} are not merged by the merge being written")
    return active


def record(conn: sa.Connection, column: sa.Column[Any], pairs: Mapping[int, int]) -> None:
    """Journal the rows whose ``column`` holds a merged id of ``pairs`` (merged id → kept id), before they move.

    Called by :func:`crmkit.core.bulk_sql.repoint`; does nothing outside a merge.
    """
    active = _merge_ids(pairs)
    if active is None or not pairs:
        return
    table = column.table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{column} is not a table's column: only table rows can be journaled")
    key = key_column(table, column)
    r = t.merge_rows.c
    source = sa.select(
        sa.cast(sa.bindparam("_merge"), r.merge_id.type),
        sa.cast(sa.literal(table.name), r.table_name.type),
        sa.cast(sa.literal(column.name), r.column_name.type),
        sa.cast(key, r.row_key.type) if key is not None else sa.cast(sa.literal(""), r.row_key.type),
    ).where(column == sa.bindparam("_merged"))
    statement = t.merge_rows.insert().from_select([r.merge_id, r.table_name, r.column_name, r.row_key], source)
    bulk_sql.executemany(conn, statement, [{"_merge": active[merged], "_merged": merged} for merged in pairs])


def journal_moved(conn: sa.Connection, table: sa.Table, column: str, rows: Mapping[int, Iterable[Any]]) -> None:
    """Journal rows a plugin moved without ``repoint``: ``rows`` maps a merged id to the moved rows' keys
    (:func:`key_column` of ``table``), whose ``column`` now holds the kept id. Does nothing outside a merge."""
    active = _merge_ids(rows)
    if active is None:
        return
    values = [
        {"merge_id": active[merged], "table_name": table.name, "column_name": column, "row_key": str(key)}
        for merged, keys in rows.items()
        for key in keys
    ]
    if values:
        conn.execute(t.merge_rows.insert(), values)


def give_back(
    conn: sa.Connection, merge_id: int, kept_id: int, restored_id: int, tables: Mapping[str, sa.Table]
) -> dict[str, int]:
    """Move every row merge ``merge_id`` journaled from ``kept_id`` back to ``restored_id`` (``tables``: every
    known table by name); returns the rows moved back per table. A row no longer on the kept customer stays.

    One ``UPDATE`` per journaled (table, column), its keys read from the journal by a subquery (on PostgreSQL,
    whose planner has no statistics on rows just written, bound as one array)."""
    r = t.merge_rows.c
    moved = conn.execute(
        sa.select(r.table_name, r.column_name).where(r.merge_id == merge_id).distinct().order_by(r.table_name)
    ).all()
    counts: dict[str, int] = defaultdict(int)
    for row in moved:
        table_name: str = row.table_name
        column_name: str = row.column_name
        table = tables.get(table_name)
        if table is None:
            raise Conflict(f"merge {merge_id} moved rows of {table_name}, a table no enabled plugin owns")
        column = table.c[column_name]
        key = key_column(table, column)
        back = sa.update(table).where(column == kept_id).values({column_name: restored_id})
        if key is not None:
            keys = sa.select(sa.cast(r.row_key, key.type)).where(
                r.merge_id == merge_id, r.table_name == table_name, r.column_name == column_name
            )
            if conn.dialect.name == "postgresql":  # one array: the planner has no statistics on a fresh journal
                values: list[Any] = list(conn.execute(keys).scalars())
                back = back.where(key == sa.any_(sa.bindparam("_keys", values, type_=postgresql.ARRAY(key.type))))
            else:
                back = back.where(key.in_(keys))
        counts[table_name] += conn.execute(back).rowcount
    return dict(counts)
