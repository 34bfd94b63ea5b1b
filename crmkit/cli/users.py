"""``crmkit users …``: the business's employees and their API tokens (thin callers of ``crm.users``)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_format, current_translator, emit, emit_object, format_option
from crmkit.cli.params import AWARE_DATETIME, LazyChoice
from crmkit.core.jsonable import to_jsonable

if TYPE_CHECKING:
    from crmkit.core.models import ApiToken, User
    from crmkit.crm import CRM

LOCALES = LazyChoice("crmkit.locales:LOCALES")
LIST_COLUMNS = ("username", "name", "active", "teams", "roles", "email", "phone", "last_login")
TOKEN_COLUMNS = (
    "id",
    "user",
    "name",
    "status",
    "permissions",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "created_at",
)


# -- turning users into what a person reads ------------------------------------------------------------------


def user_view(user: User) -> dict[str, Any]:
    """The user as ``users show`` prints it (table format: empty fields left out; the output shows times local)."""
    if current_format() != "table":
        return dict(to_jsonable(user))
    view: dict[str, Any] = {
        "username": user.username,
        "name": user.display_name,
        "active": "yes" if user.active else "no (disabled)",
        "email": user.email,
        "phone": user.phone,
        "locale": user.locale,
        "timezone": user.timezone,
        "teams": list(user.teams),
        "roles": list(user.roles),
        "password": "set" if user.has_password else "not set",
        "locked_until": user.locked_until,
        "last_login": user.last_login_at,
        "created_at": user.created_at,
    }
    return {k: v for k, v in view.items() if v not in (None, "", [])}


def list_row(user: User) -> dict[str, Any]:
    """One line of ``users list``."""
    table = current_format() == "table"
    return {
        "username": user.username,
        "name": user.display_name,
        "active": ("yes" if user.active else "no") if table else user.active,
        "teams": list(user.teams),
        "roles": list(user.roles),
        "email": user.email,
        "phone": user.phone,
        "last_login": user.last_login_at,
    }


def token_row(token: ApiToken, now: datetime) -> dict[str, Any]:
    """One token, never with its secret."""
    table = current_format() == "table"
    row: dict[str, Any] = {
        "id": token.id,
        "user": token.user,
        "name": token.name,
        "status": token.status(now),
        "permissions": list(token.permissions)
        if token.permissions is not None
        else ("(all of the user's)" if table else None),
    }
    for key in ("expires_at", "last_used_at", "revoked_at", "created_at"):  # times the output formats per locale
        row[key] = getattr(token, key)
    return row


def read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice without echo (prompts on stderr)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


#: ``--password-stdin``: the password is the first line of standard input (for scripts; never on the command line).
password_stdin_option = click.option(
    "--password-stdin",
    "password_stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)


# -- the group -------------------------------------------------------------------------------------------------


@click.group("users")
def users() -> None:
    """Employees: accounts, passwords, teams and roles, API tokens, handing customers over."""


@users.command("add")
@click.argument("username")
@click.option("--name", "display_name", help='Display name ("Nguyễn Thị Lan"); default: the username.')
@click.option("--email", help="Work e-mail address.")
@click.option("--phone", help="Work phone (0912 345 678 → +84912345678).")
@click.option("--locale", type=LOCALES, help="Language of the console for them: vi or en.")
@click.option("--timezone", help="Their time zone (Asia/Ho_Chi_Minh).")
@click.option("--team", "teams", multiple=True, help="A team they belong to; repeat for several.")
@click.option("--role", "roles", multiple=True, help="A role they hold (sales, manager, …); repeat for several.")
@click.option("--password", "ask_password", is_flag=True, help="Set a password now, typed twice at a hidden prompt.")
@password_stdin_option
@format_option
@pass_crm
def add(crm: CRM, username: str, ask_password: bool, password_stdin: bool, **fields: Any) -> None:
    """Create user USERNAME (active; without a password they cannot sign in until `users passwd`).

    \b
    crmkit users add lan.nguyen --name "Nguyễn Thị Lan" --email lan@example.com --team "Chi nhánh Hà Nội" \\
        --role sales --password
    """
    if ask_password and password_stdin:
        raise click.UsageError("give --password or --password-stdin, not both")
    password = read_password(password_stdin) if ask_password or password_stdin else None
    fields["teams"], fields["roles"] = list(fields["teams"]), list(fields["roles"])
    emit_object(user_view(crm.users.add(username, password=password, **fields)))


@users.command("list")
@click.option("--active/--disabled", "active", default=None, help="Only active (or only disabled) users.")
@click.option("--team", help="Only members of this team.")
@format_option
@pass_crm
def list_users(crm: CRM, active: bool | None, team: str | None) -> None:
    """Every user by username."""
    emit([list_row(u) for u in crm.users.list(active=active, team=team)], LIST_COLUMNS)


@users.command("show")
@click.argument("username")
@format_option
@pass_crm
def show(crm: CRM, username: str) -> None:
    """Show user USERNAME: contact details, teams, roles, whether a password is set, the last sign-in."""
    emit_object(user_view(crm.users.get(username)))


@users.command("update")
@click.argument("username")
@click.option("--name", "display_name", help="Display name.")
@click.option("--email", help='Work e-mail address ("" clears it).')
@click.option("--phone", help='Work phone ("" clears it).')
@click.option("--locale", help='vi or en ("" clears it).')
@click.option("--timezone", help='Time zone, e.g. Asia/Ho_Chi_Minh ("" clears it).')
@format_option
@pass_crm
def update(crm: CRM, username: str, **fields: Any) -> None:
    """Change the given fields of USERNAME (teams: `crmkit teams add-member`; roles: `crmkit roles assign`)."""
    given = {k: v for k, v in fields.items() if v is not None}  # the service clears a field given as ""
    if not given:
        raise click.UsageError("nothing to update: give at least one field option (see --help)")
    emit_object(user_view(crm.users.update(username, **given)))


@users.command("disable")
@click.argument("username")
@format_option
@pass_crm
def disable(crm: CRM, username: str) -> None:
    """Disable USERNAME: no sign-in, no token, no record assigned to them; their customers stay theirs
    (`crmkit users reassign` hands them over)."""
    emit_object(user_view(crm.users.disable(username)))


@users.command("enable")
@click.argument("username")
@format_option
@pass_crm
def enable(crm: CRM, username: str) -> None:
    """Let a disabled USERNAME back in (their failed sign-ins are forgotten)."""
    emit_object(user_view(crm.users.enable(username)))


@users.command("passwd")
@click.argument("username")
@password_stdin_option
@pass_crm
def passwd(crm: CRM, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password: typed twice at a hidden prompt, or one line of standard input with --password-stdin.

    A weak password (under 10 characters, repetitive, common, or containing the username) is refused.
    """
    crm.users.get(username)  # an unknown user is said before the password is asked for
    crm.users.set_password(username, read_password(password_stdin))
    click.echo(current_translator().gettext("password of %(user)s changed") % {"user": username})


@users.command("reassign")
@click.argument("from_user", metavar="FROM")
@click.argument("to_user", metavar="TO")
@format_option
@pass_crm
def reassign(crm: CRM, from_user: str, to_user: str) -> None:
    """Give every customer owned by FROM to TO (someone leaves): one audited change."""
    moved = crm.users.reassign(from_user, to_user)
    if current_format() == "table":
        t = current_translator()
        click.echo(
            t.ngettext(
                "moved %(count)s customer from %(from)s to %(to)s",
                "moved %(count)s customers from %(from)s to %(to)s",
                moved,
            )
            % {"count": t.format_number(moved), "from": from_user, "to": to_user}
        )
    else:
        emit_object({"from": from_user, "to": to_user, "customers_moved": moved})


# -- API tokens ------------------------------------------------------------------------------------------------


@users.group("token")
def token() -> None:
    """API tokens for integrations: created for a user, optionally narrowed and expiring; revocable."""


@token.command("create")
@click.argument("username")
@click.option("--name", required=True, help='What the token is for ("website form", "Zalo OA sync").')
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    help="Narrow the token to this permission of the user's; repeat for several (default: all of them).",
)
@click.option("--expires-in-days", type=click.IntRange(1, 36_500), help="The token ends this many days from now.")
@click.option("--expires-at", type=AWARE_DATETIME, help="The token ends at this time (ISO, with a time zone).")
@format_option
@pass_crm
def create_token(
    crm: CRM,
    username: str,
    name: str,
    permissions: tuple[str, ...],
    expires_in_days: int | None,
    expires_at: datetime | None,
) -> None:
    """Create an API token acting as USERNAME; its secret is printed this once and never again."""
    if expires_in_days is not None and expires_at is not None:
        raise click.UsageError("give --expires-in-days or --expires-at, not both")
    if expires_in_days is not None:
        expires_at = crm.now() + timedelta(days=expires_in_days)
    created = crm.users.create_token(username, name, permissions=list(permissions) or None, expires_at=expires_at)
    emit_object({**token_row(created, crm.now()), "secret": created.secret})
    click.echo(
        current_translator().gettext("warning: copy the secret now: it is not shown again (only its hash is stored)"),
        err=True,
    )


@token.command("list")
@click.argument("username", required=False)
@format_option
@pass_crm
def list_tokens(crm: CRM, username: str | None) -> None:
    """Tokens of USERNAME (or everyone's), newest first; secrets are never shown."""
    emit([token_row(t, crm.now()) for t in crm.users.tokens(username)], TOKEN_COLUMNS)


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@pass_crm
def revoke_token(crm: CRM, token_id: int) -> None:
    """Revoke token ID at once: its next use is refused (and audited)."""
    crm.users.revoke_token(token_id)
    click.echo(current_translator().gettext("token %(id)s revoked") % {"id": token_id})
