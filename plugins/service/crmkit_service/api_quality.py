"""The plugin's HTTP routes for SLA rules, satisfaction surveys, reports and settings (tag ``service``): thin calls
into ``crm.service.sla``, ``.csat``, ``.reports`` and ``.configure``. The survey answer route is public: the
one-time token in its path is the authority (a token this CRM did not issue is a 404)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import hookimpl

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.web import ApiRequest, Operation


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """``/service/sla/rules``, ``/service/cases/{case_id}/csat``, ``/service/csat/{token}``,
    ``/service/reports/{name}`` and ``/service/settings``."""
    from marshmallow import fields, validate

    from crmkit.web import Operation, query_schema, schema_of
    from crmkit_service.reports import CSAT_BY
    from crmkit_service.service import ADMIN, READ, WRITE, Case
    from crmkit_service.sla import Rule

    def run_report(r: ApiRequest) -> Any:
        options = {k: v for k, v in r.query.items() if v is not None}
        if r.params["name"] == "backlog":
            options = {}
        elif not r.params["name"].startswith("csat"):
            options.pop("by", None)
        return r.crm.service.reports.run(r.params["name"], **options)

    answer = query_schema(
        "CsatAnswerBody",
        score=fields.Integer(required=True, strict=True),
        comment=fields.String(load_default=None, allow_none=True),
    )
    return [
        Operation(
            "GET",
            "/service/sla/rules",
            lambda r: r.crm.service.sla.rules(),
            "SLA rules per customer group and priority: targets, warning, escalation",
            response=schema_of(Rule),
            many=True,
            permission=READ,
        ),
        Operation(
            "PUT",
            "/service/sla/rules/{priority}",
            lambda r: r.crm.service.sla.set_rule(r.params["priority"], **r.body),
            "Set the SLA rule of a priority (and customer group) (service.admin)",
            response=schema_of(Rule),
            permission=ADMIN,
            body=query_schema(
                "SlaRuleBody",
                customer_group=fields.String(load_default=None, allow_none=True),
                first_response_minutes=fields.Integer(load_default=None, allow_none=True, strict=True),
                resolution_minutes=fields.Integer(load_default=None, allow_none=True, strict=True),
                warn_minutes=fields.Integer(load_default=None, allow_none=True, strict=True),
                escalate_to=fields.String(load_default=None, allow_none=True),
                escalate_team=fields.String(load_default=None, allow_none=True),
                notify=fields.String(load_default=None, allow_none=True),
                raise_priority=fields.Boolean(load_default=False),
            ),
        ),
        Operation(
            "POST",
            "/service/cases/{case_id:int}/csat",
            lambda r: r.crm.service.csat.record(r.params["case_id"], r.body["score"], r.body["comment"]),
            "Record the customer's satisfaction answer (1–5 and a comment) given to staff",
            response=schema_of(Case),
            permission=WRITE,
            body=answer,
        ),
        Operation(
            "POST",
            "/service/csat/{token:str}",
            lambda r: {"case_id": r.crm.service.csat.answer(r.params["token"], **r.body).id, "thanks": True},
            "The customer's satisfaction answer through their one-time survey link",
            public=True,
            body=answer,
            description="404 for a token this CRM did not issue; 409 when the survey was answered already.",
        ),
        Operation(
            "GET",
            "/service/reports/{name:str}",
            run_report,
            "A service report: backlog, sla, fcr, reopens, csat, csat-trend or hours",
            permission=READ,
            query=query_schema(
                "ServiceReportQuery",
                since=fields.AwareDateTime(load_default=None),
                until=fields.AwareDateTime(load_default=None),
                by=fields.String(load_default=None, validate=validate.OneOf(CSAT_BY)),
            ),
        ),
        Operation(
            "GET",
            "/service/settings",
            lambda r: r.crm.service.settings(),
            "The service's settings (reply_to_resolved, reply_to_closed, csat_reopen_below)",
            permission=READ,
        ),
        Operation(
            "PUT",
            "/service/settings/{name:str}",
            lambda r: {"name": r.params["name"], "value": r.crm.service.configure(r.params["name"], r.body["value"])},
            "Set a service setting (service.admin)",
            permission=ADMIN,
            body=query_schema("ServiceSettingBody", value=fields.Raw(required=True, allow_none=True)),
        ),
    ]
