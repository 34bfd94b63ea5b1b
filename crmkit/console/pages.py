"""The core's console pages: sign-in and out, home, the customer list, create and edit forms, the customer 360.

Each handler takes a :class:`ConsoleRequest` whose ``crm`` acts as the signed-in user and calls the services;
their ``ValidationError`` becomes messages next to the fields (the entered values kept), ``NotFound`` the
404 page and ``PermissionDenied`` the 403 page (handled by the dispatcher).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from werkzeug.wrappers import Response

from crmkit.console import customer_tools
from crmkit.console.app import ConsoleRequest, public, set_cookie
from crmkit.console.display import stage_choices
from crmkit.console.extensions import ConsolePage, MenuEntry
from crmkit.console.forms import form_errors
from crmkit.console.sessions import ABSOLUTE, COOKIE, SIGN_IN_COOKIE
from crmkit.core import tables as t
from crmkit.core.jsonable import to_jsonable
from crmkit.errors import AuthenticationFailed, NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.core.models import Customer

CORE_MENU = (MenuEntry("Home", "/console/"), MenuEntry("Customers", "/console/customers", "customers.read"))
PAGE_SIZE = 25
RECENT = 10
FORM_FIELDS = ("name", "email", "phone", "owner", "lifecycle_stage", "tags")
LOG_CHANNELS = {"phone": "Phone call", "in_person": "Visit in person"}  # channel → the msgid of its choice
_ERROR_FIELD = {"emails": "email", "phones": "phone"}  # the service's field → the form's input


def core_pages() -> list[ConsolePage]:
    """The core's routes, in the order the URL map tries them."""
    return [
        ConsolePage("/console/", home),
        ConsolePage("/console/sign-in", sign_in, methods=("GET", "POST")),
        ConsolePage("/console/sign-out", sign_out, methods=("POST",)),
        ConsolePage("/console/static/<path:name>", static),
        ConsolePage("/console/customers", customer_list, permission="customers.read"),
        ConsolePage("/console/customers/new", customer_new, methods=("GET", "POST"), permission="customers.create"),
        *customer_tools.tool_pages(),
        ConsolePage("/console/customers/<int:customer_id>", customer_360, permission="customers.read"),
        ConsolePage(
            "/console/customers/<int:customer_id>/edit",
            customer_edit,
            methods=("GET", "POST"),
            permission="customers.update",
        ),
        ConsolePage(
            "/console/customers/<int:customer_id>/interactions",
            log_interaction,
            methods=("POST",),
            permission="interactions.log",
        ),
    ]


# -- signing in and out ------------------------------------------------------------------------------------


def _next(request: ConsoleRequest) -> str:
    """Where to go after signing in: a console path given by the sign-in link, else home (never another site)."""
    given = request.http.values.get("next") or ""
    script_root = request.http.script_root
    path = given.removeprefix(script_root) if given.startswith(script_root) else given
    return path if path.startswith("/console/") and not path.startswith("//") and "\\" not in path else "/console/"


@public
def sign_in(request: ConsoleRequest) -> Response:
    """The sign-in form; a right password starts a session and goes on to ``next``."""
    http = request.http
    if http.method == "GET":
        return request.render("sign_in.html", username="", next=_next(request), error=None)
    username = http.form.get("username", "").strip()
    try:
        user = request.crm.users.authenticate(username, http.form.get("password", ""))
    except AuthenticationFailed:
        return request.render(
            "sign_in.html",
            status=401,
            username=username,
            next=_next(request),
            error="Wrong username or password, or the account is locked.",
        )
    old = http.cookies.get(COOKIE)
    if old:
        request.app.sessions.end(old)
    response = request.redirect(_next(request))
    set_cookie(request, response, COOKIE, request.app.sessions.start(user.id), max_age=ABSOLUTE)
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


def sign_out(request: ConsoleRequest) -> Response:
    """End the session (its row is deleted) and show the sign-in form."""
    request.app.sessions.end(request.http.cookies.get(COOKIE, ""))
    response = request.redirect("/console/sign-in")
    response.delete_cookie(COOKIE, path="/")
    return response


@public
def static(request: ConsoleRequest) -> Response:
    """The console's CSS and htmx, cached by the browser for an hour."""
    return static_file(request, "crmkit.console", request.params["name"])


def static_file(request: ConsoleRequest, package: str, name: str) -> Response:
    """The CSS or JavaScript file ``name`` of ``package``'s ``static/`` folder (the core's, or a plugin's for its
    own page under ``/console/<plugin>/static/``), cached by the browser for an hour; 404 for anything else."""
    found = resources.files(package).joinpath("static", name)
    if "/" in name or name.startswith(".") or not name.endswith((".css", ".js")) or not found.is_file():
        return request.render("error.html", status=404, message="Page not found")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(
        found.read_bytes(), content_type=f"{media}; charset=utf-8", headers={"Cache-Control": "public, max-age=3600"}
    )


# -- home ------------------------------------------------------------------------------------------------


def home(request: ConsoleRequest) -> Response:
    """The user's name, how many customers they own, their recent interactions, and the plugins' tiles."""
    crm, username = request.crm, request.crm.access.principal.username
    c, i = t.customers.c, t.interactions.c
    owned, recent = None, []
    with crm.reading() as conn:
        if request.allowed("customers.read"):
            owned = conn.execute(sa.select(sa.func.count()).where(c.owner == username, c.status == "active")).scalar()
        if request.allowed("interactions.read"):
            recent = conn.execute(
                sa.select(i.id, i.channel, i.direction, i.occurred_at, i.subject, c.id.label("customer_id"), c.name)
                .join(t.customers, c.id == i.customer_id)
                .where(
                    i.employee == username, c.status == "active", crm.access.owner_filter(c.owner, "interactions.read")
                )
                .order_by(i.occurred_at.desc(), i.id.desc())
                .limit(RECENT)
            ).all()
    tiles = [(tile, tile.data(crm)) for tile in request.app.tiles if request.allowed(tile.permission)]
    return request.render("home.html", owned=owned, recent=recent, tiles=tiles)


# -- customers -------------------------------------------------------------------------------------------


def customer_list(request: ConsoleRequest) -> Response:
    """Search as you type (htmx swaps the results), filters by owner, team, tag and stage, a keyset "Next page"
    link and an export of the filtered list (the filters kept in both links)."""
    filters = customer_tools.list_filters(request)
    errors: dict[str, list[str]] = {}
    try:
        page = customer_tools.find_filtered(request, filters, request.http.args.get("after") or None, PAGE_SIZE)
        customers, after = page.items, page.next_cursor
    except ValidationError as exc:
        customers, after, errors = [], None, _field_errors(exc)
    return request.render(
        "customers.html",
        customers=customers,
        filters=filters,
        stages=stage_choices(request.i18n),
        teams=[(team.name, team.name) for team in request.crm.teams.list()],
        next_url=request.url("/console/customers", **filters, after=after) if after else None,
        export_url=request.url("/console/customers/export.csv", **filters),
        erased=request.http.args.get("erased"),
        errors=errors,
    )


def _values_of(customer: Customer) -> dict[str, str]:
    """A customer as the form shows it (contacts as the service gives them: masked when the user may not see them)."""
    return {
        "name": customer.name,
        "email": customer.email or "",
        "phone": customer.phone or "",
        "owner": customer.owner or "",
        "lifecycle_stage": customer.lifecycle_stage,
        "tags": ", ".join(customer.tags),
    }


def _data(values: dict[str, str], fields: tuple[str, ...]) -> dict[str, Any]:
    """The service's input for the given form fields."""
    data: dict[str, Any] = {}
    for name in fields:
        value = values[name]
        if name in ("email", "phone"):
            data[f"{name}s"] = [value] if value else []
        elif name == "tags":
            data["tags"] = [tag.strip() for tag in value.split(",") if tag.strip()]
        else:
            data[name] = value or None
    return data


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """The service's errors by form input (``emails.0`` → ``email``); others under ``_``."""
    return form_errors(exc, FORM_FIELDS, _ERROR_FIELD)


def _form(
    request: ConsoleRequest,
    action: str,
    values: dict[str, str],
    errors: dict[str, list[str]],
    customer: Customer | None,
    status: int = 200,
) -> Response:
    return request.render(
        "customer_form.html",
        status=status,
        action=action,
        values=values,
        errors=errors,
        customer=customer,
        stages=stage_choices(request.i18n),
    )


def _submitted(request: ConsoleRequest) -> dict[str, str]:
    return {name: request.http.form.get(name, "").strip() for name in FORM_FIELDS}


def customer_new(request: ConsoleRequest) -> Response:
    """The new-customer form; saved through ``crm.customers.add`` (its schema's errors shown by each field)."""
    action = "/console/customers/new"
    if request.http.method == "GET":
        return _form(request, action, {**dict.fromkeys(FORM_FIELDS, ""), "lifecycle_stage": "lead"}, {}, None)
    values = _submitted(request)
    given = tuple(name for name in FORM_FIELDS if values[name] or name != "owner")  # no owner: the user's own
    try:
        customer = request.crm.customers.add(_data(values, given), source="console")
    except ValidationError as exc:
        return _form(request, action, values, _field_errors(exc), None, status=422)
    return request.redirect(f"/console/customers/{customer.id}", saved=1)


def customer_edit(request: ConsoleRequest) -> Response:
    """The edit form; only the fields the user changed are sent (a masked contact left alone stays as it was)."""
    customer_id = request.params["customer_id"]
    action = f"/console/customers/{customer_id}/edit"
    customer = request.crm.customers.get(customer_id)
    current = _values_of(customer)
    if request.http.method == "GET":
        return _form(request, action, current, {}, customer)
    values = _submitted(request)
    changed = tuple(name for name in FORM_FIELDS if values[name] != current[name])
    try:
        if changed:
            request.crm.customers.update(customer_id, _data(values, changed), source="console")
    except ValidationError as exc:
        return _form(request, action, values, _field_errors(exc), customer, status=422)
    return request.redirect(f"/console/customers/{customer_id}", saved=1)


def customer_360(
    request: ConsoleRequest,
    *,
    log_values: dict[str, str] | None = None,
    log_errors: dict[str, list[str]] | None = None,
    panel_state: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The customer, consent per channel, the timeline with the log-a-call form, and one panel per plugin.

    ``panel_state`` is what a plugin's panel form sent and was refused, by panel name (its template reads
    ``panel_state[panel.name]``): the plugin's POST handler shows the 360 again with it, as the log form does.
    """
    crm, customer_id = request.crm, request.params["customer_id"]
    profile = crm.customers.profile(customer_id)
    customer = profile.customer
    if customer.status == "erased":
        raise NotFound("customer", customer_id)
    if customer.id != customer_id:  # merged away: show the customer it became
        return request.redirect(f"/console/customers/{customer.id}")
    panels = [(panel, panel.data(crm, customer)) for panel in request.app.panels if request.allowed(panel.permission)]
    replaced = {panel.name for panel, _ in panels}
    sections = {name: to_jsonable(data) for name, data in profile.sections.items() if name not in replaced}
    return request.render(
        "customer.html",
        status=status,
        customer=customer,
        profile=profile,
        panels=panels,
        sections=sections,
        consents=[(channel, customer.consents.get(channel)) for channel in crm.channels],
        show_timeline=request.allowed("interactions.read"),
        can_log=request.allowed("interactions.log"),
        can_edit=request.allowed("customers.update"),
        can_erase=request.allowed("customers.erase"),
        merged=request.http.args.get("merged"),
        channels=[(key, request.i18n.gettext(label)) for key, label in LOG_CHANNELS.items()],
        saved=request.http.args.get("saved"),
        log_values=log_values
        or {"channel": "phone", "direction": "outbound", "subject": "", "summary": "", "outcome": ""},
        log_errors=log_errors or {},
        panel_state=panel_state or {},
    )


def log_interaction(request: ConsoleRequest) -> Response:
    """Log a call or a visit from the 360 page, as the user; errors shown on the page with the values kept."""
    form = request.http.form
    values = {name: form.get(name, "").strip() for name in ("channel", "direction", "subject", "summary", "outcome")}
    customer_id = request.params["customer_id"]
    try:
        if values["channel"] not in LOG_CHANNELS:
            raise ValidationError(f"must be one of {', '.join(LOG_CHANNELS)}", field="channel")
        request.crm.interactions.log(
            customer_id,
            values["channel"],
            direction=values["direction"] or "outbound",
            **{k: values[k] or None for k in ("subject", "summary", "outcome")},
        )
    except ValidationError as exc:
        errors = {
            field: [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            for field, messages in exc.errors.items()
        }
        return customer_360(request, log_values=values, log_errors=errors, status=422)
    return request.redirect(f"/console/customers/{customer_id}", saved=1)
