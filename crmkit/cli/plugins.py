"""``crmkit plugins …``: which plugins are installed, their state in this database, and switching them on or off."""

from __future__ import annotations

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
    """Every discovered plugin: version, status (enabled / disabled / failed: reason) and the hooks it implements."""
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
