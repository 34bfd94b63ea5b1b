"""``crmkit plugins …``: which plugins are installed, their state in this database, and switching them on or off."""

from __future__ import annotations

from pathlib import Path

import click

from crmkit.cli.context import CLIContext
from crmkit.cli.output import current_format, current_translator, emit, format_option


@click.group("plugins")
def plugins() -> None:
    """Installed plugins and their state in this database."""


@plugins.command("list")
@format_option
@click.pass_obj
def list_plugins(state: CLIContext) -> None:
    """Every discovered plugin: version, status (enabled / disabled / failed: reason) and the hooks it implements.

    Exits 1 when a plugin failed to load (`crmkit doctor` says what to do).
    """
    state.check_schema = False  # a plugin whose schema is behind is still listed (and can be disabled)
    table = current_format() == "table"
    rows = [
        {
            "name": info.name,
            "version": info.version,
            "status": f"{info.status}: {info.reason}" if info.reason else info.status,
            "hooks": [h.removeprefix("crmkit_") for h in info.hooks] if table else info.hooks,
        }
        for info in state.crm.plugins.list()
    ]
    emit(rows, ("name", "version", "status", "hooks"))
    if not rows and table:
        click.echo(
            current_translator().gettext(
                "No plugins installed: `pip install ./plugins/sales` (or any crmkit-* distribution) adds one."
            )
        )
    if any(info.status == "failed" for info in state.crm.plugins.list()):
        raise click.exceptions.Exit(1)


@plugins.command("holds")
@click.argument("name", required=False)
@format_option
@click.pass_obj
def holds(state: CLIContext, name: str | None) -> None:
    """What each enabled plugin (or plugin NAME) declares it holds about customers, table by table, and what erasure
    does with it (`Plugin(personal_data=…)`, `retained_tables`)."""
    from crmkit.core.declared_data import holdings

    infos = [i for i in state.crm.plugins.list() if i.status == "enabled" and i.plugin and name in (None, i.name)]
    if name and not infos:
        raise click.BadParameter(f"no enabled plugin named {name!r}", param_hint="NAME")
    rows = [{"plugin": info.name, **row} for info in infos if info.plugin for row in holdings(info.plugin)]
    emit(rows, ("plugin", "table", "holds", "erasure"))


@plugins.command("enable")
@click.argument("name")
@click.pass_obj
def enable(state: CLIContext, name: str) -> None:
    """Enable plugin NAME for this database (then `crmkit db upgrade` creates its tables)."""
    state.check_schema = False
    state.crm.plugins.enable(name)
    click.echo(
        current_translator().gettext(
            "plugin %(name)s enabled; run `crmkit db upgrade` if its tables are not created yet"
        )
        % {"name": name}
    )


@plugins.command("disable")
@click.argument("name")
@click.pass_obj
def disable(state: CLIContext, name: str) -> None:
    """Disable plugin NAME for this database; its tables and data stay."""
    state.check_schema = False
    state.crm.plugins.disable(name)
    click.echo(
        current_translator().gettext("plugin %(name)s disabled for this database (its data is kept)") % {"name": name}
    )


@plugins.command("new")
@click.argument("name")
@click.option(
    "--with",
    "extras",
    metavar="PARTS",
    default="",
    help="Optional parts, comma-separated: api (an HTTP resource), console (a customer-360 panel); each with its tests.",
)
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default="the current folder",
    help="Where to write the crmkit-NAME folder.",
)
def new(name: str, extras: str, into: Path) -> None:
    """Write a new plugin distribution crmkit-NAME that installs with pip and passes its own tests at once.

    It holds a customer-owned table with its first migration (NAME_0001), the service `crm.NAME`, the command group
    `crmkit NAME`, a profile section, the table declared as personal data (the core exports, erases and merges its
    rows), two permissions, contract tests and a README.
    """
    from crmkit.hooks.manager import discover
    from crmkit.scaffold import create

    installed = [found.name for found in discover()]
    parts = [part.strip() for part in extras.split(",") if part.strip()]
    target = create(name, into, parts, installed, current_translator().gettext)
    code = [path for path in target.rglob("*.py") if "tests" not in path.parts and "migrations" not in path.parts]
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in code)
    click.echo(
        current_translator().gettext(
            "wrote %(folder)s (%(lines)d lines of code); next: pip install -e '%(folder)s[test]' && "
            "crmkit db upgrade && pytest %(folder)s"
        )
        % {"folder": target, "lines": lines}
    )
