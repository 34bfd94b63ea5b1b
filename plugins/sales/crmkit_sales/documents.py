"""Storing and reading the lines of quotes and orders (the same columns on both)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
import sqlalchemy as sa

from crmkit_sales.objects import Line, from_row
from crmkit_sales.pricing import totals

LINE_FIELDS = tuple(f.name for f in attrs.fields(Line))


def insert_lines(conn: sa.Connection, table: sa.Table, parent: str, parent_id: int, lines: Sequence[Line]) -> None:
    """Write a document's lines in one executemany."""
    conn.execute(table.insert(), [{parent: parent_id, **attrs.asdict(line)} for line in lines])


def read_lines(
    conn: sa.Connection, table: sa.Table, parent: str, parent_ids: Iterable[int]
) -> dict[int, tuple[Line, ...]]:
    """``{document id: its lines in order}`` in one query."""
    ids = sorted(set(parent_ids))
    found: dict[int, list[Line]] = {i: [] for i in ids}
    if ids:
        columns = [table.c[parent], *(table.c[name] for name in LINE_FIELDS)]
        query = sa.select(*columns).where(table.c[parent].in_(ids)).order_by(table.c[parent], table.c.position)
        for row in conn.execute(query).mappings():
            found[row[parent]].append(from_row(Line, row))
    return {i: tuple(lines) for i, lines in found.items()}


def total_values(lines: Sequence[Line]) -> dict[str, int]:
    """The totals columns of a document with these lines."""
    return attrs.asdict(totals(lines))
