"""``crmkit permissions list``: every permission the core and the enabled plugins declare."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_format, emit, format_option

if TYPE_CHECKING:
    from crmkit.crm import CRM

COLUMNS = ("permission", "plugin", "scoped", "description", "default_roles")


def permission_rows(crm: CRM) -> list[dict[str, Any]]:
    """Every declared permission: name, declaring plugin, whether scoped, what it allows, default roles."""
    table = current_format() == "table"
    rows = []
    for name, permission in sorted(crm.access.permissions.items()):
        defaults = dict(permission.roles)
        rows.append(
            {
                "permission": name,
                "plugin": permission.plugin,
                "scoped": ("yes" if permission.scoped else "no") if table else permission.scoped,
                "description": permission.description,
                "default_roles": ", ".join(f"{role} ({scope})" for role, scope in defaults.items())
                if table
                else defaults,
            }
        )
    return rows


@click.group("permissions")
def permissions() -> None:
    """Named permissions, declared by the core and each enabled plugin."""


@permissions.command("list")
@format_option
@pass_crm
def list_permissions(crm: CRM) -> None:
    """Every declared permission: the plugin that declared it, whether it takes a record scope, what it allows,
    and the default roles that get it (administrator gets every one, with scope all)."""
    emit(permission_rows(crm), COLUMNS)
