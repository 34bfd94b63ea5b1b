"""Writing many computed rows fast: COPY on PostgreSQL, one executemany on SQLite, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa


def insert_rows(conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert plain Python tuples (ints, floats, str) into ``table``'s ``columns``."""
    names = ", ".join(columns)
    rows = list(rows)
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        assert raw is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)  # noqa: S608 - the model's names
