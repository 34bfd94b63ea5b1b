"""The sales plugin's HTTP API: thin doors onto ``crm.sales`` under ``/sales/`` (see the README's "HTTP API").

Every handler calls the service method the CLI calls, acting as the caller; the service checks the
permission and the scope (a record of a customer outside it answers 404) and validates the input with
the schemas of :mod:`crmkit_sales.schemas`, which also document it. Amounts stay integer minor units.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import hookimpl
from crmkit.plugin_api import AwareDateTime
from crmkit.web import ApiRequest, Operation, Reply, etag_of_json, query_schema, schema_of
from crmkit_sales import models as m
from crmkit_sales import permissions as perm
from crmkit_sales.agenda import SPANS
from crmkit_sales.objects import (
    Agenda,
    Appointment,
    Deal,
    Order,
    Payment,
    Pipeline,
    Price,
    PriceList,
    Product,
    Quote,
    Refund,
    Stage,
    StageChange,
    Task,
)
from crmkit_sales.orders import OPEN_STATUSES
from crmkit_sales.pricing import MAX_QUANTITY
from crmkit_sales.quotes import TRANSITIONS
from crmkit_sales.schemas import (
    DAYS,
    MAX_ID,
    MOMENTS,
    AppointmentSchema,
    DealSchema,
    DealUpdateSchema,
    ExactDecimal,
    OrderSchema,
    PaymentSchema,
    PipelineSchema,
    PriceListSchema,
    PriceSchema,
    ProductSchema,
    QuoteRevisionSchema,
    QuoteSchema,
    Ref,
    RefundSchema,
    TaskSchema,
)

if TYPE_CHECKING:
    from crmkit.crm import CRM

TAG = "sales"
#: The days an agenda may be asked for (before 1912 the business's zone kept local mean time, whose offsets in
#: seconds RFC 3339 cannot write).
AGENDA_DAYS = validate.Range(min=date(1970, 1, 1), max=DAYS.max)
DEAL_STATUSES = ("open", "won", "lost")
QUOTE_STATUSES = ("draft", *dict.fromkeys(target for _, target in TRANSITIONS.values()))
ORDER_STATUSES = (*OPEN_STATUSES, "cancelled", "refunded")
PRODUCT, PRICE_LIST, PIPELINE, DEAL = schema_of(Product), schema_of(PriceList), schema_of(Pipeline), schema_of(Deal)
QUOTE, ORDER, TASK, APPOINTMENT = schema_of(Quote), schema_of(Order), schema_of(Task), schema_of(Appointment)


class OrderPlacementSchema(OrderSchema):
    """What ``POST /sales/orders`` takes: an order and the voucher codes to redeem on it (``Orders.place``
    reads ``vouchers`` itself, then loads the rest through :class:`OrderSchema`)."""

    vouchers = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        metadata={"description": "voucher codes (of loyalty rewards, say) taken off the order before VAT"},
    )


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """The sales routes, all under ``/sales/``."""
    return [
        *catalogue_operations(),
        *deal_operations(),
        *quote_operations(crm),
        *order_operations(),
        *agenda_operations(),
    ]


def _id(**kwargs: Any) -> fields.Integer:
    """A record id in a query string (1 … 2⁶³−1, what the id columns hold)."""
    return fields.Integer(validate=validate.Range(1, MAX_ID), **kwargs)


def _limit(default: int) -> fields.Integer:
    """How many rows a list answers at most (1–1000)."""
    return fields.Integer(load_default=default, validate=validate.Range(1, 1000))


def _created(value: Any, location: str | None = None) -> Reply:
    """201 with the created record (and where to read it again)."""
    return Reply(value, status=201, headers={"Location": location} if location else {})


def _locked_etag(table: sa.Table, read: Callable[[ApiRequest], Any]) -> Callable[[ApiRequest], str]:
    """An ``etag_of``: the record's ETag as it is now, its row locked so the change that follows sees the same one."""

    def etag_of(r: ApiRequest) -> str:
        with r.crm.transaction() as session:
            record = read(r)
            session.execute(sa.select(table.c.id).where(table.c.id == record.id).with_for_update())
            return etag_of_json(read(r))

    return etag_of


def catalogue_operations() -> list[Operation]:
    """Products, price lists and the price a customer gets."""
    product_query = query_schema(
        "SalesProductQuery",
        search=fields.String(validate=validate.Length(1, 200)),
        category=fields.String(),
        active=fields.String(
            load_default="true",
            validate=validate.OneOf(("true", "false", "all")),
            metadata={"description": "`all` lists active and inactive products"},
        ),
        limit=_limit(200),
    )
    price_query = query_schema(
        "SalesPriceQuery",
        customer_id=_id(required=True),
        product=fields.String(required=True),
        currency=fields.String(validate=validate.Length(3, 3)),
        on=fields.Date(validate=DAYS),
        quantity=ExactDecimal(3, positive=True, maximum=MAX_QUANTITY, load_default=Decimal(1)),
        price_list_id=_id(),
    )
    remove_query = query_schema(
        "SalesPriceRemoveQuery",
        min_quantity=ExactDecimal(3, positive=True, maximum=MAX_QUANTITY, load_default=Decimal(1)),
    )

    def products(r: ApiRequest) -> list[Product]:
        q = r.query
        active = {"true": True, "false": False, "all": None}[q["active"]]
        return r.crm.sales.products.list(
            search=q.get("search"), category=q.get("category"), active=active, limit=q["limit"]
        )

    def add_product(r: ApiRequest) -> Reply:
        product = r.crm.sales.products.add(r.body)
        return _created(product, f"/sales/products/{product.id}")

    def add_price_list(r: ApiRequest) -> Reply:
        price_list = r.crm.sales.pricelists.add(r.body)
        return _created(price_list, f"/sales/pricelists/{price_list.id}")

    def price_for(r: ApiRequest) -> Price:
        q = r.query
        return r.crm.sales.pricelists.price_for(
            q["customer_id"],
            q["product"],
            currency=q.get("currency"),
            on=q.get("on"),
            quantity=q["quantity"],
            price_list_id=q.get("price_list_id"),
        )

    product = "/sales/products/{product:str}"
    price_list = "/sales/pricelists/{pricelist:str}"
    price = price_list + "/prices/{product:str}"
    return [
        Operation(
            "GET",
            "/sales/products",
            products,
            "List the catalogue",
            TAG,
            query=product_query,
            response=PRODUCT,
            many=True,
            permission=perm.PRODUCTS_READ,
            description="Ordered by SKU; `search` matches SKU or name, accents ignored.",
        ),
        Operation(
            "POST",
            "/sales/products",
            add_product,
            "Add a product or service",
            TAG,
            body=ProductSchema(),
            response=PRODUCT,
            status=201,
            service_validates=True,
            permission=perm.PRODUCTS_MANAGE,
        ),
        Operation(
            "GET",
            product,
            lambda r: r.crm.sales.products.get(r.params["product"]),
            "Read a product (by id or SKU)",
            TAG,
            response=PRODUCT,
            permission=perm.PRODUCTS_READ,
        ),
        Operation(
            "PATCH",
            product,
            lambda r: r.crm.sales.products.update(r.params["product"], r.body),
            "Change a product's given fields (`active: false` stops selling it)",
            TAG,
            body=ProductSchema(partial=True),
            response=PRODUCT,
            service_validates=True,
            permission=perm.PRODUCTS_MANAGE,
            etag_of=_locked_etag(m.products, lambda r: r.crm.sales.products.get(r.params["product"])),
        ),
        Operation(
            "GET",
            "/sales/pricelists",
            lambda r: r.crm.sales.pricelists.list(),
            "List price lists (without their prices)",
            TAG,
            response=PRICE_LIST,
            many=True,
            permission=perm.PRODUCTS_READ,
        ),
        Operation(
            "POST",
            "/sales/pricelists",
            add_price_list,
            "Create a price list for a customer group",
            TAG,
            body=PriceListSchema(),
            response=PRICE_LIST,
            status=201,
            service_validates=True,
            permission=perm.PRODUCTS_MANAGE,
        ),
        Operation(
            "GET",
            price_list,
            lambda r: r.crm.sales.pricelists.get(r.params["pricelist"]),
            "Read a price list (by id or name) with its prices",
            TAG,
            response=PRICE_LIST,
            permission=perm.PRODUCTS_READ,
        ),
        Operation(
            "PATCH",
            price_list,
            lambda r: r.crm.sales.pricelists.update(r.params["pricelist"], r.body),
            "Change a price list's name, group, validity or active flag",
            TAG,
            body=PriceListSchema(partial=True),
            response=PRICE_LIST,
            service_validates=True,
            permission=perm.PRODUCTS_MANAGE,
            etag_of=_locked_etag(m.price_lists, lambda r: r.crm.sales.pricelists.get(r.params["pricelist"])),
        ),
        Operation(
            "PUT",
            price,
            lambda r: r.crm.sales.pricelists.set_price(
                r.params["pricelist"], r.params["product"], r.body["price_minor"], min_quantity=r.body["min_quantity"]
            ),
            "Set a product's price in a price list (from `min_quantity` up)",
            TAG,
            body=PriceSchema(),
            response=PRICE_LIST,
            permission=perm.PRODUCTS_MANAGE,
        ),
        Operation(
            "DELETE",
            price,
            lambda r: r.crm.sales.pricelists.remove_price(
                r.params["pricelist"], r.params["product"], min_quantity=r.query["min_quantity"]
            ),
            "Remove a product's price (at `min_quantity`) from a price list",
            TAG,
            query=remove_query,
            response=PRICE_LIST,
            permission=perm.PRODUCTS_MANAGE,
        ),
        Operation(
            "GET",
            "/sales/prices",
            price_for,
            "The unit price a customer gets for a product",
            TAG,
            query=price_query,
            response=schema_of(Price),
            permission=perm.PRODUCTS_READ,
            description="The price rule: the best applicable price list of the customer's groups, else the "
            "list price. Also needs the customer within `customers.read`.",
        ),
    ]


def deal_operations() -> list[Operation]:
    """Pipelines and their stages, deals and their stage moves."""
    deal_query = query_schema(
        "SalesDealQuery",
        customer_id=_id(),
        owner=fields.String(),
        status=fields.String(validate=validate.OneOf(DEAL_STATUSES)),
        pipeline=fields.String(metadata={"description": "a pipeline's id or name"}),
        limit=_limit(100),
    )
    stage_body = query_schema(
        "SalesStageBody",
        name=fields.String(validate=validate.Length(1, 100)),
        probability=ExactDecimal(4, minimum=Decimal(0), maximum=Decimal(1)),
    )
    move_body = query_schema(
        "SalesDealMoveBody",
        stage=Ref(required=True, metadata={"description": "a stage of the deal's pipeline, by id or name"}),
        reason=fields.String(allow_none=True),
        at=AwareDateTime(allow_none=True),
    )
    win_body = query_schema(
        "SalesDealWinBody", reason=fields.String(allow_none=True), at=AwareDateTime(allow_none=True)
    )
    lose_body = query_schema(
        "SalesDealLoseBody",
        reason=fields.String(required=True, validate=validate.Length(1)),
        at=AwareDateTime(allow_none=True),
    )

    def add_pipeline(r: ApiRequest) -> Reply:
        pipeline = r.crm.sales.pipelines.add(r.body["name"], r.body["stages"])
        return _created(pipeline, f"/sales/pipelines/{pipeline.id}")

    def deals(r: ApiRequest) -> list[Deal]:
        q = r.query
        return r.crm.sales.deals.list(
            customer_id=q.get("customer_id"),
            owner=q.get("owner"),
            status=q.get("status"),
            pipeline=q.get("pipeline"),
            limit=q["limit"],
        )

    def add_deal(r: ApiRequest) -> Reply:
        deal = r.crm.sales.deals.add(r.body)
        return _created(deal, f"/sales/deals/{deal.id}")

    deal = "/sales/deals/{deal_id:int}"
    return [
        Operation(
            "GET",
            "/sales/pipelines",
            lambda r: r.crm.sales.pipelines.list(),
            "List pipelines with their stages",
            TAG,
            response=PIPELINE,
            many=True,
            permission=perm.PRODUCTS_READ,
        ),
        Operation(
            "POST",
            "/sales/pipelines",
            add_pipeline,
            "Create a pipeline",
            TAG,
            body=PipelineSchema(),
            response=PIPELINE,
            status=201,
            permission=perm.PRODUCTS_MANAGE,
            description="Open stages keep the given order; without a won or a lost stage, `Won` (1) and "
            "`Lost` (0) are added.",
        ),
        Operation(
            "GET",
            "/sales/pipelines/{pipeline:str}",
            lambda r: r.crm.sales.pipelines.get(r.params["pipeline"]),
            "Read a pipeline (by id or name) with its stages",
            TAG,
            response=PIPELINE,
            permission=perm.PRODUCTS_READ,
        ),
        Operation(
            "PATCH",
            "/sales/stages/{stage_id:int}",
            lambda r: r.crm.sales.pipelines.update_stage(r.params["stage_id"], **r.body),
            "Rename a stage or change its win probability",
            TAG,
            body=stage_body,
            response=schema_of(Stage),
            permission=perm.PRODUCTS_MANAGE,
        ),
        Operation(
            "GET",
            "/sales/deals",
            deals,
            "List deals, newest first",
            TAG,
            query=deal_query,
            response=DEAL,
            many=True,
            permission=perm.DEALS_READ,
        ),
        Operation(
            "POST",
            "/sales/deals",
            add_deal,
            "Open a deal",
            TAG,
            body=DealSchema(),
            response=DEAL,
            status=201,
            service_validates=True,
            permission=perm.DEALS_UPDATE,
        ),
        Operation(
            "GET",
            deal,
            lambda r: r.crm.sales.deals.get(r.params["deal_id"]),
            "Read a deal",
            TAG,
            response=DEAL,
            permission=perm.DEALS_READ,
        ),
        Operation(
            "PATCH",
            deal,
            lambda r: r.crm.sales.deals.update(r.params["deal_id"], r.body),
            "Change a deal's title, owner, amount, currency, expected close or source",
            TAG,
            body=DealUpdateSchema(partial=True),
            response=DEAL,
            service_validates=True,
            permission=perm.DEALS_UPDATE,
            etag_of=_locked_etag(m.deals, lambda r: r.crm.sales.deals.get(r.params["deal_id"])),
        ),
        Operation(
            "GET",
            deal + "/history",
            lambda r: r.crm.sales.deals.history(r.params["deal_id"]),
            "Every stage move of a deal, oldest first",
            TAG,
            response=schema_of(StageChange),
            many=True,
            permission=perm.DEALS_READ,
        ),
        Operation(
            "POST",
            deal + "/move",
            lambda r: r.crm.sales.deals.move(
                r.params["deal_id"], r.body["stage"], reason=r.body.get("reason"), at=r.body.get("at")
            ),
            "Move a deal to another stage of its pipeline",
            TAG,
            body=move_body,
            response=DEAL,
            permission=perm.DEALS_UPDATE,
            description="The won or a lost stage closes the deal (a lost one needs a `reason`); an open stage "
            "reopens a closed one.",
        ),
        Operation(
            "POST",
            deal + "/win",
            lambda r: r.crm.sales.deals.win(r.params["deal_id"], **r.body),
            "Close a deal as won",
            TAG,
            body=win_body,
            response=DEAL,
            permission=perm.DEALS_UPDATE,
        ),
        Operation(
            "POST",
            deal + "/lose",
            lambda r: r.crm.sales.deals.lose(r.params["deal_id"], **r.body),
            "Close a deal as lost, saying why",
            TAG,
            body=lose_body,
            response=DEAL,
            permission=perm.DEALS_UPDATE,
        ),
    ]


def quote_operations(crm: CRM) -> list[Operation]:
    """Quotes: create, read, list, revise, the status workflow, versions, the document, and the order from one."""
    quote_query = query_schema(
        "SalesQuoteQuery",
        customer_id=_id(),
        status=fields.String(validate=validate.OneOf(QUOTE_STATUSES)),
        owner=fields.String(),
        latest=fields.Boolean(load_default=True, metadata={"description": "hide superseded versions"}),
        limit=_limit(100),
    )
    document_query = query_schema("SalesQuoteDocumentQuery", printable=fields.Boolean(load_default=False))

    def quotes(r: ApiRequest) -> list[Quote]:
        q = r.query
        return r.crm.sales.quotes.list(
            customer_id=q.get("customer_id"),
            status=q.get("status"),
            owner=q.get("owner"),
            latest=q["latest"],
            limit=q["limit"],
        )

    def create(r: ApiRequest) -> Reply:
        quote = r.crm.sales.quotes.create(r.body)
        return _created(quote, f"/sales/quotes/{quote.id}")

    def to_order(r: ApiRequest) -> Reply:
        order = r.crm.sales.quotes.place_order(r.params["quote_id"], r.body)
        return _created(order, f"/sales/orders/{order.id}")

    def document(r: ApiRequest) -> Reply:
        html = r.crm.sales.quotes.render_html(r.params["quote_id"], printable=r.query["printable"])
        return Reply(html.encode(), media_type="text/html; charset=utf-8")

    def step(action: str) -> Operation:
        allowed, target = TRANSITIONS[action]
        return Operation(
            "POST",
            f"{quote}/{action}",
            lambda r: getattr(r.crm.sales.quotes, action)(r.params["quote_id"]),
            f"Move a quote from {' or '.join(allowed)} to {target}",
            TAG,
            response=QUOTE,
            permission=perm.QUOTES_MANAGE,
        )

    quote = "/sales/quotes/{quote_id:int}"
    return [
        Operation(
            "GET",
            "/sales/quotes",
            quotes,
            "List quotes, newest first",
            TAG,
            query=quote_query,
            response=QUOTE,
            many=True,
            permission=perm.QUOTES_READ,
        ),
        Operation(
            "POST",
            "/sales/quotes",
            create,
            "Create a draft quote from the catalogue",
            TAG,
            body=QuoteSchema(),
            response=QUOTE,
            status=201,
            service_validates=True,
            permission=perm.QUOTES_MANAGE,
            description="Lines are priced for the customer on `issued_on` (today by default).",
        ),
        Operation(
            "GET",
            quote,
            lambda r: r.crm.sales.quotes.get(r.params["quote_id"]),
            "Read a quote version with its lines",
            TAG,
            response=QUOTE,
            permission=perm.QUOTES_READ,
        ),
        Operation(
            "POST",
            quote + "/revise",
            lambda r: r.crm.sales.quotes.revise(r.params["quote_id"], r.body),
            "Revise a quote: a draft changes in place, a later one gets a new draft version",
            TAG,
            body=QuoteRevisionSchema(partial=True),
            response=QUOTE,
            service_validates=True,
            permission=perm.QUOTES_MANAGE,
            description="Changing `lines` or `price_list_id` prices the lines again, as of today.",
        ),
        *(step(action) for action in TRANSITIONS),
        Operation(
            "GET",
            quote + "/versions",
            lambda r: r.crm.sales.quotes.versions(r.params["quote_id"]),
            "Every version of a quote, oldest first",
            TAG,
            response=QUOTE,
            many=True,
            permission=perm.QUOTES_READ,
        ),
        Operation(
            "GET",
            quote + "/document",
            document,
            "The quote as an HTML document to send or print",
            TAG,
            query=document_query,
            media_type="text/html",
            permission=perm.QUOTES_READ,
            description="The customer's contact details are masked for a caller who may not see them.",
        ),
        Operation(
            "POST",
            quote + "/order",
            to_order,
            "Turn an accepted quote into an order",
            TAG,
            body=crm.sales.quotes.order_schema,
            response=ORDER,
            status=201,
            service_validates=True,
            permission=perm.ORDERS_PLACE,
            description="Same customer, lines, prices and totals; a quote gives one order only. "
            "Send an `Idempotency-Key` to retry safely.",
        ),
    ]


def order_operations() -> list[Operation]:
    """Orders (place, read, list, fulfil, cancel, refund) and payments."""
    order_query = query_schema(
        "SalesOrderQuery",
        customer_id=_id(),
        status=fields.String(validate=validate.OneOf(ORDER_STATUSES)),
        owner=fields.String(),
        since=AwareDateTime(),
        until=AwareDateTime(),
        limit=_limit(100),
    )
    payment_query = query_schema("SalesPaymentQuery", order_id=_id(), customer_id=_id(), limit=_limit(200))
    when_body = query_schema("SalesOrderStepBody", at=AwareDateTime(allow_none=True))
    cancel_body = query_schema("SalesOrderCancelBody", reason=fields.String(allow_none=True))
    outstanding = query_schema(
        "SalesOutstanding",
        customer_id=fields.Integer(),
        outstanding_minor=fields.Dict(
            keys=fields.String(), values=fields.Integer(), metadata={"description": "per currency"}
        ),
    )

    def orders(r: ApiRequest) -> list[Order]:
        q = r.query
        return r.crm.sales.orders.list(
            customer_id=q.get("customer_id"),
            status=q.get("status"),
            owner=q.get("owner"),
            since=q.get("since"),
            until=q.get("until"),
            limit=q["limit"],
        )

    def place(r: ApiRequest) -> Reply:
        order = r.crm.sales.orders.place(r.body)
        return _created(order, f"/sales/orders/{order.id}")

    def refund(r: ApiRequest) -> Reply:
        body = dict(r.body)
        return _created(r.crm.sales.orders.refund(r.params["order_id"], body.pop("amount_minor"), **body))

    def pay(r: ApiRequest) -> Reply:
        body = dict(r.body)
        return _created(r.crm.sales.payments.record(r.params["order_id"], body.pop("amount_minor"), **body))

    def payments(r: ApiRequest) -> list[Payment]:
        q = r.query
        return r.crm.sales.payments.list(order_id=q.get("order_id"), customer_id=q.get("customer_id"), limit=q["limit"])

    def owed(r: ApiRequest) -> dict[str, Any]:
        customer_id = r.params["customer_id"]
        return {"customer_id": customer_id, "outstanding_minor": r.crm.sales.payments.outstanding(customer_id)}

    order = "/sales/orders/{order_id:int}"
    money = "Send an `Idempotency-Key` to retry safely: the same key and body answer the first response."
    return [
        Operation(
            "GET",
            "/sales/orders",
            orders,
            "List orders, newest first (`customer_id` for one customer's)",
            TAG,
            query=order_query,
            response=ORDER,
            many=True,
            permission=perm.ORDERS_READ,
            description="Placement time in [`since`, `until`).",
        ),
        Operation(
            "POST",
            "/sales/orders",
            place,
            "Place an order",
            TAG,
            body=OrderPlacementSchema(),
            response=ORDER,
            status=201,
            service_validates=True,
            permission=perm.ORDERS_PLACE,
            description="Lines are priced for the customer on the day it is placed; `currency` defaults to the "
            "CRM's and `owner` to the caller. " + money,
        ),
        Operation(
            "GET",
            order,
            lambda r: r.crm.sales.orders.get(r.params["order_id"]),
            "Read an order with its lines and money position",
            TAG,
            response=ORDER,
            permission=perm.ORDERS_READ,
        ),
        Operation(
            "POST",
            order + "/ship",
            lambda r: r.crm.sales.orders.ship(r.params["order_id"], **r.body),
            "Mark a placed order shipped",
            TAG,
            body=when_body,
            response=ORDER,
            permission=perm.ORDERS_PLACE,
        ),
        Operation(
            "POST",
            order + "/deliver",
            lambda r: r.crm.sales.orders.deliver(r.params["order_id"], **r.body),
            "Mark an order delivered",
            TAG,
            body=when_body,
            response=ORDER,
            permission=perm.ORDERS_PLACE,
        ),
        Operation(
            "POST",
            order + "/cancel",
            lambda r: r.crm.sales.orders.cancel(r.params["order_id"], **r.body),
            "Cancel an order before delivery (refused while money paid on it is kept)",
            TAG,
            body=cancel_body,
            response=ORDER,
            permission=perm.ORDERS_PLACE,
        ),
        Operation(
            "POST",
            order + "/refunds",
            refund,
            "Give back money paid on an order",
            TAG,
            body=RefundSchema(),
            response=schema_of(Refund),
            status=201,
            permission=perm.ORDERS_REFUND,
            description="At most what was paid and not yet refunded; at the full total the order becomes "
            "`refunded`. " + money,
        ),
        Operation(
            "GET",
            order + "/refunds",
            lambda r: r.crm.sales.orders.refunds(r.params["order_id"]),
            "The refunds of an order, oldest first",
            TAG,
            response=schema_of(Refund),
            many=True,
            permission=perm.ORDERS_READ,
        ),
        Operation(
            "POST",
            order + "/payments",
            pay,
            "Record a payment received on an order",
            TAG,
            body=PaymentSchema(),
            response=schema_of(Payment),
            status=201,
            permission=perm.PAYMENTS_RECORD,
            description="At most the outstanding balance. " + money,
        ),
        Operation(
            "GET",
            "/sales/payments",
            payments,
            "List payments, newest first, of an order or a customer",
            TAG,
            query=payment_query,
            response=schema_of(Payment),
            many=True,
            permission=perm.ORDERS_READ,
        ),
        Operation(
            "GET",
            "/sales/customers/{customer_id:int}/outstanding",
            owed,
            "What a customer still owes, per currency",
            TAG,
            response=outstanding,
            permission=perm.ORDERS_READ,
        ),
    ]


def agenda_operations() -> list[Operation]:
    """Follow-up tasks, appointments and an employee's agenda."""
    task_query = query_schema(
        "SalesTaskQuery",
        employee=fields.String(),
        customer_id=_id(),
        open_only=fields.Boolean(load_default=True),
        limit=_limit(200),
    )
    overdue_query = query_schema("SalesOverdueQuery", employee=fields.String(), limit=_limit(500))
    complete_body = query_schema(
        "SalesTaskDoneBody", outcome=fields.String(allow_none=True), at=AwareDateTime(allow_none=True)
    )
    appointment_query = query_schema(
        "SalesAppointmentQuery",
        customer_id=_id(),
        employee=fields.String(),
        since=AwareDateTime(),
        until=AwareDateTime(),
        limit=_limit(200),
    )
    reschedule_body = query_schema(
        "SalesRescheduleBody",
        starts_at=AwareDateTime(required=True, validate=MOMENTS),
        ends_at=AwareDateTime(allow_none=True, validate=MOMENTS),
    )
    outcome_body = query_schema("SalesOutcomeBody", outcome=fields.String(required=True, validate=validate.Length(1)))

    def agenda_query(span: str) -> Any:
        return query_schema(
            f"SalesAgenda{span.title()}Query",
            employee=fields.String(),
            on=fields.Date(validate=AGENDA_DAYS),
            span=fields.String(load_default=span, validate=validate.OneOf(tuple(SPANS))),
        )

    def tasks(r: ApiRequest) -> list[Task]:
        q = r.query
        return r.crm.sales.tasks.list(
            employee=q.get("employee"), customer_id=q.get("customer_id"), open_only=q["open_only"], limit=q["limit"]
        )

    def add_task(r: ApiRequest) -> Reply:
        task = r.crm.sales.tasks.add(r.body)
        return _created(task, f"/sales/tasks/{task.id}")

    def appointments(r: ApiRequest) -> list[Appointment]:
        q = r.query
        return r.crm.sales.appointments.list(
            customer_id=q.get("customer_id"),
            employee=q.get("employee"),
            since=q.get("since"),
            until=q.get("until"),
            limit=q["limit"],
        )

    def add_appointment(r: ApiRequest) -> Reply:
        appointment = r.crm.sales.appointments.add(r.body)
        return _created(appointment, f"/sales/appointments/{appointment.id}")

    def ics(r: ApiRequest) -> Reply:
        calendar = r.crm.sales.appointments.ics(r.query.get("employee"), on=r.query.get("on"), span=r.query["span"])
        return Reply(calendar.encode(), media_type="text/calendar; charset=utf-8")

    task = "/sales/tasks/{task_id:int}"
    appointment = "/sales/appointments/{appointment_id:int}"
    return [
        Operation(
            "GET",
            "/sales/tasks",
            tasks,
            "List tasks by due time",
            TAG,
            query=task_query,
            response=TASK,
            many=True,
            permission=perm.AGENDA_READ,
        ),
        Operation(
            "POST",
            "/sales/tasks",
            add_task,
            "Create a follow-up task",
            TAG,
            body=TaskSchema(),
            response=TASK,
            status=201,
            service_validates=True,
            permission=perm.TASKS_MANAGE,
            description="`employee` (a user) defaults to the caller.",
        ),
        Operation(
            "GET",
            "/sales/tasks/overdue",
            lambda r: r.crm.sales.tasks.overdue(employee=r.query.get("employee"), limit=r.query["limit"]),
            "Open tasks past their due time, most overdue first",
            TAG,
            query=overdue_query,
            response=TASK,
            many=True,
            permission=perm.AGENDA_READ,
        ),
        Operation(
            "GET",
            task,
            lambda r: r.crm.sales.tasks.get(r.params["task_id"]),
            "Read a task",
            TAG,
            response=TASK,
            permission=perm.AGENDA_READ,
        ),
        Operation(
            "POST",
            task + "/complete",
            lambda r: r.crm.sales.tasks.complete(r.params["task_id"], **r.body),
            "Mark a task done, with what came of it",
            TAG,
            body=complete_body,
            response=TASK,
            permission=perm.TASKS_MANAGE,
        ),
        Operation(
            "GET",
            "/sales/appointments",
            appointments,
            "List appointments in time order",
            TAG,
            query=appointment_query,
            response=APPOINTMENT,
            many=True,
            permission=perm.AGENDA_READ,
            description="Start time in [`since`, `until`).",
        ),
        Operation(
            "POST",
            "/sales/appointments",
            add_appointment,
            "Schedule an appointment",
            TAG,
            body=AppointmentSchema(),
            response=APPOINTMENT,
            status=201,
            service_validates=True,
            permission=perm.APPOINTMENTS_MANAGE,
            description="`employee` (a user) defaults to the caller.",
        ),
        Operation(
            "GET",
            appointment,
            lambda r: r.crm.sales.appointments.get(r.params["appointment_id"]),
            "Read an appointment",
            TAG,
            response=APPOINTMENT,
            permission=perm.AGENDA_READ,
        ),
        Operation(
            "POST",
            appointment + "/reschedule",
            lambda r: r.crm.sales.appointments.reschedule(
                r.params["appointment_id"], r.body["starts_at"], r.body.get("ends_at")
            ),
            "Move an appointment (same length unless `ends_at` is given)",
            TAG,
            body=reschedule_body,
            response=APPOINTMENT,
            permission=perm.APPOINTMENTS_MANAGE,
        ),
        Operation(
            "POST",
            appointment + "/outcome",
            lambda r: r.crm.sales.appointments.record_outcome(r.params["appointment_id"], r.body["outcome"]),
            "Mark an appointment held, with what came out of it",
            TAG,
            body=outcome_body,
            response=APPOINTMENT,
            permission=perm.APPOINTMENTS_MANAGE,
        ),
        Operation(
            "POST",
            appointment + "/cancel",
            lambda r: r.crm.sales.appointments.cancel(r.params["appointment_id"]),
            "Cancel an appointment (it stays in the history)",
            TAG,
            response=APPOINTMENT,
            permission=perm.APPOINTMENTS_MANAGE,
        ),
        Operation(
            "GET",
            "/sales/agenda",
            lambda r: r.crm.sales.appointments.agenda(
                r.query.get("employee"), on=r.query.get("on"), span=r.query["span"]
            ),
            "An employee's appointments and open tasks for a day or a week",
            TAG,
            query=agenda_query("day"),
            response=schema_of(Agenda),
            permission=perm.AGENDA_READ,
            description="The caller's by default; days are the business's time zone.",
        ),
        Operation(
            "GET",
            "/sales/agenda.ics",
            ics,
            "An employee's agenda as an iCalendar file",
            TAG,
            query=agenda_query("week"),
            media_type="text/calendar",
            permission=perm.AGENDA_READ,
        ),
    ]
