"""The help desk's HTTP routes (tag ``service``): merging cases, attachments, and intake — the web-form and
inbound-message endpoints an integration's token with ``service.intake`` posts to — thin calls into
``crm.service``. The intake routes validate in the service (``service_validates``), so a refused payload is kept
with its raw text for inspection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import hookimpl

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.web import ApiRequest, Operation, Reply


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """``/service/cases/{case_id}/merge``, ``…/attachments``, ``/service/attachments/{id}``,
    ``…/canned-replies``, ``/service/canned``, ``/service/routing/rules``, ``/service/routing/shifts/{username}``,
    ``/service/intake/form``, ``/service/intake/messages`` and ``/service/intake/rejected``."""
    from marshmallow import fields, validate

    from crmkit.web import Operation, Reply, query_schema, schema_of
    from crmkit_service.businesshours import WEEKDAYS
    from crmkit_service.canned import CannedReply
    from crmkit_service.case_links import Attachment
    from crmkit_service.intake import FormSchema, MessageSchema, Received, RejectedPayload
    from crmkit_service.routing import STRATEGIES, RoutingRule, shift_week
    from crmkit_service.service import ADMIN, INTAKE, READ, WRITE, Case, Message

    def attach(r: ApiRequest) -> Reply:
        added = r.crm.service.attachments.add(r.params["case_id"], **r.body)
        return Reply(added, status=201)

    def remove(r: ApiRequest) -> Reply:
        r.crm.service.attachments.remove(r.params["attachment_id"])
        return Reply(None, status=204)

    def received(r: ApiRequest, door: Any) -> Reply:
        """201 when a case was opened, 200 when threaded onto one or folded into a duplicate."""
        result = door(r.body, raw=r.http.get_data(as_text=True))
        return Reply(result, status=201 if result.action == "opened" else 200)

    def add_rule(r: ApiRequest) -> Reply:
        return Reply(r.crm.service.routing.add(**r.body), status=201)

    def remove_rule(r: ApiRequest) -> Reply:
        r.crm.service.routing.remove(r.params["rule_id"])
        return Reply(None, status=204)

    def set_shift(r: ApiRequest) -> dict[str, Any]:
        week = shift_week(r.body["days"], r.body["opens"], r.body["closes"])
        r.crm.service.routing.set_shift(r.params["username"], week)
        return {"username": r.params["username"], **r.body}

    def canned_reply(r: ApiRequest) -> Reply:
        return Reply(r.crm.service.canned.reply(r.params["case_id"], r.body["key"]), status=201)

    one = "/service/cases/{case_id:int}"

    def text() -> fields.String:
        return fields.String(load_default=None, allow_none=True)

    return [
        Operation(
            "POST",
            one + "/merge",
            lambda r: r.crm.service.merge(r.params["case_id"], r.body["merged_id"]),
            "Fold a duplicate case into this one (its conversation moves; it is closed pointing here)",
            response=schema_of(Case),
            permission=WRITE,
            body=query_schema("CaseMergeBody", merged_id=fields.Integer(required=True, strict=True)),
        ),
        Operation(
            "GET",
            one + "/attachments",
            lambda r: r.crm.service.attachments.list(r.params["case_id"]),
            "A case's attachments (references to files kept elsewhere)",
            response=schema_of(Attachment),
            many=True,
            permission=READ,
        ),
        Operation(
            "POST",
            one + "/attachments",
            attach,
            "Attach a file by reference: a URL or a storage key",
            response=schema_of(Attachment),
            status=201,
            permission=WRITE,
            body=query_schema(
                "AttachmentBody",
                name=fields.String(required=True),
                url=fields.String(load_default=None, allow_none=True),
                storage_key=fields.String(load_default=None, allow_none=True),
                size=fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(0)),
                content_type=fields.String(load_default=None, allow_none=True),
            ),
        ),
        Operation(
            "DELETE",
            "/service/attachments/{attachment_id:int}",
            remove,
            "Forget an attachment reference (the file is not touched)",
            status=204,
            permission=WRITE,
        ),
        Operation(
            "POST",
            one + "/canned-replies",
            canned_reply,
            "Send a canned reply to the customer, in their language, its placeholders filled",
            response=schema_of(Message),
            status=201,
            permission=WRITE,
            body=query_schema("CannedReplyBody", key=fields.String(required=True)),
        ),
        Operation(
            "GET",
            "/service/canned",
            lambda r: r.crm.service.canned.list(),
            "Canned replies, every language's variant",
            response=schema_of(CannedReply),
            many=True,
            permission=READ,
        ),
        Operation(
            "PUT",
            "/service/canned/{key}/{language}",
            lambda r: r.crm.service.canned.add(
                r.params["key"], r.body["body"], language=r.params["language"], title=r.body["title"]
            ),
            "Store (or replace) one language's variant of a canned reply (service.admin)",
            response=schema_of(CannedReply),
            permission=ADMIN,
            body=query_schema("CannedBody", body=fields.String(required=True), title=text()),
        ),
        Operation(
            "GET",
            "/service/routing/rules",
            lambda r: r.crm.service.routing.list(),
            "Routing rules in the order they are tried",
            response=schema_of(RoutingRule),
            many=True,
            permission=READ,
        ),
        Operation(
            "POST",
            "/service/routing/rules",
            add_rule,
            "Add a routing rule: cases matching every criterion given go to the team (service.admin)",
            response=schema_of(RoutingRule),
            status=201,
            permission=ADMIN,
            body=query_schema(
                "RoutingRuleBody",
                team=fields.String(required=True),
                category=text(),
                channel=text(),
                customer_group=text(),
                language=text(),
                strategy=fields.String(load_default="round_robin", validate=validate.OneOf(STRATEGIES)),
                position=fields.Integer(load_default=None, allow_none=True, strict=True),
            ),
        ),
        Operation(
            "DELETE",
            "/service/routing/rules/{rule_id:int}",
            remove_rule,
            "Delete a routing rule (service.admin)",
            status=204,
            permission=ADMIN,
        ),
        Operation(
            "PUT",
            "/service/routing/shifts/{username}",
            set_shift,
            "Set an agent's own shift: the same hours on the days given; no days: the team's hours (service.admin)",
            permission=ADMIN,
            body=query_schema(
                "ShiftBody",
                days=fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)), load_default=list),
                opens=fields.Time(load_default=None, allow_none=True),
                closes=fields.Time(load_default=None, allow_none=True),
            ),
        ),
        Operation(
            "POST",
            "/service/intake/form",
            lambda r: received(r, r.crm.service.intake.web_form),
            "A web form: finds or creates the customer by e-mail or phone and opens (or threads, or folds) a case",
            response=schema_of(Received),
            status=201,
            permission=INTAKE,
            body=FormSchema(),
            service_validates=True,
        ),
        Operation(
            "POST",
            "/service/intake/messages",
            lambda r: received(r, r.crm.service.intake.inbound_message),
            "An inbound e-mail or chat message (a provider's webhook): threaded by [#id] or In-Reply-To/References",
            response=schema_of(Received),
            status=201,
            permission=INTAKE,
            body=MessageSchema(),
            service_validates=True,
        ),
        Operation(
            "GET",
            "/service/intake/rejected",
            lambda r: r.crm.service.intake.rejected(limit=r.query["limit"]),
            "Refused intake payloads kept for inspection, newest first",
            response=schema_of(RejectedPayload),
            many=True,
            permission=ADMIN,
            query=query_schema("RejectedQuery", limit=fields.Integer(load_default=50, validate=validate.Range(1, 500))),
        ),
    ]
