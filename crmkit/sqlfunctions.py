"""Date and time SQL functions that SQLite and PostgreSQL spell differently, as portable SQLAlchemy constructs.

Plugins build reports and measures as one query on both databases; each construct here compiles
to the right SQL per dialect, so no plugin writes its own ``@compiles`` for the same thing.
Timestamps are crmkit's UTC columns (``UTCDateTime``); results are in UTC unless a function takes a ``zone``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from crmkit.vncalendar import utc_offsets

__all__ = [
    "day_of",
    "epoch_seconds",
    "local_clock",
    "month_index",
    "month_label",
    "seconds_between",
    "whole_days_since",
    "year_month",
]


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


class seconds_between(FunctionElement[float]):
    """``seconds_between(a, b)``: seconds (fractional) from time ``a`` to time ``b``."""

    type = sa.Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({b}) - julianday({a})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: seconds_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({b} - {a}))"


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


class year_month(FunctionElement[str]):
    """``YYYY-MM`` of a DATE column (for timestamps in a business's time zone, split by instant ranges instead)."""

    type = sa.String()
    inherit_cache = True


@compiles(year_month, "sqlite")
def _year_month_sqlite(element: year_month, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


@compiles(year_month, "postgresql")
def _year_month_pg(element: year_month, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


def month_label(index: int) -> str:
    """``YYYY-MM`` of a :func:`month_index` value."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def whole_days_since(column: ColumnElement[Any], as_of_epoch: int) -> ColumnElement[int]:
    """Whole days elapsed from ``column`` to the instant ``as_of_epoch`` (floor; ``column`` ≤ that instant)."""
    return (sa.literal(as_of_epoch, sa.BigInteger) - epoch_seconds(column)) // sa.literal(86400, sa.BigInteger)


class _local_part(FunctionElement[int]):
    """A part of a timestamp's local time: clauses are the column, the zone's name (PostgreSQL converts with it)
    and its UTC offset in seconds at that instant (SQLite adds it)."""

    type = sa.Integer()
    inherit_cache = True
    sqlite_format = ""
    pg_field = ""


class _local_hour(_local_part):
    inherit_cache = True
    sqlite_format, pg_field = "%H", "hour"


class _local_weekday(_local_part):
    inherit_cache = True
    sqlite_format, pg_field = "%w", "isodow"


class _local_month_index(_local_part):
    inherit_cache = True


def _local_args(element: _local_part, compiler: Any, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(_local_part, "sqlite")
def _local_part_sqlite(element: _local_part, compiler: Any, **kw: Any) -> str:
    column, _zone, offset = _local_args(element, compiler, **kw)
    if isinstance(element, _local_month_index):
        year, month = (f"CAST(strftime('%{part}', {column}, ({offset}) || ' seconds') AS INTEGER)" for part in "Ym")
        return f"({year} * 12 + {month} - 1)"
    value = f"CAST(strftime('{element.sqlite_format}', {column}, ({offset}) || ' seconds') AS INTEGER)"
    return f"(({value} + 6) % 7)" if isinstance(element, _local_weekday) else value  # %w counts from Sunday


@compiles(_local_part, "postgresql")
def _local_part_pg(element: _local_part, compiler: Any, **kw: Any) -> str:
    column, zone, _offset = _local_args(element, compiler, **kw)
    if isinstance(element, _local_month_index):
        year, month = (
            f"CAST(EXTRACT({part} FROM timezone({zone}, {column})) AS INTEGER)" for part in ("year", "month")
        )
        return f"({year} * 12 + {month} - 1)"
    value = f"CAST(EXTRACT({element.pg_field} FROM timezone({zone}, {column})) AS INTEGER)"
    return f"({value} - 1)" if isinstance(element, _local_weekday) else value  # isodow counts from Monday = 1


def _in_zone(column: ColumnElement[Any], zone: ZoneInfo, since: datetime, until: datetime) -> tuple[Any, ...]:
    """The clauses of a :class:`_local_part`: the column, the zone's name and its UTC offset at the row's instant
    (a CASE over the zone's changes between ``since`` and ``until``: SQLite has no time zone database)."""
    changes = utc_offsets(zone, since, until)
    offset: ColumnElement[int] = sa.literal(changes[0][1])
    if len(changes) > 1:
        offset = sa.case(*((column >= start, seconds) for start, seconds in reversed(changes[1:])), else_=changes[0][1])
    return (column, sa.literal(zone.key), offset)


def local_clock(
    column: ColumnElement[Any], zone: ZoneInfo, since: datetime, until: datetime
) -> tuple[ColumnElement[int], ColumnElement[int]]:
    """(hour 0–23, weekday 0 = Monday) of a UTC timestamp column as a clock in ``zone`` reads it, daylight saving
    included, for rows between the instants ``since`` and ``until`` (SQLite needs the zone's offsets over them)."""
    args = _in_zone(column, zone, since, until)
    return _local_hour(*args), _local_weekday(*args)


def month_index(column: ColumnElement[Any], zone: ZoneInfo, since: datetime, until: datetime) -> ColumnElement[int]:
    """Months since year 0 (``year * 12 + month − 1``) of the month in ``zone`` (the business's) of a UTC timestamp
    column, for rows between ``since`` and ``until``: consecutive months differ by 1, as reports group by local month.

    Group by its label, not the expression: PostgreSQL refuses a repeated expression whose parameters differ."""
    return _local_month_index(*_in_zone(column, zone, since, until))
