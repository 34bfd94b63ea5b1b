"""The customer-owned tables plugins declare in ``Plugin(personal_data=…)``: the core exports, erases and merges them.

A declared table needs no hook code: its rows about a customer (every column referencing ``customers.id``) go
into the plugin's section of ``export_data``, are deleted or anonymized on erasure (``Owned(erase=Retained(…))``
clears the ``personal`` columns and keeps the row), and follow a merge through ``bulk_sql.repoint`` (so the merge
journal records them and an unmerge gives them back). Hooks stay for anything unusual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core.bulk_sql import repoint
from crmkit.errors import PluginError
from crmkit.plugin import Retained, resolve
from crmkit.privacy import _customer_columns, anonymize_rows, delete_rows, export_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.plugin import Owned, Plugin


@attrs.frozen
class Declared:
    """One declared table of one plugin, resolved: the table and what the plugin says of it."""

    plugin: str
    table: sa.Table
    owned: Owned

    @property
    def personal(self) -> tuple[str, ...]:
        """The columns erasure clears in kept rows (none when erasure deletes the rows)."""
        return self.owned.erase.personal if isinstance(self.owned.erase, Retained) else ()


def declared(plugin: Plugin) -> list[Declared]:
    """``plugin``'s declared tables, checked against its ``tables``: children before parents (the order erasure
    deletes in). Raises ``PluginError`` naming the plugin, the table and the column of a declaration that does not
    match (an unknown table, an unknown column, a table without a column referencing ``customers.id``)."""
    if not plugin.personal_data:
        return []
    metadata = resolve(plugin.tables) if plugin.tables else sa.MetaData()
    order = {table.name: i for i, table in enumerate(reversed(metadata.sorted_tables))}
    result = []
    for name, owned in plugin.personal_data.items():
        table = metadata.tables.get(name)
        if table is None:
            raise PluginError(plugin.name, f"personal_data names table {name!r}, which is not one of its tables")
        item = Declared(plugin.name, table, owned)
        for column in item.personal:
            if column not in table.columns:
                raise PluginError(
                    plugin.name, f"personal_data[{name!r}] names column {column!r}, which table {name} does not have"
                )
        try:
            _customer_columns(table)
        except ValueError:
            raise PluginError(
                plugin.name, f"personal_data names table {name!r}, which has no column referencing customers.id"
            ) from None
        result.append(item)
    return sorted(result, key=lambda d: order[d.table.name])


def export(session: Session, tables: list[Declared], customer_id: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{plugin: {table: [row, …]}}``: every declared row about the customer, JSON-safe."""
    sections: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for item in tables:
        sections.setdefault(item.plugin, {}).update(export_rows(session, [item.table], customer_id))
    return sections


def erase(session: Session, tables: list[Declared], customer_id: int) -> None:
    """Delete the customer's rows of the declared tables, or clear their personal columns where they are kept."""
    for item in tables:
        if not isinstance(item.owned.erase, Retained):
            delete_rows(session, [item.table], customer_id)
        elif item.personal:
            values = {c: None if item.table.c[c].nullable else "" for c in item.personal}
            anonymize_rows(session, item.table, customer_id, values)


def merge(session: Session, tables: list[Declared], pairs: Mapping[int, int]) -> None:
    """Re-point every declared row of a merged customer to the kept one (``pairs``: merged id → kept id), journaled."""
    conn = session.connection()
    for item in tables:
        for column in _customer_columns(item.table):
            repoint(conn, column, pairs)


def holdings(plugin: Plugin) -> list[dict[str, Any]]:
    """What the plugin declares it holds, table by table, and what erasure does with it (for listings); tables
    only in ``retained_tables`` are handled by its own hooks."""
    owned = dict(plugin.personal_data)
    rows = []
    for name in [*owned, *(t for t in plugin.retained_tables if t not in owned)]:
        kept = plugin.retained_tables.get(name)
        erasure = "deleted"
        if kept is not None:
            cleared = f"; clears {', '.join(kept.personal)}" if kept.personal else ""
            erasure = f"kept ({kept.reason}){cleared}"
        what = owned[name].what if name in owned else "(exported, erased and merged by its hooks)"
        rows.append({"table": name, "holds": what, "erasure": erasure})
    return rows
