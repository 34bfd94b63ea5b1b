"""The campaigns plugin's HTTP API: segments with live counts, campaigns (create, read, run, preview, report)
and the public tracking routes of :mod:`crmkit_campaigns.web` — thin doors onto ``crm.campaigns``.

Each handler calls the service method the CLI calls, acting as the caller; the service checks the
permission and the scope. Money stays in integer minor units (``budget_minor``…); rates are Decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from crmkit import hookimpl
from crmkit.errors import ValidationError
from crmkit.web import ApiRequest, Operation, Reply, query_schema, schema_of
from crmkit_campaigns import web
from crmkit_campaigns.objects import TRANSITIONS, Campaign, Preview, RunResult, Segment
from crmkit_campaigns.permissions import MANAGE, READ, REPORTS, SEGMENTS_MANAGE, SEGMENTS_READ, SEND
from crmkit_campaigns.reports import CampaignReport
from crmkit_campaigns.segments import MAX_EXPRESSION, SegmentSchema
from crmkit_campaigns.service import CampaignSchema

if TYPE_CHECKING:
    from crmkit.crm import CRM

SEGMENT, CAMPAIGN = schema_of(Segment), schema_of(Campaign)
COUNT = query_schema("SegmentCount", customers=fields.Integer(metadata={"description": "active customers in scope"}))


def _known(body: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """The body as given (the service validates it), its unknown fields refused by name as the app refuses them."""
    unknown = sorted(set(body) - set(schema.fields))
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in unknown})
    return dict(body)


def _created(value: Any, location: str) -> Reply:
    return Reply(value, status=201, headers={"Location": location})


def segment_operations() -> list[Operation]:
    """Saved segments: list, create, read, and live counts of a saved segment or of an expression."""
    segment_input = SegmentSchema()
    expression = query_schema(
        "SegmentCountQuery",
        expression=fields.String(
            validate=validate.Length(1, MAX_EXPRESSION),
            metadata={"description": "A filter expression; every active customer when omitted."},
        ),
    )

    def create(r: ApiRequest) -> Reply:
        body = _known(r.body, segment_input)
        made = r.crm.campaigns.segments.create(
            body.get("name"), body.get("expression"), description=body.get("description")
        )
        return _created(made, f"/campaigns/segments/{made.id}")

    one = "/campaigns/segments/{segment_id:int}"
    return [
        Operation(
            "GET",
            "/campaigns/segments",
            lambda r: r.crm.campaigns.segments.list(),
            "List saved segments",
            response=SEGMENT,
            many=True,
            permission=SEGMENTS_READ,
        ),
        Operation(
            "POST",
            "/campaigns/segments",
            create,
            "Save a segment (its expression is checked now)",
            body=segment_input,
            service_validates=True,
            response=SEGMENT,
            status=201,
            permission=SEGMENTS_MANAGE,
        ),
        Operation(
            "GET",
            one,
            lambda r: r.crm.campaigns.segments.get(r.params["segment_id"]),
            "Read a saved segment",
            response=SEGMENT,
            permission=SEGMENTS_READ,
        ),
        Operation(
            "GET",
            one + "/count",
            lambda r: {"customers": r.crm.campaigns.segments.count(r.params["segment_id"])},
            "How many customers a saved segment holds now",
            response=COUNT,
            permission=SEGMENTS_READ,
            description="Counted live, over the customers in the caller's scope.",
        ),
        Operation(
            "GET",
            "/campaigns/segments/count",
            lambda r: {"customers": r.crm.campaigns.segments.count(expression=r.query.get("expression"))},
            "How many customers an expression matches now (before saving it)",
            query=expression,
            response=COUNT,
            permission=SEGMENTS_READ,
            description="Counted live, over the customers in the caller's scope; a mistake answers 422 "
            "naming its line and column.",
        ),
    ]


def campaign_operations() -> list[Operation]:
    """Campaigns: list, create, read, run, preview for a customer, report."""
    campaign_input = CampaignSchema()
    listing = query_schema("CampaignListQuery", status=fields.String(validate=validate.OneOf(TRANSITIONS)))
    preview = query_schema("CampaignPreviewQuery", variant=fields.String(validate=validate.Length(1, 50)))

    def create(r: ApiRequest) -> Reply:
        body = _known(r.body, campaign_input)
        name, channel, text = body.pop("name", None), body.pop("channel", None), body.pop("body", None)
        made = r.crm.campaigns.create(name, channel=channel, body=text, **body)
        return _created(made, f"/campaigns/{made.id}")

    one = "/campaigns/{campaign_id:int}"
    return [
        Operation(
            "GET",
            "/campaigns/",
            lambda r: r.crm.campaigns.list(status=r.query.get("status")),
            "List campaigns, newest first",
            query=listing,
            response=CAMPAIGN,
            many=True,
            permission=READ,
        ),
        Operation(
            "POST",
            "/campaigns/",
            create,
            "Create a draft campaign (its message is variant A)",
            body=campaign_input,
            service_validates=True,
            response=CAMPAIGN,
            status=201,
            permission=MANAGE,
            description="Money in integer minor units of `currency` (`budget_minor`, `cost_fixed_minor`, "
            "`cost_per_message_minor`); `segment` is a saved segment's id or name.",
        ),
        Operation(
            "GET",
            one,
            lambda r: r.crm.campaigns.get(r.params["campaign_id"]),
            "Read a campaign and its variants",
            response=CAMPAIGN,
            permission=READ,
        ),
        Operation(
            "POST",
            one + "/run",
            lambda r: r.crm.campaigns.run(r.params["campaign_id"]),
            "Prepare a campaign's messages now (the worker delivers them)",
            response=schema_of(RunResult),
            permission=SEND,
            description="Targets the customers in the caller's scope; again later adds only newcomers. "
            "409 for an occasion campaign or one that is done or cancelled.",
        ),
        Operation(
            "GET",
            one + "/preview/{customer_id:int}",
            lambda r: r.crm.campaigns.preview(
                r.params["campaign_id"], r.params["customer_id"], variant=r.query.get("variant")
            ),
            "The message a customer would receive, and whether they would",
            query=preview,
            response=schema_of(Preview),
            permission=READ,
            description="A customer outside the caller's scope answers 404.",
        ),
        Operation(
            "GET",
            one + "/report",
            lambda r: r.crm.campaigns.report(r.params["campaign_id"]),
            "ROI, rates and lift over the holdout, per variant",
            response=schema_of(CampaignReport),
            permission=REPORTS,
            description="Counted over the customers in the caller's scope (`scoped_to` names the caller "
            "when that is narrower than everyone); money in minor units.",
        ),
    ]


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """Segments, campaigns and the public tracking routes (whose tokens are kept out of the logs from now on)."""
    web.redact_logs()
    return [*segment_operations(), *campaign_operations(), *web.tracking_operations()]
