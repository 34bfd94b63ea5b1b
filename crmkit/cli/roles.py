"""``crmkit roles …``: named sets of permissions, each with a record scope, and who holds them (thin callers of
``crm.roles``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_format, current_translator, emit, emit_object, format_option
from crmkit.cli.params import KeyValueParam, LazyChoice
from crmkit.cli.users import user_view
from crmkit.core.jsonable import to_jsonable

if TYPE_CHECKING:
    from crmkit.core.models import Role
    from crmkit.crm import CRM

SCOPES = LazyChoice("crmkit.core.permissions:SCOPES")
LIST_COLUMNS = ("name", "permissions", "description")
GRANT_COLUMNS = ("permission", "scope", "plugin", "description")


class GrantParam(KeyValueParam):
    """``PERMISSION=SCOPE`` (``customers.read=team``)."""

    name = "permission=scope"

    def __init__(self) -> None:
        super().__init__(json_values=False)


def show_role(crm: CRM, role: Role) -> None:
    """Print a role: its grants as a table (permission, scope, declaring plugin, what it allows), or the role
    as one JSON/CSV record."""
    if current_format() != "table":
        emit_object(to_jsonable(role))
        return
    declared = crm.access.permissions
    rows = [
        {
            "permission": name,
            "scope": scope,
            "plugin": declared[name].plugin if name in declared else "(not declared by an enabled plugin)",
            "description": declared[name].description if name in declared else "",
        }
        for name, scope in sorted(role.grants.items())
    ]
    title = f"Role {role.name}" + (f": {role.description}" if role.description else "")
    emit(rows, GRANT_COLUMNS, title=title)


@click.group("roles")
def roles() -> None:
    """Roles: permissions, each with a record scope (own / team / all), given to users."""


@roles.command("list")
@format_option
@pass_crm
def list_roles(crm: CRM) -> None:
    """Every role with how many permissions it grants."""
    if current_format() != "table":
        emit([to_jsonable(r) for r in crm.roles.list()], ("name", "description", "grants"))
        return
    emit(
        [{"name": r.name, "permissions": len(r.grants), "description": r.description} for r in crm.roles.list()],
        LIST_COLUMNS,
    )


@roles.command("show")
@click.argument("name")
@format_option
@pass_crm
def show(crm: CRM, name: str) -> None:
    """Show role NAME: each permission it grants and with which scope."""
    show_role(crm, crm.roles.get(name))


@roles.command("add")
@click.argument("name")
@click.option("--description", default="", help="What the role is for.")
@click.option(
    "--grant",
    "grants",
    type=GrantParam(),
    multiple=True,
    help="PERMISSION=SCOPE (own, team or all), e.g. customers.read=team; repeat for several.",
)
@format_option
@pass_crm
def add(crm: CRM, name: str, description: str, grants: tuple[tuple[str, str], ...]) -> None:
    """Create role NAME (a permission no enabled plugin declares is refused, named).

    \b
    crmkit roles add telesales --description "calls their own customers" \\
        --grant customers.read=own --grant customers.contact_details=own --grant interactions.log=own
    """
    show_role(crm, crm.roles.add(name, description, dict(grants)))


@roles.command("grant")
@click.argument("role")
@click.argument("permission")
@click.option(
    "--scope",
    type=SCOPES,
    default="all",
    show_default=True,
    help="Which records: the user's own, their teams' (and sub-teams'), or all.",
)
@format_option
@pass_crm
def grant(crm: CRM, role: str, permission: str, scope: str) -> None:
    """Give ROLE the PERMISSION with --scope (replacing the scope it had)."""
    show_role(crm, crm.roles.grant(role, permission, scope))


@roles.command("revoke")
@click.argument("role")
@click.argument("permission")
@format_option
@pass_crm
def revoke(crm: CRM, role: str, permission: str) -> None:
    """Take PERMISSION away from ROLE."""
    show_role(crm, crm.roles.revoke(role, permission))


@roles.command("assign")
@click.argument("username", metavar="USER")
@click.argument("role")
@format_option
@pass_crm
def assign(crm: CRM, username: str, role: str) -> None:
    """Give USER the ROLE (already held: nothing changes)."""
    crm.roles.assign(username, role)
    emit_object(user_view(crm.users.get(username)))


@roles.command("unassign")
@click.argument("username", metavar="USER")
@click.argument("role")
@format_option
@pass_crm
def unassign(crm: CRM, username: str, role: str) -> None:
    """Take ROLE from USER."""
    crm.roles.unassign(username, role)
    emit_object(user_view(crm.users.get(username)))


@roles.command("delete")
@click.argument("name")
@pass_crm
def delete(crm: CRM, name: str) -> None:
    """Delete role NAME (one still held by someone is refused: unassign it first)."""
    crm.roles.delete(name)
    click.echo(current_translator().gettext("role %(name)s deleted") % {"name": name})
