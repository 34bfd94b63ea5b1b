"""``crmkit init`` and ``crmkit db …``: create, inspect and upgrade the schema of the core and enabled plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import CLIContext, pass_crm
from crmkit.cli.output import N_, current_translator, emit, format_option

if TYPE_CHECKING:
    from crmkit.crm import CRM

LINEAGE_COLUMNS = (N_("lineage"), N_("current"), N_("head"), N_("state"))


def lineage_rows(crm: CRM) -> list[dict[str, Any]]:
    """Per migration lineage (core, then enabled plugins): the database's revision, the code's head, and the verdict."""
    from crmkit import migrations

    rows = []
    with crm.reading() as conn:
        for lineage in crm.lineages():
            current, head = migrations.current(conn, lineage), migrations.heads(lineage)
            if current == head:
                state = "up to date"
            elif not current:
                state = "not applied (run `crmkit db upgrade`)"
            else:
                state = "behind (run `crmkit db upgrade`)"
            rows.append(
                {
                    "lineage": lineage.name,
                    "current": ", ".join(current) or "-",
                    "head": ", ".join(head) or "-",
                    "state": state,
                }
            )
    managed = {row["lineage"] for row in rows}
    for info in crm.registry.enabled():  # a plugin with tables but no lineage: nothing manages its schema
        if info.plugin is not None and info.plugin.tables and info.name not in managed:
            rows.append({"lineage": info.name, "current": "-", "head": "-", "state": "no migrations for its tables"})
    return rows


def _upgraded(state: CLIContext) -> CRM:
    state.upgrade = True
    return state.crm


@click.command("init")
@format_option
@click.pass_obj
def init(state: CLIContext) -> None:
    """Create the database and the schema of the core and every enabled plugin (safe to re-run)."""
    crm = _upgraded(state)
    title = current_translator().gettext("crmkit database ready: %(url)s") % {"url": _shown_url(crm)}
    emit(lineage_rows(crm), LINEAGE_COLUMNS, title=title)


@click.group("db")
def db() -> None:
    """Schema migrations: one Alembic lineage for the core and one per plugin."""


@db.command("upgrade")
@format_option
@click.pass_obj
def upgrade(state: CLIContext) -> None:
    """Apply every pending migration (all heads of the core and enabled plugins)."""
    crm = _upgraded(state)
    emit(lineage_rows(crm), LINEAGE_COLUMNS, title=current_translator().gettext("Schema up to date"))


@db.command("current")
@format_option
@click.pass_obj
def current(state: CLIContext) -> None:
    """Show each lineage's revision in the database next to the installed head."""
    state.check_schema = False
    emit(lineage_rows(state.crm), LINEAGE_COLUMNS)


@db.command("revision")
@click.argument("plugin")
@click.option("-m", "--message", required=True, help="What the migration does (becomes part of the file name).")
@click.option(
    "--empty", is_flag=True, help="Write an empty revision instead of diffing the database against the plugin's tables."
)
@click.option(
    "--rev-id",
    metavar="ID",
    help="The revision id, readable and in order (`notes_0002`) [default: a random one]; must not be used yet.",
)
@pass_crm
def revision(crm: CRM, plugin: str, message: str, empty: bool, rev_id: str | None) -> None:
    """Write a new migration for PLUGIN (or `crmkit` for the core) from the difference between its tables and the database."""
    import re

    from crmkit import migrations
    from crmkit.errors import NotFound, ValidationError

    lineages = {lineage.name: lineage for lineage in crm.lineages()}
    if plugin not in lineages:
        raise NotFound("migration lineage (an enabled plugin with migrations)", plugin)
    if rev_id is not None:
        if not re.fullmatch(r"[a-z0-9_]+", rev_id):
            raise ValidationError({"rev_id": [f"{rev_id!r}: use lower-case letters, digits and _ (e.g. notes_0002)"]})
        owner = next((lin.name for lin in lineages.values() if rev_id in migrations.known_revisions(lin)), None)
        if owner is not None:
            raise ValidationError({"rev_id": [f"{rev_id} is already a revision of {owner}: pick the next number"]})
    script = migrations.revision(lineages[plugin], crm.engine, message, autogenerate=not empty, rev_id=rev_id)
    click.echo(current_translator().gettext("wrote %(file)s") % {"file": script.path})


@db.command("downgrade")
@click.argument("lineage")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@format_option
@click.pass_obj
def downgrade(state: CLIContext, lineage: str, revision: str, yes: bool) -> None:
    """Take LINEAGE (a plugin, or `crmkit`) down to REVISION (`base` removes all its tables), data in place."""
    from alembic.util import CommandError

    from crmkit import migrations
    from crmkit.errors import NotFound, ValidationError

    state.check_schema = False
    crm = state.crm
    lineages = {lin.name: lin for lin in crm.lineages()}
    if lineage not in lineages:
        raise NotFound("migration lineage (an enabled plugin with migrations)", lineage)
    gettext = current_translator().gettext
    if not yes:
        click.confirm(
            gettext("Take %(lineage)s down to %(revision)s? What later revisions added is dropped with its data.")
            % {"lineage": lineage, "revision": revision},
            abort=True,
        )
    try:
        migrations.downgrade(crm.engine, lineages[lineage], revision)
    except CommandError as exc:  # an unknown revision, or one above the current
        raise ValidationError({"revision": [str(exc)]}) from None
    emit(lineage_rows(crm), LINEAGE_COLUMNS, title=gettext("Schema downgraded"))


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
@format_option
@click.pass_obj
def backup(state: CLIContext, file: str, overwrite: bool) -> None:
    """Write a consistent copy of the SQLite database to FILE while the CRM stays in use (SQLite's backup API)."""
    from crmkit.core.backup import backup as write_backup

    state.check_schema = False
    made = write_backup(state.crm, file, overwrite=overwrite)
    _emit_backup(made, current_translator().gettext("Backup written"))


@db.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@format_option
@click.pass_obj
def restore(state: CLIContext, file: str, yes: bool) -> None:
    """Replace the SQLite database with the backup FILE (stop the server and the worker first)."""
    from crmkit.core.backup import restore as read_backup

    state.check_schema = False
    gettext = current_translator().gettext
    if not yes:
        click.confirm(
            gettext("Replace everything in %(url)s with %(file)s?") % {"url": _shown_url(state.crm), "file": file},
            abort=True,
        )
    restored = read_backup(state.crm, file)
    _emit_backup(restored, gettext("Database restored"))
    if restored.erased_again:
        click.echo(
            gettext("Erased again: %(count)d customer(s) erased after this backup was taken.")
            % {"count": len(restored.erased_again)},
            err=True,
        )
    if any(row["current"] != row["head"] for row in lineage_rows(state.crm)):
        click.echo(gettext("The backup's schema is older than this installation: run `crmkit db upgrade`."), err=True)


def _emit_backup(made: Any, title: str) -> None:
    emit(
        [
            {
                "file": str(made.path),
                "size": made.size,
                "revisions": "; ".join(f"{name} {'/'.join(revs)}" for name, revs in sorted(made.revisions.items())),
            }
        ],
        (N_("file"), N_("size"), N_("revisions")),
        title=title,
    )


def _shown_url(crm: CRM) -> str:
    from crmkit.core.redact import mask_database_url

    return mask_database_url(crm.engine.url)
