"""Helpers for plugins' right-of-access and right-to-erasure hooks, so no plugin re-writes them.

A plugin's ``crmkit_customer_export`` returns ``{plugin_name: export_rows(session, tables, id)}``
and its ``crmkit_customer_erase`` calls ``delete_rows`` / ``anonymize_rows``; the contract
check in ``crmkit.testing`` relies on that shape (one list of rows per table name).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

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


#: The ``crmkit_settings`` row holding this database's key for ``keyed_digest`` (made on first use), wrapped
#: with the CRM secret key (``crmkit.core.secrets``), which lives outside the database.
HASH_KEY_SETTING = "privacy.hash_key"
#: What marks a stored value as a keyed digest rather than the value itself (no e-mail or phone starts so).
DIGEST_PREFIX = "#"


def hash_key(conn: sa.Connection, *, create: bool = True) -> bytes | None:
    """This database's key for the keyed digests erasure leaves instead of addresses (made on first use).

    Stored wrapped with the CRM secret key, so a copy of the database alone cannot test guessed
    addresses against the digests; a wrong CRM secret key raises ``SecretUnavailable`` instead of
    silently matching nothing. ``create=False`` returns None when no erasure has needed one yet.
    """
    from crmkit.core import secrets as crm_secrets
    from crmkit.core.tables import settings
    from crmkit.core.upsert import insert_ignore

    query = sa.select(settings.c.value).where(settings.c.key == HASH_KEY_SETTING)
    stored = conn.execute(query).scalar()
    if stored is None and create:
        nonce = HASH_KEY_SETTING.encode() + b"|" + secrets.token_bytes(16)
        wrapped, check = crm_secrets.wrap_secret(secrets.token_bytes(32), nonce)
        value = {"wrapped": wrapped.hex(), "nonce": nonce.hex(), "check": check.hex()}
        insert_ignore(conn, settings, {"key": HASH_KEY_SETTING, "value": value}, ["key"], settings.c.key)
        stored = conn.execute(query).scalar()  # ours, or the one a concurrent erasure stored first
    if stored is None:
        return None
    return crm_secrets.unwrap_secret(*(bytes.fromhex(stored[part]) for part in ("wrapped", "nonce", "check")))


def digest(key: bytes, value: str) -> str:
    """The keyed digest (HMAC-SHA-256, hex, marked with ``DIGEST_PREFIX``) of a normalised value."""
    return DIGEST_PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class keyed_digest(FunctionElement[str]):
    """``keyed_digest(key, column)``: ``digest(key, column)`` computed by the database, for matching in SQL."""

    type = sa.String()
    inherit_cache = True

    def __init__(self, key: bytes, column: sa.ColumnElement[str]) -> None:
        block = key.ljust(64, b"\0")  # HMAC's inner and outer keys, so PostgreSQL needs only sha256()
        inner, outer = bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)
        super().__init__(*(sa.literal(k, sa.LargeBinary) for k in (key, inner, outer)), column)


@compiles(keyed_digest, "sqlite")
def _digest_sqlite(element: keyed_digest, compiler: Any, **kw: Any) -> str:
    key, _, _, column = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"crmkit_digest({key}, {column})"  # registered on every connection by crmkit.storage


@compiles(keyed_digest, "postgresql")
def _digest_pg(element: keyed_digest, compiler: Any, **kw: Any) -> str:
    _, inner, outer, column = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"('{DIGEST_PREFIX}' || encode(sha256({outer} || sha256({inner} || convert_to({column}, 'UTF8'))), 'hex'))"


def sqlite_digest(key: bytes | None, value: str | None) -> str | None:
    """``crmkit_digest`` for SQLite connections (NULL in, NULL out)."""
    return None if key is None or value is None else digest(bytes(key), value)


def wipe_free_space(engine: sa.Engine, metadata: Iterable[sa.MetaData], *, vacuum: bool = False) -> None:
    """After an erasure commits, leave no copy of the erased values in the database files.

    SQLite runs with ``secure_delete`` (freed space is zeroed); this checkpoints the write-ahead
    log into the main file and truncates it. On PostgreSQL, ``vacuum`` runs ``VACUUM FULL`` on
    every table of ``metadata`` (the core's and the enabled plugins'), one at a time: it rewrites
    each table and its indexes into new files, since a plain VACUUM frees dead row versions but
    leaves their bytes in the pages. Each table is locked while it is rewritten.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # on the driver's connection: a checkpoint cannot run inside BEGIN
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    elif vacuum:
        preparer = engine.dialect.identifier_preparer
        names = sorted({preparer.format_table(table) for meta in metadata for table in meta.tables.values()})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            details: list[str] = []
            conn.connection.driver_connection.add_notice_handler(  # type: ignore[union-attr]
                lambda notice: details.append(notice.message_detail or "")
            )
            for name in names:
                _vacuum_full(conn, name, details)


#: How long ``wipe_free_space`` waits for other transactions (an autovacuum ANALYZE, a report) to end.
VACUUM_PATIENCE = 60.0


def _vacuum_full(conn: sa.Connection, name: str, details: list[str]) -> None:
    """``VACUUM FULL`` one table, again while PostgreSQL says another transaction still sees dead row versions
    (it copies those into the new file); ``Conflict`` when they are still held after ``VACUUM_PATIENCE``."""
    from crmkit.errors import Conflict

    deadline, pause = time.monotonic() + VACUUM_PATIENCE, 0.1
    while True:
        details.clear()
        conn.exec_driver_sql(f"VACUUM (FULL, VERBOSE) {name}")
        held = sum(int(found) for detail in details for found in _HELD.findall(detail))
        if not held:
            return
        if time.monotonic() > deadline:
            raise Conflict(
                f"the erasure is done, but another transaction still sees {held} old row versions of "
                f"{name}; run the erasure again with --vacuum when it has ended"
            )
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


_HELD = re.compile(r"(\d+) dead row versions cannot be removed yet")
