"""Engines for SQLite (WAL, foreign keys, explicit BEGIN) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from crmkit.core.redact import mask_database_url
from crmkit.errors import DatabaseUnavailable

DEFAULT_URL = "sqlite:///crmkit.db"


def create_engine(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """An engine configured the way crmkit needs it; ``postgresql://`` URLs use psycopg 3.

    A URL that cannot be parsed, or whose database driver is not installed, raises
    ``DatabaseUnavailable`` with one line saying so (the password is never shown). Statement errors never
    carry their SQL parameters (``hide_parameters``): they may hold a customer's personal data.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseUnavailable(
            "not a database URL (expected e.g. sqlite:///crm.db or postgresql://user:password@host/dbname)"
        ) from None
    if "@" in (parsed.host or ""):  # user:pa@ss@host: the driver would be told to resolve "ss@host", and say so
        raise DatabaseUnavailable(
            f"cannot open database {mask_database_url(url)}: its password holds an unescaped @ "
            f"(or another reserved character): write it percent-encoded, @ as %40"
        )
    kwargs.setdefault("hide_parameters", True)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                kwargs.setdefault("poolclass", StaticPool)
                kwargs.setdefault("connect_args", {"check_same_thread": False})
            return configure_engine(sa.create_engine(parsed, **kwargs))
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise DatabaseUnavailable(
            f"cannot open database {mask_database_url(parsed)}: its driver is not installed ({exc})"
        ) from None


_configured: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def configure_engine(engine: sa.Engine) -> sa.Engine:
    """Make an engine the caller created fit for crmkit (SQLite: see ``_configure_sqlite``).

    Configure it before it opens connections: pooled ones opened earlier keep their settings.
    """
    if engine.dialect.name == "sqlite" and engine not in _configured:
        _configure_sqlite(engine)
        _configured.add(engine)
    return engine


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL, enforced foreign keys, a busy timeout, secure deletion, the ``crmkit_digest`` SQL function
    (``crmkit.privacy.keyed_digest``), and transactions that BEGIN when SQLAlchemy says so.

    pysqlite's own transaction handling defers BEGIN until the first write, which breaks
    isolation; crmkit emits BEGIN itself (IMMEDIATE for write transactions, so two writers
    queue instead of failing halfway through).
    """

    from crmkit.privacy import sqlite_digest

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten with zeros, not left in free pages
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function("crmkit_digest", 2, sqlite_digest, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("crmkit_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def check_connection(engine: sa.Engine) -> None:
    """Open one connection, turning driver errors into a one-line ``DatabaseUnavailable``."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot open database {mask_database_url(engine.url)}: {reason}") from None
