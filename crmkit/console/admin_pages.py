"""The core's administration pages: users, teams, roles, API tokens, webhooks, plugins and the audit log.

Each handler calls the same services as the API and the CLI (``crm.users``, ``crm.teams``, ``crm.roles``,
``crm.webhooks``, ``crm.plugins``, ``crm.audit``) as the signed-in user, so they check the same permissions:
``users.admin`` for people and tokens, ``webhooks.admin``, ``settings.admin`` for plugins and ``audit.read``.
A password reset or a deactivation ends the user's console sessions. Secrets (a new token's, a new webhook's
signing secret) are shown once, in the answer to the form that made them, never in a URL or a later page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import attrs
from werkzeug.wrappers import Response

from crmkit.console.app import ConsoleRequest, set_cookie
from crmkit.console.extensions import ConsolePage, MenuEntry
from crmkit.console.forms import form_errors
from crmkit.console.sessions import ABSOLUTE, COOKIE
from crmkit.core.audit import AuditEntry
from crmkit.core.jsonable import to_jsonable
from crmkit.core.models import Role, Team, User
from crmkit.core.permissions import SCOPES, Permission
from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.locales import LOCALES
from crmkit.vncalendar import zone_named

USERS, WEBHOOKS, SETTINGS, AUDIT = "users.admin", "webhooks.admin", "settings.admin", "audit.read"
#: "Administration" for user administrators; "Audit log" for anyone reading it (a manager: about the team's customers).
ADMIN_MENU = (
    MenuEntry("Administration", "/console/admin/", USERS),
    MenuEntry("Audit log", "/console/admin/audit", AUDIT),
)
#: The administration's sections (label msgid, path, permission), in the order of its tabs.
SECTIONS = (
    ("Users", "/console/admin/users", USERS),
    ("Teams", "/console/admin/teams", USERS),
    ("Roles", "/console/admin/roles", USERS),
    ("API tokens", "/console/admin/tokens", USERS),
    ("Webhooks", "/console/admin/webhooks", WEBHOOKS),
    ("Plugins", "/console/admin/plugins", SETTINGS),
    ("Audit log", "/console/admin/audit", AUDIT),
)
LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}  # each language by its own name
PROFILE_FIELDS = ("display_name", "email", "phone", "locale", "timezone")
AUDIT_PAGE = 50
DELIVERIES = 50
BOTH = ("GET", "POST")


def admin_pages() -> list[ConsolePage]:
    """The administration's routes; each needs the permission its service checks."""
    post = ("POST",)
    return [
        ConsolePage("/console/admin/", index, permission=USERS),
        ConsolePage("/console/admin/users", user_list, permission=USERS),
        ConsolePage("/console/admin/users/new", user_new, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/users/<username>/edit", user_edit, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/users/<username>/active", user_active, methods=post, permission=USERS),
        ConsolePage("/console/admin/users/<username>/unlock", user_unlock, methods=post, permission=USERS),
        ConsolePage("/console/admin/users/<username>/password", user_password, methods=post, permission=USERS),
        ConsolePage("/console/admin/teams", team_list, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/teams/<int:team_id>", team_page, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/roles", role_list, permission=USERS),
        ConsolePage("/console/admin/roles/new", role_new, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/roles/<int:role_id>/edit", role_edit, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/tokens", token_list, methods=BOTH, permission=USERS),
        ConsolePage("/console/admin/tokens/<int:token_id>/revoke", token_revoke, methods=post, permission=USERS),
        ConsolePage("/console/admin/webhooks", webhook_list, methods=BOTH, permission=WEBHOOKS),
        ConsolePage("/console/admin/webhooks/<int:subscription_id>", webhook_page, permission=WEBHOOKS),
        ConsolePage(
            "/console/admin/webhooks/<int:subscription_id>/active", webhook_active, methods=post, permission=WEBHOOKS
        ),
        ConsolePage("/console/admin/plugins", plugin_list, permission=SETTINGS),
        ConsolePage("/console/admin/plugins/<name>", plugin_switch, methods=post, permission=SETTINGS),
        ConsolePage("/console/admin/audit", audit_log, permission=AUDIT),
    ]


# -- shared ----------------------------------------------------------------------------------------------


def _render(request: ConsoleRequest, template: str, section: str, *, status: int = 200, **values: Any) -> Response:
    """An administration page: ``template`` with the tabs of the sections the user may open, ``section`` current."""
    tabs = [(label, path) for label, path, permission in SECTIONS if request.allowed(permission)]
    return request.render(template, status=status, tabs=tabs, section=section, **values)


def _errors(exc: ValidationError | Conflict, field: str = "_") -> dict[str, list[str]]:
    """The service's messages by the field they name (a conflict under ``field``), nested ones flattened."""
    if isinstance(exc, Conflict):
        return {field: [str(exc)]}
    return form_errors(exc)


def _form(request: ConsoleRequest, names: Iterable[str]) -> dict[str, str]:
    """The posted values of ``names``, trimmed."""
    return {name: request.http.form.get(name, "").strip() for name in names}


def _checked(request: ConsoleRequest, name: str, choices: Iterable[str]) -> list[str]:
    """The ticked checkboxes ``name`` among the offered ``choices`` (anything else posted is ignored)."""
    ticked = set(request.http.form.getlist(name))
    return [choice for choice in choices if choice in ticked]


def _zone(request: ConsoleRequest) -> tzinfo:
    """The signed-in user's time zone (else the business's): dates typed in a form are days there."""
    user = request.user
    return zone_named(user.timezone) if user is not None and user.timezone else request.crm.timezone


def _day_start(request: ConsoleRequest, value: str, field: str, *, next_day: bool = False) -> datetime | None:
    """The start of the day ``value`` (YYYY-MM-DD), or of the day after it, in the user's zone (an aware time)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError("must be a date like 2026-12-31", field=field) from None
    return datetime.combine(day + timedelta(days=1 if next_day else 0), time(), tzinfo=_zone(request))


# -- the index -------------------------------------------------------------------------------------------


def index(request: ConsoleRequest) -> Response:
    """A card per section the user may open."""
    return _render(request, "admin_index.html", "")


# -- users -----------------------------------------------------------------------------------------------


def user_list(request: ConsoleRequest) -> Response:
    """Every user: username, name, roles, teams, active, locked, last sign-in."""
    return _render(
        request,
        "admin_users.html",
        "Users",
        users=request.crm.users.list(),
        now=request.crm.now(),
        saved=request.http.args.get("saved"),
    )


def _user_form(
    request: ConsoleRequest,
    user: User | None,
    values: Mapping[str, Any],
    errors: Mapping[str, list[str]],
    *,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    """The create form (``user`` None) or a user's page: profile, roles and teams, and the account's actions."""
    crm = request.crm
    return _render(
        request,
        "admin_user.html",
        "Users",
        status=status,
        user=user,
        values=values,
        errors=errors,
        roles_choices=[(role.name, role.name) for role in crm.roles.list()],
        teams_choices=[(team.name, team.name) for team in crm.teams.list()],
        languages=[(code, LANGUAGES.get(code, code)) for code in LOCALES],
        notice=notice,
        locked=user is not None and user.locked_until is not None and user.locked_until > crm.now(),
    )


def user_new(request: ConsoleRequest) -> Response:
    """The new-user form; ``crm.users.add`` makes the account with its password, roles and teams in one go."""
    crm = request.crm
    if request.http.method == "GET":
        blank = {**dict.fromkeys(("username", *PROFILE_FIELDS), ""), "locale": LOCALES[0], "roles": [], "teams": []}
        return _user_form(request, None, blank, {})
    values: dict[str, Any] = _form(request, ("username", *PROFILE_FIELDS))
    values["roles"] = _checked(request, "roles", [role.name for role in crm.roles.list()])
    values["teams"] = _checked(request, "teams", [team.name for team in crm.teams.list()])
    password = request.http.form.get("password", "")
    try:
        user = crm.users.add(
            values["username"],
            values["display_name"] or None,
            password=password or None,
            **{name: values[name] or None for name in PROFILE_FIELDS[1:]},
            roles=values["roles"],
            teams=values["teams"],
        )
    except (ValidationError, Conflict) as exc:
        return _user_form(request, None, values, _errors(exc, "username"), status=422)
    return request.redirect(f"/console/admin/users/{user.username}/edit", saved="created")


def _profile(user: User) -> dict[str, Any]:
    """A user as their page's form shows them."""
    return {
        "username": user.username,
        **{name: getattr(user, name) or "" for name in PROFILE_FIELDS},
        "roles": list(user.roles),
        "teams": list(user.teams),
    }


def user_edit(request: ConsoleRequest) -> Response:
    """A user's page: their profile, roles and teams (only what changed is sent to the services)."""
    crm, username = request.crm, request.params["username"]
    user = crm.users.get(username)
    current = _profile(user)
    if request.http.method == "GET":
        return _user_form(request, user, current, {}, notice=request.http.args.get("saved"))
    values: dict[str, Any] = {**current, **_form(request, PROFILE_FIELDS)}
    values["roles"] = _checked(request, "roles", [role.name for role in crm.roles.list()])
    values["teams"] = _checked(request, "teams", [team.name for team in crm.teams.list()])
    changed = {name: values[name] for name in PROFILE_FIELDS if values[name] != current[name]}
    try:
        if changed:
            crm.users.update(username, **changed)
        _apply(
            values["roles"],
            current["roles"],
            lambda role: crm.roles.assign(username, role),
            lambda role: crm.roles.unassign(username, role),
        )
        _apply(
            values["teams"],
            current["teams"],
            lambda team: crm.teams.add_member(team, username),
            lambda team: crm.teams.remove_member(team, username),
        )
    except ValidationError as exc:
        return _user_form(request, user, values, _errors(exc), status=422)
    return request.redirect(f"/console/admin/users/{username}/edit", saved="saved")


def _apply(wanted: list[str], current: list[str], add: Callable[[str], None], remove: Callable[[str], None]) -> None:
    """Add what is wanted and missing, remove what is there and no longer wanted."""
    for name in wanted:
        if name not in current:
            add(name)
    for name in current:
        if name not in wanted:
            remove(name)


def _end_sessions(request: ConsoleRequest, user: User) -> None:
    """End the user's console sessions (the administrator's own current one stays when it is theirs)."""
    request.app.sessions.end_all(user.id, keep=request.session.id if request.session else None)


def user_active(request: ConsoleRequest) -> Response:
    """Deactivate a user (their sessions end at once; their records stay) or let them back in."""
    crm, username = request.crm, request.params["username"]
    user = crm.users.get(username)
    if request.http.form.get("active") == "1":
        crm.users.enable(username)
        return request.redirect(f"/console/admin/users/{username}/edit", saved="activated")
    if request.user is not None and request.user.id == user.id:
        return _user_form(
            request,
            user,
            _profile(user),
            {"_": [request.i18n.gettext("You cannot deactivate your own account.")]},
            status=422,
        )
    crm.users.disable(username)
    _end_sessions(request, user)
    return request.redirect(f"/console/admin/users/{username}/edit", saved="deactivated")


def user_unlock(request: ConsoleRequest) -> Response:
    """Unlock an account locked by wrong passwords."""
    username = request.params["username"]
    request.crm.users.unlock(username)
    return request.redirect(f"/console/admin/users/{username}/edit", saved="unlocked")


def user_password(request: ConsoleRequest) -> Response:
    """Set a new password (checked like every other door): the user's console sessions end, and an administrator
    changing their own stays signed in on this browser with a new session."""
    crm, username = request.crm, request.params["username"]
    user = crm.users.get(username)
    try:
        crm.users.set_password(username, request.http.form.get("password", ""))
    except ValidationError as exc:
        return _user_form(request, user, _profile(user), _errors(exc), status=422)
    response = request.redirect(f"/console/admin/users/{username}/edit", saved="password")
    if request.user is not None and request.user.id == user.id:
        set_cookie(request, response, COOKIE, request.app.sessions.start(user.id), max_age=ABSOLUTE)
    return response


# -- teams -----------------------------------------------------------------------------------------------


def team_list(request: ConsoleRequest) -> Response:
    """Every team with its parent and members, and the form adding one."""
    crm = request.crm
    values, errors, status = {"name": "", "parent": ""}, {}, 200
    if request.http.method == "POST":
        values = _form(request, ("name", "parent"))
        try:
            crm.teams.add(values["name"], parent=values["parent"] or None)
            return request.redirect("/console/admin/teams", saved=1)
        except (ValidationError, Conflict) as exc:
            errors, status = _errors(exc, "name"), 422
    teams = crm.teams.list()
    return _render(
        request,
        "admin_teams.html",
        "Teams",
        status=status,
        teams=teams,
        values=values,
        errors=errors,
        team_choices=[(team.name, team.name) for team in teams],
        saved=request.http.args.get("saved"),
    )


def _team(request: ConsoleRequest) -> Team:
    """The team of the page's ``team_id`` (the 404 page otherwise)."""
    team_id = request.params["team_id"]
    found = next((team for team in request.crm.teams.list() if team.id == team_id), None)
    if found is None:
        raise NotFound("team", team_id)
    return found


def team_page(request: ConsoleRequest) -> Response:
    """A team's members, each with a button taking them out, and the form putting a user in."""
    crm, team = request.crm, _team(request)
    if request.http.method == "POST":
        username = request.http.form.get("username", "")
        if request.http.form.get("change") == "remove":
            crm.teams.remove_member(team.name, username)
        else:
            crm.teams.add_member(team.name, username)
        return request.redirect(f"/console/admin/teams/{team.id}", saved=1)
    others = [user for user in crm.users.list(active=True) if user.username not in team.members]
    return _render(request, "admin_team.html", "Teams", team=team, others=others, saved=request.http.args.get("saved"))


# -- roles -----------------------------------------------------------------------------------------------


def role_list(request: ConsoleRequest) -> Response:
    """Every role with its description and its permissions, each with its scope."""
    return _render(
        request, "admin_roles.html", "Roles", roles=request.crm.roles.list(), saved=request.http.args.get("saved")
    )


def _permissions(request: ConsoleRequest) -> list[tuple[Permission, list[str]]]:
    """Every declared permission (the core's, then each plugin's) with the scopes it can be granted with."""
    declared = sorted(request.crm.access.permissions.values(), key=lambda p: (p.plugin != "core", p.plugin, p.name))
    return [(permission, list(SCOPES) if permission.scoped else ["all"]) for permission in declared]


def _grants(request: ConsoleRequest) -> dict[str, str]:
    """The grants the role form posts: ``grant:<permission>`` = a scope, or empty for none."""
    form = request.http.form
    return {
        permission.name: form[f"grant:{permission.name}"]
        for permission, _ in _permissions(request)
        if form.get(f"grant:{permission.name}")
    }


def _role_form(
    request: ConsoleRequest,
    role: Role | None,
    values: Mapping[str, Any],
    errors: Mapping[str, list[str]],
    *,
    status: int = 200,
) -> Response:
    return _render(
        request,
        "admin_role.html",
        "Roles",
        status=status,
        role=role,
        values=values,
        errors=errors,
        permissions=_permissions(request),
    )


def role_new(request: ConsoleRequest) -> Response:
    """A custom role: a name, what it is for, and each permission with a scope."""
    if request.http.method == "GET":
        return _role_form(request, None, {"name": "", "description": "", "grants": {}}, {})
    values: dict[str, Any] = {**_form(request, ("name", "description")), "grants": _grants(request)}
    try:
        request.crm.roles.add(values["name"], values["description"], values["grants"])
    except (ValidationError, Conflict) as exc:
        return _role_form(request, None, values, _errors(exc, "name"), status=422)
    return request.redirect("/console/admin/roles", saved=1)


def role_edit(request: ConsoleRequest) -> Response:
    """Change a role's permissions and scopes: each changed one granted or taken away."""
    crm, role_id = request.crm, request.params["role_id"]
    role = next((role for role in crm.roles.list() if role.id == role_id), None)
    if role is None:
        raise NotFound("role", role_id)
    if request.http.method == "GET":
        return _role_form(request, role, {"grants": dict(role.grants)}, {})
    wanted = _grants(request)
    try:
        for permission, scope in wanted.items():
            if role.grants.get(permission) != scope:
                crm.roles.grant(role.name, permission, scope)
    except ValidationError as exc:
        return _role_form(request, role, {"grants": wanted}, _errors(exc), status=422)
    for permission in role.grants:
        if permission not in wanted:
            crm.roles.revoke(role.name, permission)
    return request.redirect("/console/admin/roles", saved=1)


# -- API tokens ------------------------------------------------------------------------------------------


def token_list(request: ConsoleRequest) -> Response:
    """Every token without its secret; the form making one answers with its secret, shown this once."""
    crm = request.crm
    values = {"username": "", "name": "", "permissions": "", "expires": ""}
    errors: dict[str, list[str]] = {}
    created, status = None, 200
    if request.http.method == "POST":
        values = _form(request, tuple(values))
        permissions = [p.strip() for p in values["permissions"].replace(",", " ").split() if p.strip()]
        try:
            expires = _day_start(request, values["expires"], "expires_at", next_day=True)
            created = crm.users.create_token(
                values["username"], values["name"], permissions=permissions or None, expires_at=expires
            )
            values = dict.fromkeys(values, "")
        except ValidationError as exc:
            errors, status = _errors(exc), 422
        except NotFound as exc:
            errors, status = {"username": [str(exc)]}, 422
    return _render(
        request,
        "admin_tokens.html",
        "API tokens",
        status=status,
        tokens=crm.users.tokens(),
        users=[user.username for user in crm.users.list(active=True)],
        values=values,
        errors=errors,
        created=created,
        now=crm.now(),
        saved=request.http.args.get("saved"),
    )


def token_revoke(request: ConsoleRequest) -> Response:
    """Revoke a token: its next request is refused."""
    request.crm.users.revoke_token(request.params["token_id"])
    return request.redirect("/console/admin/tokens", saved=1)


# -- webhooks --------------------------------------------------------------------------------------------


def webhook_list(request: ConsoleRequest) -> Response:
    """Every subscription and the form adding one (the SSRF guard's refusal shown by the URL field); a new one's
    signing secret is shown this once."""
    crm = request.crm
    types = sorted(crm.events.types.values(), key=lambda event: event.name)
    values: dict[str, Any] = {"url": "", "description": "", "events": []}
    errors: dict[str, list[str]] = {}
    created, status = None, 200
    if request.http.method == "POST":
        values = {
            **_form(request, ("url", "description")),
            "events": _checked(request, "events", [event.name for event in types]),
        }
        try:
            created = crm.webhooks.subscribe(values["url"], values["events"], description=values["description"])
            values = {"url": "", "description": "", "events": []}
        except ValidationError as exc:
            errors, status = _errors(exc), 422
    return _render(
        request,
        "admin_webhooks.html",
        "Webhooks",
        status=status,
        subscriptions=crm.webhooks.list(),
        types_choices=[(event.name, event.name) for event in types],
        values=values,
        errors=errors,
        created=created,
        saved=request.http.args.get("saved"),
    )


def webhook_page(request: ConsoleRequest) -> Response:
    """A subscription and its latest deliveries, newest first."""
    crm, subscription_id = request.crm, request.params["subscription_id"]
    return _render(
        request,
        "admin_webhook.html",
        "Webhooks",
        subscription=crm.webhooks.get(subscription_id),
        deliveries=crm.webhooks.deliveries(subscription_id, limit=DELIVERIES),
    )


def webhook_active(request: ConsoleRequest) -> Response:
    """Pause a subscription (its pending deliveries wait) or start it again."""
    subscription_id = request.params["subscription_id"]
    request.crm.webhooks.update(subscription_id, active=request.http.form.get("active") == "1")
    return request.redirect("/console/admin/webhooks", saved=1)


# -- plugins ---------------------------------------------------------------------------------------------


def plugin_list(request: ConsoleRequest) -> Response:
    """Installed plugins: version, status in this database, hooks, and the button switching each on or off."""
    args = request.http.args
    return _render(
        request,
        "admin_plugins.html",
        "Plugins",
        plugins=request.crm.plugins.list(),
        changed=args.get("changed"),
        enabled=args.get("enabled") == "1",
    )


def plugin_switch(request: ConsoleRequest) -> Response:
    """Enable or disable a plugin for this database (as ``crmkit plugins enable/disable``): from the next start."""
    name, enable = request.params["name"], request.http.form.get("enabled") == "1"
    if enable:
        request.crm.plugins.enable(name)
    else:
        request.crm.plugins.disable(name)
    return request.redirect("/console/admin/plugins", changed=name, enabled=int(enable))


# -- the audit log ---------------------------------------------------------------------------------------


@attrs.frozen
class _Shown:
    """An audit entry as the page lists it: its changes as compact JSON."""

    entry: AuditEntry
    changes: str


def audit_log(request: ConsoleRequest) -> Response:
    """The audit log, newest first, filtered by actor, action and days (in the user's zone), keyset-paged."""
    args = request.http.args
    filters = {name: args.get(name, "").strip() for name in ("actor", "action", "since", "until")}
    errors: dict[str, list[str]] = {}
    entries: list[_Shown] = []
    after = None
    try:
        page = request.crm.audit.entries(
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            since=_day_start(request, filters["since"], "since"),
            until=_day_start(request, filters["until"], "until", next_day=True),
            after=args.get("after") or None,
            limit=AUDIT_PAGE,
        )
        entries = [
            _Shown(
                entry,
                json.dumps(to_jsonable(entry.changes), ensure_ascii=False, sort_keys=True)
                if entry.changes is not None
                else "",
            )
            for entry in page.items
        ]
        after = page.next_cursor
    except ValidationError as exc:
        errors = _errors(exc)
    return _render(
        request,
        "admin_audit.html",
        "Audit log",
        entries=entries,
        filters=filters,
        errors=errors,
        next_url=request.url("/console/admin/audit", **filters, after=after) if after else None,
    )
