"""Backups of a SQLite database through SQLite's online backup API, and their restore.

Copying the database file is not a backup: with write-ahead logging the newest transactions live in the ``-wal``
file beside it, and a copy taken while a write runs is torn. The backup API copies the pages through SQLite itself,
as one consistent snapshot, while the CRM stays in use. PostgreSQL has its own tools (``pg_dump`` and
``pg_restore``, in the README); these functions refuse it and say so.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

POSTGRES_HINT = (
    "on PostgreSQL use its own tools: pg_dump --format=custom --file=FILE DBNAME, and "
    "pg_restore --clean --if-exists --dbname=DBNAME FILE (see the README's backups section)"
)


@attrs.frozen
class Backup:
    """A backup file written or restored: where it is, its size in bytes, and its schema revision per lineage."""

    path: Path
    size: int
    revisions: dict[str, tuple[str, ...]]
    #: Customers the backup still held but who had been erased since: erased again right after the restore.
    erased_again: tuple[int, ...] = ()


def backup(crm: CRM, target: str | os.PathLike[str], *, overwrite: bool = False) -> Backup:
    """Write a consistent copy of the CRM's SQLite database to ``target`` while it stays in use.

    The copy is written beside ``target`` and renamed over it only when complete, so a backup killed half-way
    leaves no file that looks like a backup. An existing ``target`` is kept unless ``overwrite``.
    """
    path = Path(target)
    _require_sqlite(crm, "backup")
    if path.exists() and not overwrite:
        raise ValidationError({"file": [f"{path} exists: choose another name, or --overwrite it"]})
    if not path.parent.is_dir():
        raise ValidationError({"file": [f"folder {path.parent} does not exist"]})
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    raw = crm.engine.raw_connection()
    try:
        copy = sqlite3.connect(partial)
        try:
            raw.driver_connection.backup(copy)  # type: ignore[union-attr]
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
    finally:
        raw.close()
    with open(partial, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)
    made = Backup(path, path.stat().st_size, _revisions(path))
    with crm.transaction() as session:
        crm.audit.record(session, "backup", "database", path.name, changes={"size": made.size})
    return made


def restore(crm: CRM, source: str | os.PathLike[str]) -> Backup:
    """Replace the CRM's SQLite database with the backup ``source``, in one step.

    The backup must be a crmkit database whose schema this installation knows (an older one is fine:
    ``crmkit db upgrade`` brings it forward). Other processes using the database (the server, the worker) should
    be stopped first; the restore waits for their transactions and then replaces everything at once. Customers
    erased since the backup was taken are erased again, so a restore never brings an erased person back.
    """
    path = Path(source)
    _require_sqlite(crm, "restore")
    if not path.is_file():
        raise ValidationError({"file": [f"{path} does not exist"]})
    from crmkit import migrations

    revisions = _revisions(path)
    if not revisions.get(migrations.CORE):
        raise ValidationError({"file": [f"{path} is not a crmkit database (it has no core schema revision)"]})

    known = {lin.name: lin for lin in crm.lineages()}
    for name, revs in revisions.items():
        if name in known and not set(revs) <= migrations.known_revisions(known[name]):
            raise ValidationError(
                {
                    "file": [
                        f"{path} was made by a newer version of {name} "
                        f"(revision {'/'.join(revs)}): upgrade crmkit first"
                    ]
                }
            )
    erased = _erased_customers(crm)
    raw = crm.engine.raw_connection()
    try:
        backup_file = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            backup_file.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            backup_file.close()
    finally:
        raw.close()
    crm.engine.dispose()  # pooled connections may hold the replaced database's cached schema
    with crm.transaction() as session:
        crm.audit.record(session, "restore", "database", path.name, changes={"revisions": revisions})
    again = tuple(sorted(erased & _present_customers(crm)))
    for customer_id in again:  # an erasure outlives the backups taken before it
        crm.customers.erase(customer_id, reason="erased again: restored from a backup taken before the erasure")
    return Backup(path, path.stat().st_size, revisions, again)


def _erased_customers(crm: CRM) -> set[int]:
    """Ids of the customers erased in the database about to be replaced."""
    from crmkit.core import tables as t

    with crm.engine.connect() as conn:
        return set(conn.execute(sa.select(t.customers.c.id).where(t.customers.c.status == "erased")).scalars())


def _present_customers(crm: CRM) -> set[int]:
    """Ids of the customers the restored database holds and has not erased."""
    from crmkit.core import tables as t

    with crm.engine.connect() as conn:
        return set(conn.execute(sa.select(t.customers.c.id).where(t.customers.c.status != "erased")).scalars())


def _require_sqlite(crm: CRM, action: str) -> None:
    if crm.engine.dialect.name != "sqlite":
        raise ValidationError({"database": [f"crmkit db {action} works on SQLite; {POSTGRES_HINT}"]})
    if crm.engine.url.database in (None, "", ":memory:"):
        raise ValidationError({"database": [f"an in-memory database has nothing to {action}"]})


def _revisions(path: Path) -> dict[str, tuple[str, ...]]:
    """``{lineage: revisions}`` recorded in the SQLite file at ``path`` (read-only)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'crmkit_version_%'"
                )
            ]
            return {
                table.removeprefix("crmkit_version_"): tuple(
                    sorted(v for (v,) in conn.execute(f'SELECT version_num FROM "{table}"'))  # noqa: S608 - a name from the file's catalogue
                )
                for table in tables
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ValidationError({"file": [f"{path} is not a SQLite database ({exc})"]}) from None
