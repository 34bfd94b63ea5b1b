"""Alembic lineages: the core's and one per plugin, each with its own version table.

Each lineage keeps its own version table (``crmkit_version_<name>``) rather than sharing
Alembic's single ``alembic_version``: uninstalling a plugin then leaves a harmless row
behind instead of breaking ``upgrade heads`` for everyone ("Can't locate revision").
The core lineage is always upgraded first; plugins follow in dependency order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from typing import Any

import attrs
import sqlalchemy as sa

CORE = "crmkit"
SCRIPT_LOCATION = str(resources.files("crmkit") / "migrations")


@attrs.frozen
class Lineage:
    """One plugin's (or the core's) migration history and the tables it creates."""

    name: str
    location: str  # folder of revision files
    metadata: Any = attrs.field(eq=False, default=None)

    @property
    def version_table(self) -> str:
        return f"crmkit_version_{self.name}"


def core_lineage() -> Lineage:
    """The core's own lineage."""
    from crmkit.core.tables import metadata

    return Lineage(CORE, str(resources.files("crmkit.migrations") / "versions"), metadata)


def plugin_lineage(name: str, package: str, metadata: Any) -> Lineage:
    """The lineage of a plugin whose revisions live in ``package`` (e.g. ``crmkit_sales.migrations``)."""
    return Lineage(name, str(resources.files(package)), metadata)


def _config(lineage: Lineage, connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("version_locations", lineage.location)
    config.set_main_option("path_separator", "os")
    config.attributes.update(
        connection=connection, version_table=lineage.version_table, target_metadata=lineage.metadata
    )
    return config


@cache
def _revisions(location: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """(heads, every known revision) of the revision files in ``location``."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config(Lineage("?", location)))
    return tuple(sorted(script.get_heads())), frozenset(rev.revision for rev in script.walk_revisions())


def heads(lineage: Lineage) -> tuple[str, ...]:
    """The newest revision(s) shipped with the installed code."""
    return _revisions(lineage.location)[0]


def known_revisions(lineage: Lineage) -> frozenset[str]:
    """Every revision the installed code ships for this lineage (a database at another one is from a newer crmkit)."""
    return _revisions(lineage.location)[1]


def current(connection: sa.Connection, lineage: Lineage) -> tuple[str, ...]:
    """The revision(s) the database is at for this lineage (empty when never applied)."""
    if not sa.inspect(connection).has_table(lineage.version_table):
        return ()
    rows = connection.execute(sa.text(f"SELECT version_num FROM {lineage.version_table}")).scalars()  # noqa: S608 - a plugin's declared table name
    return tuple(sorted(rows))


def behind(engine: sa.Engine, lineages: Iterable[Lineage]) -> list[Lineage]:
    """Lineages whose database revision differs from the installed head."""
    with engine.connect() as conn:
        return [lin for lin in lineages if current(conn, lin) != heads(lin)]


def unknown(engine: sa.Engine, lineages: Iterable[Lineage]) -> dict[str, tuple[str, ...]]:
    """``{lineage: revisions}`` the database is at but the installed code does not ship.

    That database was upgraded by a newer crmkit or plugin; no upgrade can fix it here.
    """
    with engine.connect() as conn:
        found = {
            lin.name: tuple(r for r in current(conn, lin) if r not in _revisions(lin.location)[1]) for lin in lineages
        }
    return {name: revs for name, revs in found.items() if revs}


def upgrade(engine: sa.Engine, lineages: Sequence[Lineage], target: str = "heads") -> None:
    """Bring every lineage to ``target`` (core first), all in one transaction.

    A first ``crmkit init`` or an upgrade that fails or is killed half-way leaves the schema as it was, never
    with some plugins' tables made and others missing.
    """
    from alembic import command

    with _migrating(engine) as conn:
        for lineage in lineages:
            command.upgrade(_config(lineage, conn), target)


def downgrade(engine: sa.Engine, lineage: Lineage, target: str = "base") -> None:
    """Take one lineage down to ``target`` (``base`` drops all its tables), with the data in place."""
    from alembic import command

    with _migrating(engine) as conn:
        command.downgrade(_config(lineage, conn), target)


@contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in one transaction for a migration step; on SQLite with foreign keys checked at the end.

    SQLite changes a table by copying it into a new one and dropping the old (Alembic's batch mode); with
    foreign keys enforced, dropping a table other rows reference fails although the copy keeps them valid. So
    enforcement is off while the step runs (SQLite ignores the pragma inside a transaction, hence before it)
    and ``PRAGMA foreign_key_check`` must find nothing before the step commits.
    """
    from crmkit.errors import Conflict

    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
                if broken:
                    table, rowid, parent, _ = broken[0]
                    raise Conflict(
                        f"the migration left {len(broken)} row(s) pointing nowhere, e.g. {table} "
                        f"row {rowid} → {parent}; nothing was changed"
                    )
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def revision(
    lineage: Lineage, engine: sa.Engine, message: str, autogenerate: bool = True, rev_id: str | None = None
) -> Any:
    """Write a new revision file for ``lineage`` (``autogenerate`` diffs the database against its tables);
    ``rev_id`` names it (``notes_0002``) instead of a random id."""
    from alembic import command

    with engine.connect() as conn:
        config = _config(lineage, conn)
        head = heads(lineage)
        script = command.revision(
            config,
            message=message,
            autogenerate=autogenerate,
            version_path=lineage.location,
            head=head[0] if head else "base",
            branch_label=None if head else lineage.name,
            rev_id=rev_id,
        )
    _revisions.cache_clear()
    return script
