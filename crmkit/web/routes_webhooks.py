"""The core's webhook resources: subscriptions, their deliveries, replay, and the event types on offer."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from crmkit.core.events import EventType
from crmkit.core.schemas import AwareDateTime
from crmkit.core.webhooks import STATUSES, Attempt, Delivery, Subscription
from crmkit.crm import CRM
from crmkit.web.operations import ApiRequest, Operation, Reply
from crmkit.web.schemas import query_schema, schema_of

SUBSCRIPTION, DELIVERY = schema_of(Subscription), schema_of(Delivery)


def webhook_operations(crm: CRM) -> list[Operation]:
    """Subscriptions (CRUD), deliveries and attempts, replay, and ``/webhooks/event-types`` (``webhooks.admin``)."""
    tag, permission = "webhooks", "webhooks.admin"
    events = fields.List(fields.String(), validate=validate.Length(1, 100))
    create = query_schema(
        "SubscriptionBody",
        url=fields.String(required=True, validate=validate.Length(1, 2000)),
        events=fields.List(fields.String(), required=True, validate=validate.Length(1, 100)),
        secret=fields.String(validate=validate.Length(1, 200)),
        description=fields.String(validate=validate.Length(max=300)),
        active=fields.Boolean(),
    )
    change = query_schema(
        "SubscriptionUpdateBody",
        url=fields.String(validate=validate.Length(1, 2000)),
        events=events,
        description=fields.String(validate=validate.Length(max=300)),
        active=fields.Boolean(),
    )
    listing = query_schema(
        "DeliveryQuery",
        subscription_id=fields.Integer(),
        status=fields.String(validate=validate.OneOf(STATUSES)),
        limit=fields.Integer(load_default=100, validate=validate.Range(1, 1000)),
    )
    replay = query_schema(
        "ReplayBody",
        event_id=fields.String(validate=validate.Length(1, 40)),
        since=AwareDateTime(),
        until=AwareDateTime(),
        subscription_id=fields.Integer(),
    )
    replayed = query_schema("Replayed", deliveries=fields.Integer())

    def subscribe(r: ApiRequest) -> Reply:
        body = dict(r.body)
        made = r.crm.webhooks.subscribe(body.pop("url"), body.pop("events"), **body)
        return Reply(made, status=201, headers={"Location": f"/webhooks/{made.id}"})

    def types(r: ApiRequest) -> list[Any]:
        return sorted(r.crm.events.types.values(), key=lambda e: e.name)

    def again(r: ApiRequest) -> dict[str, int]:
        return {
            "deliveries": r.crm.webhooks.replay(
                r.body.get("event_id"),
                since=r.body.get("since"),
                until=r.body.get("until"),
                subscription_id=r.body.get("subscription_id"),
            )
        }

    one = "/webhooks/{subscription_id:int}"
    return [
        Operation(
            "GET",
            "/webhooks",
            lambda r: r.crm.webhooks.list(),
            "List webhook subscriptions",
            tag,
            response=SUBSCRIPTION,
            many=True,
            permission=permission,
        ),
        Operation(
            "POST",
            "/webhooks",
            subscribe,
            "Subscribe a URL to event types (the secret is shown this once)",
            tag,
            body=create,
            response=SUBSCRIPTION,
            status=201,
            permission=permission,
        ),
        Operation(
            "GET",
            "/webhooks/event-types",
            types,
            "The event types the core and the plugins emit",
            tag,
            response=schema_of(EventType),
            many=True,
            permission=permission,
        ),
        Operation(
            "GET",
            one,
            lambda r: r.crm.webhooks.get(r.params["subscription_id"]),
            "Read a subscription",
            tag,
            response=SUBSCRIPTION,
            permission=permission,
        ),
        Operation(
            "PATCH",
            one,
            lambda r: r.crm.webhooks.update(r.params["subscription_id"], **r.body),
            "Change or pause a subscription",
            tag,
            body=change,
            response=SUBSCRIPTION,
            permission=permission,
        ),
        Operation(
            "DELETE",
            one,
            lambda r: Reply(status=204, body=r.crm.webhooks.delete(r.params["subscription_id"])),
            "Remove a subscription",
            tag,
            status=204,
            permission=permission,
        ),
        Operation(
            "GET",
            "/webhooks/deliveries",
            lambda r: r.crm.webhooks.deliveries(
                r.query.get("subscription_id"), r.query.get("status"), limit=r.query["limit"]
            ),
            "The latest deliveries, newest first (status dead: the dead letters)",
            tag,
            query=listing,
            response=DELIVERY,
            many=True,
            permission=permission,
        ),
        Operation(
            "GET",
            "/webhooks/deliveries/{delivery_id:int}/attempts",
            lambda r: r.crm.webhooks.attempts(r.params["delivery_id"]),
            "The log of a delivery's attempts",
            tag,
            response=schema_of(Attempt),
            many=True,
            permission=permission,
        ),
        Operation(
            "POST",
            "/webhooks/replay",
            again,
            "Deliver again one event, or every event in a time range",
            tag,
            body=replay,
            response=replayed,
            permission=permission,
        ),
    ]
