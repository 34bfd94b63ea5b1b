"""Helpers for plugins' right-of-access and right-to-erasure hooks, so no plugin re-writes them.

A plugin's ``crmkit_customer_export`` returns ``{plugin_name: export_rows(session, tables, id)}``
and its ``crmkit_customer_erase`` calls ``delete_rows`` / ``anonymize_rows``; the contract
check in ``crmkit.testing`` relies on that shape (one list of rows per table name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crmkit.core.jsonable import to_jsonable


def _customer_columns(table: sa.Table) -> list[sa.Column[Any]]:
    columns = [c for c in table.columns if any(fk.column.table.name == "customers" for fk in c.foreign_keys)]
    if not columns:
        raise ValueError(f"table {table.name} has no column referencing customers.id")
    return columns


def _about(table: sa.Table, customer_id: int) -> sa.ColumnElement[bool]:
    return sa.or_(*(column == customer_id for column in _customer_columns(table)))


def export_rows(session: Session, tables: Iterable[sa.Table], customer_id: int) -> dict[str, list[dict[str, Any]]]:
    """``{table name: [row, …]}`` of every row in ``tables`` that references the customer."""
    conn = session.connection()
    result = {}
    for table in tables:
        order = list(table.primary_key.columns)
        rows = conn.execute(sa.select(table).where(_about(table, customer_id)).order_by(*order)).mappings()
        result[table.name] = [to_jsonable(dict(row)) for row in rows]
    return result


def delete_rows(session: Session, tables: Iterable[sa.Table], customer_id: int) -> None:
    """Delete every row in ``tables`` referencing the customer (pass child tables before parents)."""
    conn = session.connection()
    for table in tables:
        conn.execute(table.delete().where(_about(table, customer_id)))


def anonymize_rows(session: Session, table: sa.Table, customer_id: int, values: Mapping[str, Any]) -> None:
    """Keep the customer's rows in ``table`` (records the law requires) but overwrite identifying columns."""
    session.connection().execute(table.update().where(_about(table, customer_id)).values(dict(values)))
