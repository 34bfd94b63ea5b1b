"""SQL building blocks that differ between SQLite and PostgreSQL: epoch seconds, UTC days and months.

Each is a SQLAlchemy construct compiled per dialect, so measures stay one portable query.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a timestamp column (floored)."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


class day_of(FunctionElement[str]):
    """The UTC calendar day ``YYYY-MM-DD`` of a timestamp, as text."""

    type = sa.String()
    inherit_cache = True


@compiles(day_of, "sqlite")
def _day_sqlite(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d', {compiler.process(element.clauses, **kw)})"


@compiles(day_of, "postgresql")
def _day_pg(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


class month_index(FunctionElement[int]):
    """Months since year 0 of a timestamp's UTC month (``year * 12 + month − 1``): consecutive months differ by 1."""

    type = sa.Integer()
    inherit_cache = True


@compiles(month_index, "sqlite")
def _month_index_sqlite(element: month_index, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%Y', {column}) AS INTEGER) * 12 + CAST(strftime('%m', {column}) AS INTEGER) - 1)"


@compiles(month_index, "postgresql")
def _month_index_pg(element: month_index, compiler: Any, **kw: Any) -> str:
    column = f"({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')"
    return f"(CAST(EXTRACT(YEAR FROM {column}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {column}) AS INTEGER) - 1)"


def month_label(index: int) -> str:
    """``YYYY-MM`` of a :class:`month_index` value."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def whole_days_since(column: ColumnElement[Any], as_of_epoch: int) -> ColumnElement[int]:
    """Whole days elapsed from ``column`` to the instant ``as_of_epoch`` (floor; ``column`` ≤ that instant)."""
    return (sa.literal(as_of_epoch, sa.BigInteger) - epoch_seconds(column)) // sa.literal(86400, sa.BigInteger)
