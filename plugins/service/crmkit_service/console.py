"""Cases in the web console: the cases list, a case page with its conversation and the reply, note, assign and
status forms, a form to open a case from the customer 360, the 360 panel "Cases", the home tile "My open cases"
and the menu entry "Cases".

Every handler calls ``crm.service`` as the signed-in user — the same calls as ``crmkit service`` and the API —
so scopes hold: another team's case is the 404 page, a missing permission the 403 page. A refused form is shown
again with the service's message next to the field it names. Templates are ``crmkit_service:templates/console/…``;
texts are msgids translated by ``crmkit_service/locale/vi``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile
from crmkit.errors import Conflict, ValidationError
from crmkit_service.console_desk import case_extras
from crmkit_service.service import PRIORITIES, READ, STATUSES, TRANSITIONS, WRITE

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.plugin_api import ConsoleRequest

CASES = "/console/service/cases"
REPORTS = "/console/service/reports"  # console_quality.py
TEMPLATES = "crmkit_service:templates/console/"
#: Status → its msgid (the console shows statuses in the user's language).
STATUS_LABELS = {
    "new": "New",
    "open": "Open",
    "waiting_on_customer": "Waiting on customer",
    "waiting_on_third_party": "Waiting on third party",
    "resolved": "Resolved",
    "closed": "Closed",
    "reopened": "Reopened",
}
PRIORITY_LABELS = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}


def _labels(request: ConsoleRequest) -> dict[str, Any]:
    gettext = request.i18n.gettext
    return {
        "statuses": {k: gettext(v) for k, v in STATUS_LABELS.items()},
        "priorities": {k: gettext(v) for k, v in PRIORITY_LABELS.items()},
    }


def cases_page(request: ConsoleRequest) -> Response:
    """Cases in the user's scope: the active ones by default, filtered by status or to the user's own."""
    args = request.http.args
    status = args.get("status", "active")
    if status not in ("", "active", *STATUSES):  # a hand-made URL: show the active cases
        status = "active"
    mine = args.get("mine") == "1"
    after = args.get("after", "")
    found = request.crm.service.list(
        status=status or None,
        assignee=request.crm.actor if mine else None,
        after=int(after) if after.isdigit() else None,
        limit=50,
    )
    return request.render(
        TEMPLATES + "cases.html",
        cases=found,
        selected=status,
        mine=mine,
        next_after=found[-1].id if len(found) == 50 else None,
        status_choices=["active", *STATUSES],
        **_labels(request),
    )


def case_page(
    request: ConsoleRequest,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """A case: its details and SLA times, the conversation, and the forms (with ``service.write``)."""
    service, case_id = request.crm.service, request.params["case_id"]
    case = service.get(case_id)
    customer = request.crm.customers.get(case.customer_id)
    return request.render(
        TEMPLATES + "case.html",
        status=status,
        case=case,
        customer=customer,
        conversation=service.conversation(case_id),
        can_write=request.allowed(WRITE),
        next_statuses=sorted(TRANSITIONS[case.status]),
        errors=errors or {},
        values=values or {},
        **case_extras(request, case),
        **_labels(request),
    )


def _act(request: ConsoleRequest, action: Any) -> Response:
    """Run a form's service call; back to the case page, or the page again with the refusal by its field."""
    try:
        action(request.crm.service, request.params["case_id"], request.http.form)
    except ValidationError as exc:
        return case_page(request, errors=exc.errors, values=dict(request.http.form), status=422)
    except Conflict as exc:
        return case_page(request, errors={"_": [str(exc)]}, values=dict(request.http.form), status=409)
    return request.redirect(f"{CASES}/{request.params['case_id']}")


def reply(request: ConsoleRequest) -> Response:
    return _act(request, lambda s, cid, f: s.reply(cid, f.get("body", ""), direction=f.get("direction", "outbound")))


def note(request: ConsoleRequest) -> Response:
    return _act(request, lambda s, cid, f: s.note(cid, f.get("note", "")))


def assign(request: ConsoleRequest) -> Response:
    return _act(
        request, lambda s, cid, f: s.assign(cid, assignee=f.get("assignee") or None, team=f.get("team") or None)
    )


def change_status(request: ConsoleRequest) -> Response:
    return _act(
        request, lambda s, cid, f: s.set_status(cid, f.get("status", ""), resolution=f.get("resolution") or None)
    )


def new_case(request: ConsoleRequest) -> Response:
    """Open a case for a customer (from their 360); on success, the new case's page."""
    customer = request.crm.customers.get(request.params["customer_id"])
    action = f"/console/service/customers/{customer.id}/cases/new"
    values = {"subject": "", "description": "", "channel": "phone", "category": "", "priority": "normal"}
    errors: dict[str, list[str]] = {}
    if request.http.method == "POST":
        form = request.http.form
        values = {key: form.get(key, "").strip() for key in values}
        try:
            case = request.crm.service.open(
                customer.id,
                values["subject"],
                description=values["description"] or None,
                channel=values["channel"],
                category=values["category"] or None,
                priority=values["priority"],
                assignee=request.crm.actor,
            )
        except ValidationError as exc:
            errors = exc.errors
        else:
            return request.redirect(f"{CASES}/{case.id}")
    return request.render(
        TEMPLATES + "new_case.html",
        status=422 if errors else 200,
        customer=customer,
        action=action,
        values=values,
        errors=errors,
        channels=request.crm.channels,
        priority_choices=PRIORITIES,
        **_labels(request),
    )


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    one = CASES + "/<int:case_id>"
    return [
        ConsolePage(CASES, cases_page, permission=READ),
        ConsolePage(one, case_page, permission=READ),
        ConsolePage(one + "/reply", reply, methods=("POST",), permission=WRITE),
        ConsolePage(one + "/note", note, methods=("POST",), permission=WRITE),
        ConsolePage(one + "/assign", assign, methods=("POST",), permission=WRITE),
        ConsolePage(one + "/status", change_status, methods=("POST",), permission=WRITE),
        ConsolePage(
            "/console/service/customers/<int:customer_id>/cases/new",
            new_case,
            methods=("GET", "POST"),
            permission=WRITE,
        ),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    # "Cases" first: the plugin's entries are grouped under the first one's label
    return [MenuEntry("Cases", CASES, permission=READ), MenuEntry("Service reports", REPORTS, permission=READ)]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    return [
        Panel(
            "service",
            "Cases",
            TEMPLATES + "cases_panel.html",
            lambda crm, customer: {
                **crm.service.summary(customer.id, latest=10),
                "customer_id": customer.id,
                "labels": STATUS_LABELS,
            },
            permission=READ,
        )
    ]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    return [
        Tile(
            "service",
            "My open cases",
            TEMPLATES + "my_cases_tile.html",
            lambda crm: {"cases": crm.service.mine(limit=5), "labels": STATUS_LABELS},
            permission=READ,
        )
    ]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_service", "crmkit_service")]  # crmkit_service/locale/vi/LC_MESSAGES/crmkit_service.po
