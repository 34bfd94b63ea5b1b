"""The plugin's HTTP routes under ``/service/``: cases (open, list, read), their conversation (reply, note),
assignment and status, a customer's cases, and the SLA policies — thin calls into ``crm.service``.

The app authenticates the caller, validates query and body with the schemas given here (unknown fields are
refused), runs the handler as the caller and maps ``NotFound``/``PermissionDenied``/``ValidationError``/
``Conflict`` to 404/403/422/409. The service checks ``service.read``/``service.write``/``service.admin`` and scopes.
The web layer is imported inside the hook: loading the plugin for the CLI does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import hookimpl

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.web import ApiRequest, Operation, Reply


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """``/service/cases`` (list, open), ``/service/cases/{case_id}`` (read), its ``/messages``, ``/replies``,
    ``/notes``, ``/assign`` and ``/status``, ``/service/customers/{customer_id}/cases`` and ``/service/sla/policies``."""
    from marshmallow import fields, validate

    from crmkit.web import Operation, Reply, query_schema, schema_of
    from crmkit_service.service import (
        ADMIN,
        MAX_BODY,
        PRIORITIES,
        READ,
        STATUSES,
        WRITE,
        Case,
        Message,
        OpenSchema,
        Policy,
    )

    def open_case(r: ApiRequest) -> Reply:
        """Open the case as the caller; 201 with where to read it."""
        case = r.crm.service.open(**r.body)
        return Reply(case, status=201, headers={"Location": f"/service/cases/{case.id}"})

    def reply(r: ApiRequest) -> Reply:
        message = r.crm.service.reply(r.params["case_id"], r.body["body"], direction=r.body["direction"])
        return Reply(message, status=201)

    def note(r: ApiRequest) -> Reply:
        return Reply(r.crm.service.note(r.params["case_id"], r.body["body"]), status=201)

    def assign(r: ApiRequest) -> Any:
        return r.crm.service.assign(r.params["case_id"], **r.body)

    def list_cases(r: ApiRequest) -> Any:
        return r.crm.service.list(**{k: v for k, v in r.query.items() if v is not None})

    case, message = schema_of(Case), schema_of(Message)
    one = "/service/cases/{case_id:int}"
    body = fields.String(required=True, validate=validate.Length(1, MAX_BODY))
    listing = dict(
        status=fields.String(load_default=None, validate=validate.OneOf(("active", *STATUSES))),
        assignee=fields.String(load_default=None),
        team=fields.String(load_default=None),
        priority=fields.String(load_default=None, validate=validate.OneOf(PRIORITIES)),
        after=fields.Integer(load_default=None),
        limit=fields.Integer(load_default=50, validate=validate.Range(1, 500)),
    )
    return [
        Operation(
            "GET",
            "/service/cases",
            list_cases,
            "Cases in the caller's scope, newest first (page with after)",
            response=case,
            many=True,
            permission=READ,
            query=query_schema("CaseListQuery", customer_id=fields.Integer(load_default=None), **listing),
        ),
        Operation(
            "POST",
            "/service/cases",
            open_case,
            "Open a case for a customer",
            response=case,
            status=201,
            permission=WRITE,
            body=OpenSchema(),
        ),
        Operation(
            "GET", one, lambda r: r.crm.service.get(r.params["case_id"]), "Read a case", response=case, permission=READ
        ),
        Operation(
            "GET",
            one + "/messages",
            lambda r: r.crm.service.conversation(r.params["case_id"]),
            "A case's conversation, oldest first",
            response=message,
            many=True,
            permission=READ,
        ),
        Operation(
            "POST",
            one + "/replies",
            reply,
            "Add a reply (outbound to the customer, or inbound from them)",
            response=message,
            status=201,
            permission=WRITE,
            body=query_schema(
                "CaseReplyBody",
                body=body,
                direction=fields.String(load_default="outbound", validate=validate.OneOf(("inbound", "outbound"))),
            ),
        ),
        Operation(
            "POST",
            one + "/notes",
            note,
            "Write an internal note",
            response=message,
            status=201,
            permission=WRITE,
            body=query_schema("CaseNoteBody", body=body),
        ),
        Operation(
            "POST",
            one + "/assign",
            assign,
            "Give the case to a user and/or a team (null clears one)",
            response=case,
            permission=WRITE,
            body=query_schema(
                "CaseAssignBody", assignee=fields.String(allow_none=True), team=fields.String(allow_none=True)
            ),
        ),
        Operation(
            "POST",
            one + "/status",
            lambda r: r.crm.service.set_status(r.params["case_id"], **r.body),
            "Move the case to another status",
            response=case,
            permission=WRITE,
            body=query_schema(
                "CaseStatusBody",
                status=fields.String(required=True),
                resolution=fields.String(load_default=None, allow_none=True),
            ),
        ),
        Operation(
            "GET",
            "/service/customers/{customer_id:int}/cases",
            lambda r: r.crm.service.list(
                customer_id=r.params["customer_id"], **{k: v for k, v in r.query.items() if v is not None}
            ),
            "A customer's cases, newest first",
            response=case,
            many=True,
            permission=READ,
            query=query_schema("CustomerCaseQuery", **listing),
        ),
        Operation(
            "GET",
            "/service/sla/policies",
            lambda r: r.crm.service.policies(),
            "SLA targets per priority, in working minutes",
            response=schema_of(Policy),
            many=True,
        ),
        Operation(
            "PUT",
            "/service/sla/policies/{priority}",
            lambda r: r.crm.service.set_policy(r.params["priority"], **r.body),
            "Set a priority's SLA targets (service.admin)",
            response=schema_of(Policy),
            permission=ADMIN,
            body=query_schema(
                "PolicyBody",
                first_response_minutes=fields.Integer(required=True, strict=True),
                resolution_minutes=fields.Integer(required=True, strict=True),
            ),
        ),
    ]
