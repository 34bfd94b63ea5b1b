"""The core's customer and interaction resources: thin doors onto ``crm.customers`` and ``crm.interactions``.

Every handler calls the same service method the CLI calls, acting as the caller; the service
checks the permission and the scope (a customer outside it answers 404).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit.core import tables as t
from crmkit.core.customer_merges import MergeRecord, Unmerge
from crmkit.core.models import KINDS, LIFECYCLE_STAGES, Consent, Customer, DuplicateCandidate, Interaction, Profile
from crmkit.core.schemas import AwareDateTime, CustomerSchema, InteractionSchema
from crmkit.crm import CRM
from crmkit.web.app import etag_of_json
from crmkit.web.operations import ApiRequest, Operation, Page, Reply
from crmkit.web.schemas import page_of, paging, query_schema, schema_of

CUSTOMER = schema_of(Customer)
INTERACTION = schema_of(Interaction)


def _created(value: Any, location: str) -> Reply:
    return Reply(value, status=201, headers={"Location": location})


def _customer_etag(request: ApiRequest) -> str:
    """The ETag of the customer as it is now, its row locked so the change that follows sees the same one."""
    crm, customer_id = request.crm, request.params["customer_id"]
    with crm.transaction() as session:
        session.execute(sa.select(t.customers.c.id).where(t.customers.c.id == customer_id).with_for_update())
        return etag_of_json(crm.customers.get(customer_id))


def customer_operations(crm: CRM) -> list[Operation]:
    """Customers: search and list, create, read, update, tags, consent, duplicates, merge, unmerge, export, erase."""
    tag = "customers"
    listing = query_schema(
        "CustomerListQuery",
        q=fields.String(validate=validate.Length(1, 200)),
        tag=fields.String(),
        owner=fields.String(),
        kind=fields.String(validate=validate.OneOf(KINDS)),
        lifecycle_stage=fields.String(validate=validate.OneOf(LIFECYCLE_STAGES)),
        **paging(),
    )

    def find(r: ApiRequest) -> Page:
        page = r.crm.customers.find(
            r.query.get("q"),
            tag=r.query.get("tag"),
            owner=r.query.get("owner"),
            kind=r.query.get("kind"),
            lifecycle_stage=r.query.get("lifecycle_stage"),
            after=r.query.get("after"),
            limit=r.query["limit"],
        )
        return Page(list(page.items), page.next_cursor)

    def create(r: ApiRequest) -> Reply:
        customer = r.crm.customers.add(r.body, source="api")
        return _created(customer, f"/customers/{customer.id}")

    def tags_body() -> Any:
        return query_schema(
            "TagsBody",
            tags=fields.List(
                fields.String(validate=validate.Length(1, 100)), required=True, validate=validate.Length(1, 100)
            ),
        )

    consent = query_schema(
        "ConsentBody",
        granted=fields.Boolean(required=True),
        source=fields.String(required=True, validate=validate.Length(1, 200)),
        at=AwareDateTime(),
    )
    merge = query_schema("MergeBody", merged_id=fields.Integer(required=True, validate=validate.Range(1)))
    merges = query_schema(
        "MergesQuery",
        customer_id=fields.Integer(validate=validate.Range(1)),
        limit=fields.Integer(load_default=50, validate=validate.Range(1, 500)),
    )
    erase = query_schema("EraseQuery", reason=fields.String(validate=validate.Length(1, 200)))
    duplicates = query_schema("DuplicatesQuery", limit=fields.Integer(load_default=20, validate=validate.Range(1, 100)))
    customer_body = crm.customers.schema()
    partial = CustomerSchema(partial=True, default_country=crm.default_country, channels=crm.channels)
    one = "/customers/{customer_id:int}"
    return [
        Operation(
            "GET",
            "/customers",
            find,
            "Search or list customers",
            tag,
            query=listing,
            response=page_of(CUSTOMER, "CustomerPage"),
            permission="customers.read",
            description="`q` searches names (accents ignored), e-mail prefixes and phone suffixes; "
            "pages by keyset: follow `next`.",
        ),
        Operation(
            "POST",
            "/customers",
            create,
            "Create a customer",
            tag,
            body=customer_body,
            response=CUSTOMER,
            status=201,
            service_validates=True,
            permission="customers.create",
        ),
        Operation(
            "GET",
            one,
            lambda r: r.crm.customers.get(r.params["customer_id"]),
            "Read a customer",
            tag,
            response=CUSTOMER,
            permission="customers.read",
            description="Answers an `ETag`; send it back as `If-Match` when you update.",
        ),
        Operation(
            "PATCH",
            one,
            lambda r: r.crm.customers.update(r.params["customer_id"], r.body, source="api"),
            "Update a customer's given fields",
            tag,
            body=partial,
            response=CUSTOMER,
            service_validates=True,
            permission="customers.update",
            etag_of=_customer_etag,
        ),
        Operation(
            "DELETE",
            one,
            lambda r: Reply(
                status=204,
                body=r.crm.customers.erase(
                    r.params["customer_id"], reason=r.query.get("reason") or "erasure request via the API"
                ),
            ),
            "Erase a customer (right to erasure)",
            tag,
            query=erase,
            status=204,
            permission="customers.erase",
        ),
        Operation(
            "GET",
            one + "/profile",
            lambda r: r.crm.customers.profile(r.params["customer_id"]),
            "The customer 360: the customer, recent interactions and every plugin's section",
            tag,
            response=schema_of(Profile),
            permission="customers.read",
        ),
        Operation(
            "POST",
            one + "/tags",
            lambda r: r.crm.customers.add_tags(r.params["customer_id"], *r.body["tags"]),
            "Add tags",
            tag,
            body=tags_body(),
            response=CUSTOMER,
            permission="customers.update",
        ),
        Operation(
            "DELETE",
            one + "/tags/{tag:str}",
            lambda r: r.crm.customers.remove_tags(r.params["customer_id"], r.params["tag"]),
            "Remove a tag",
            tag,
            response=CUSTOMER,
            permission="customers.update",
        ),
        Operation(
            "PUT",
            one + "/consents/{channel:str}",
            lambda r: r.crm.customers.set_consent(
                r.params["customer_id"],
                r.params["channel"],
                r.body["granted"],
                source=r.body["source"],
                at=r.body.get("at"),
            ),
            "Record consent given or withdrawn for a channel",
            tag,
            body=consent,
            response=schema_of(Consent),
            permission="customers.update",
        ),
        Operation(
            "GET",
            one + "/duplicates",
            lambda r: r.crm.customers.duplicates(r.params["customer_id"], limit=r.query["limit"]),
            "Likely duplicates of a customer",
            tag,
            query=duplicates,
            response=schema_of(DuplicateCandidate),
            many=True,
            permission="customers.read",
        ),
        Operation(
            "POST",
            one + "/merge",
            lambda r: r.crm.customers.merge(r.params["customer_id"], r.body["merged_id"]),
            "Merge another customer into this one",
            tag,
            body=merge,
            response=CUSTOMER,
            permission="customers.merge",
        ),
        Operation(
            "GET",
            "/customers/merges",
            lambda r: r.crm.customers.merges(customer_id=r.query.get("customer_id"), limit=r.query["limit"]),
            "Merges, newest first, with the rows each moved and whether it was undone",
            tag,
            query=merges,
            response=schema_of(MergeRecord),
            many=True,
            permission="customers.read",
        ),
        Operation(
            "POST",
            "/customers/merges/{merge_id:int}/unmerge",
            lambda r: r.crm.customers.unmerge(r.params["merge_id"]),
            "Undo a merge: the merged customer is back with exactly the rows that came from it",
            tag,
            response=schema_of(Unmerge),
            permission="customers.merge",
        ),
        Operation(
            "GET",
            one + "/export",
            lambda r: r.crm.customers.export_data(r.params["customer_id"]),
            "Everything held about a customer (right of access)",
            tag,
            permission="customers.export",
        ),
    ]


def interaction_operations(crm: CRM) -> list[Operation]:
    """Interactions: log one, read one, a customer's timeline."""
    tag = "interactions"
    timeline = query_schema(
        "TimelineQuery",
        channel=fields.List(fields.String()),
        since=AwareDateTime(),
        until=AwareDateTime(),
        employee=fields.String(),
        **paging("before", default=50),
    )

    def log(r: ApiRequest) -> Reply:
        body = dict(r.body)
        customer_id, channel = body.pop("customer_id", None), body.pop("channel", None)
        interaction = r.crm.interactions.log(customer_id, channel, **body)
        return _created(interaction, f"/interactions/{interaction.id}")

    def history(r: ApiRequest) -> Page:
        channels = r.query.get("channel")
        page = r.crm.interactions.timeline(
            r.params["customer_id"],
            channels=[channels] if isinstance(channels, str) else channels,
            since=r.query.get("since"),
            until=r.query.get("until"),
            employee=r.query.get("employee"),
            before=r.query.get("before"),
            limit=r.query["limit"],
        )
        return Page(list(page.items), page.next_cursor, "before")

    return [
        Operation(
            "POST",
            "/interactions",
            log,
            "Log an interaction (a call, visit, message…)",
            tag,
            body=InteractionSchema(channels=crm.channels),
            response=INTERACTION,
            status=201,
            service_validates=True,
            permission="interactions.log",
        ),
        Operation(
            "GET",
            "/interactions/{interaction_id:int}",
            lambda r: r.crm.interactions.get(r.params["interaction_id"]),
            "Read an interaction",
            tag,
            response=INTERACTION,
            permission="interactions.read",
        ),
        Operation(
            "GET",
            "/customers/{customer_id:int}/interactions",
            history,
            "A customer's timeline across channels, newest first",
            tag,
            query=timeline,
            response=page_of(INTERACTION, "InteractionPage"),
            permission="interactions.read",
        ),
    ]
