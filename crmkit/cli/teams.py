"""``crmkit teams …``: the company tree (company → branch → team) that ``team`` scopes reach down (thin callers
of ``crm.teams``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_format, emit, emit_object, format_option

if TYPE_CHECKING:
    from crmkit.core.models import Team
    from crmkit.crm import CRM

INDENT = "  "


def team_view(team: Team, sub_teams: Sequence[str] | None = None) -> dict[str, Any]:
    """One team: its parent, members and (when given) the teams directly under it."""
    view: dict[str, Any] = {"name": team.name, "parent": team.parent, "members": list(team.members)}
    if sub_teams is not None:
        view["sub_teams"] = list(sub_teams)
    if current_format() == "table":
        view["parent"] = view["parent"] or "(top)"
    return view


def tree_rows(teams: Sequence[Team]) -> list[dict[str, Any]]:
    """The teams in tree order, each under its parent; ``team`` indented by depth (table format)."""
    children: dict[str | None, list[Team]] = {}
    names = {team.name for team in teams}
    for team in teams:  # listed by name, so siblings stay in name order
        children.setdefault(team.parent if team.parent in names else None, []).append(team)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for team in children.get(parent, ()):
            rows.append(
                {
                    "team": INDENT * depth + team.name,
                    "name": team.name,
                    "parent": team.parent,
                    "depth": depth,
                    "members": list(team.members),
                }
            )
            walk(team.name, depth + 1)

    walk(None, 0)
    return rows


@click.group("teams")
def teams() -> None:
    """The company tree: a user of a team sees (with `team` scope) what everyone in it and its sub-teams owns."""


@teams.command("add")
@click.argument("name")
@click.option("--parent", help="The team it sits under (default: at the top).")
@format_option
@pass_crm
def add(crm: CRM, name: str, parent: str | None) -> None:
    """Create team NAME, optionally under --parent.

    \b
    crmkit teams add "Công ty Minh Phát"
    crmkit teams add "Chi nhánh Hà Nội" --parent "Công ty Minh Phát"
    """
    emit_object(team_view(crm.teams.add(name, parent=parent)))


@teams.command("list")
@format_option
@pass_crm
def list_teams(crm: CRM) -> None:
    """Every team as a tree (sub-teams indented under their parent) with its members."""
    rows = tree_rows(crm.teams.list())
    if current_format() == "table":
        emit(rows, ("team", "members"))
    else:
        emit(rows, ("name", "parent", "depth", "members"))


@teams.command("show")
@click.argument("name")
@format_option
@pass_crm
def show(crm: CRM, name: str) -> None:
    """Show team NAME: its parent, the teams directly under it and its members."""
    team = crm.teams.get(name)
    below = [t.name for t in crm.teams.list() if t.parent == team.name]
    emit_object(team_view(team, below))


@teams.command("move")
@click.argument("name")
@click.option("--parent", help="The team to put it under.")
@click.option("--top", is_flag=True, help="Put it at the top of the tree.")
@format_option
@pass_crm
def move(crm: CRM, name: str, parent: str | None, top: bool) -> None:
    """Move team NAME under --parent, or to the --top (a move that would make a cycle is refused)."""
    if (parent is None) == (not top):
        raise click.UsageError("give exactly one of --parent TEAM or --top")
    emit_object(team_view(crm.teams.move(name, parent)))


@teams.command("add-member")
@click.argument("team")
@click.argument("username", metavar="USER")
@format_option
@pass_crm
def add_member(crm: CRM, team: str, username: str) -> None:
    """Put USER in TEAM (already there: nothing changes)."""
    crm.teams.add_member(team, username)
    emit_object(team_view(crm.teams.get(team)))


@teams.command("remove-member")
@click.argument("team")
@click.argument("username", metavar="USER")
@format_option
@pass_crm
def remove_member(crm: CRM, team: str, username: str) -> None:
    """Take USER out of TEAM."""
    crm.teams.remove_member(team, username)
    emit_object(team_view(crm.teams.get(team)))
