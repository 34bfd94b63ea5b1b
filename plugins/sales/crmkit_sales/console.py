"""The sales plugin's part of the web console: the pipeline board, quotes and orders, the customer-360 panel
"Orders and quotes", the home tiles "Pipeline value" and "Today", and their menu entries.

Every handler calls ``crm.sales`` as the signed-in user — a deal moved on the board goes through
``crm.sales.deals.move`` exactly as ``crmkit sales deals move`` and ``POST /sales/deals/{id}/move`` do — so
permissions, scopes, stage rules, hooks and webhook events hold; a record outside the user's scope is the 404
page. Templates are ``crmkit_sales:templates/console/…``; the board's drag and drop is the static file
``static/pipeline.js`` (the per-card "Move" form does the same without JavaScript).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile, static_files
from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.plugin_api import encode_cursor, messages_of, read_cursor
from crmkit_sales import permissions as perm
from crmkit_sales.objects import order_number

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.crm import CRM
    from crmkit.plugin_api import ConsoleRequest, Customer
    from crmkit_sales.objects import Deal, Order, Pipeline, Quote, Stage

PIPELINE = "/console/sales/pipeline"
QUOTES = "/console/sales/quotes"
ORDERS = "/console/sales/orders"
TEMPLATES = "crmkit_sales:templates/console/"
PAGE_SIZE = 25
#: Open deals a board shows per pipeline; won and lost columns show only their latest deals.
OPEN_CARDS = 500
CLOSED_CARDS = 10
#: How many of a customer's orders, quotes and open deals the 360 panel lists.
PANEL_ROWS = 5
TILE_ROWS = 8
# The msgids of the values the service stores (shown translated; the stored value is the key).
DEAL_STATUSES = {"open": "Open", "won": "Won", "lost": "Lost"}
QUOTE_STATUSES = {
    "draft": "Draft",
    "sent": "Sent",
    "accepted": "Accepted",
    "declined": "Declined",
    "expired": "Expired",
}
ORDER_STATUSES = {
    "placed": "Placed",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
}
PAYMENT_METHODS = {
    "cash": "Cash",
    "bank_transfer": "Bank transfer",
    "card": "Card",
    "cod": "Cash on delivery",
    "momo": "MoMo",
    "zalopay": "ZaloPay",
    "vnpay": "VNPay",
    "cheque": "Cheque",
    "other": "Other",
}


def totals(amounts: Iterable[Money]) -> list[Money]:
    """Amounts added up per currency (a list of deals may mix VND and USD), in currency order."""
    sums: dict[str, int] = {}
    for money in amounts:
        sums[money.currency] = sums.get(money.currency, 0) + money.minor
    return [Money(currency, minor) for currency, minor in sorted(sums.items())]


def _messages(exc: ValidationError) -> list[str]:
    """The service's reasons, without the field names (the page says what was refused)."""
    return messages_of(exc.errors)


# -- the pipeline board ----------------------------------------------------------------------------------


@attrs.frozen
class Column:
    """A stage on the board: its deals shown as cards, how many stand there in all and what they are worth."""

    stage: Stage
    deals: list[Deal]
    count: int
    values: list[Money]

    @property
    def shows_all(self) -> bool:
        """False when the column lists only the latest of its deals (won and lost ones pile up)."""
        return len(self.deals) >= self.count


def board_columns(crm: CRM, pipeline: Pipeline) -> list[Column]:
    """One column per stage of ``pipeline``: its open deals, the latest won and lost ones, and each stage's
    count and value over every deal the user may read (one grouped query)."""
    deals = crm.sales.deals
    shown = [
        *deals.list(status="open", pipeline=pipeline.id, limit=OPEN_CARDS),
        *deals.list(status="won", pipeline=pipeline.id, limit=CLOSED_CARDS),
        *deals.list(status="lost", pipeline=pipeline.id, limit=CLOSED_CARDS),
    ]
    values = deals.value_by_stage(pipeline=pipeline.id)
    return [
        Column(
            stage,
            [d for d in shown if d.stage_id == stage.id],
            sum(v.count for v in values if v.stage_id == stage.id),
            [v.amount for v in values if v.stage_id == stage.id],
        )
        for stage in pipeline.stages
    ]


def _chosen_pipeline(pipelines: list[Pipeline], wanted: str | None) -> Pipeline | None:
    """The pipeline named by the ``pipeline`` query argument (an id), else the first; None when there are none."""
    return next((p for p in pipelines if str(p.id) == wanted), pipelines[0] if pipelines else None)


def pipeline_page(
    request: ConsoleRequest,
    *,
    pipeline_id: int | None = None,
    error: str | None = None,
    failed: Deal | None = None,
    moved: Deal | None = None,
    status: int = 200,
) -> Response:
    """The board of one pipeline (chosen from the list when there are several); an htmx or fetch request gets
    the board alone (what the drag and drop swaps in). A refused move (``error``, the service's reason) marks
    the ``failed`` deal's card, its form keeping the stage tried and asking for a reason."""
    crm = request.crm
    pipelines = crm.sales.pipelines.list()
    wanted = str(pipeline_id) if pipeline_id is not None else request.http.args.get("pipeline")
    pipeline = _chosen_pipeline(pipelines, wanted)
    columns = board_columns(crm, pipeline) if pipeline else []
    cards = [d for column in columns for d in column.deals]
    if moved is None and request.http.args.get("moved", "").isdigit():
        moved = next((d for d in cards if d.id == int(request.http.args["moved"])), None)
    return request.render(
        TEMPLATES + "pipeline.html",
        status=status,
        pipelines=pipelines,
        pipeline=pipeline,
        columns=columns,
        names=crm.sales.customer_names((d.customer_id for d in cards), perm.DEALS_READ),
        can_move=request.allowed(perm.DEALS_UPDATE),
        error=error,
        failed=failed,
        moved=moved,
        tried=request.http.form.get("stage", "") if failed else "",
        stage_names={s.id: s.name for s in pipeline.stages} if pipeline else {},
    )


def pipeline_board(request: ConsoleRequest) -> Response:
    """``GET /console/sales/pipeline[?pipeline=ID]``: the kanban board."""
    return pipeline_page(request)


def move_deal(request: ConsoleRequest) -> Response:
    """Move a deal to the stage the card's form (or a drop on the board) names, through ``crm.sales.deals.move``;
    a refused move shows the service's reason on the board (422)."""
    deal_id, form = request.params["deal_id"], request.http.form
    deals = request.crm.sales.deals
    try:
        deal = deals.move(deal_id, form.get("stage", "").strip(), reason=form.get("reason", "").strip() or None)
    except ValidationError as exc:
        current = deals.get(deal_id)
        reasons = "; ".join(request.i18n.gettext(m) for m in _messages(exc))  # the catalog knows the common ones
        return pipeline_page(request, pipeline_id=current.pipeline_id, error=reasons, failed=current, status=422)
    if request.http.headers.get("HX-Request"):
        return pipeline_page(request, pipeline_id=deal.pipeline_id, moved=deal)
    return request.redirect(PIPELINE, pipeline=deal.pipeline_id, moved=deal.id)


# -- quotes and orders -----------------------------------------------------------------------------------


def _after(request: ConsoleRequest) -> tuple[datetime, int] | None:
    """The keyset cursor of the ``after`` query argument: the time and id of the previous page's last row."""
    cursor = request.http.args.get("after")
    if not cursor:
        return None
    at, last_id = read_cursor(cursor, "after", str, int)
    try:
        return datetime.fromisoformat(at), last_id
    except ValueError:
        raise ValidationError(f"invalid cursor {cursor!r}: pass back the next page link", field="after") from None


def _document_list(
    request: ConsoleRequest,
    path: str,
    template: str,
    statuses: dict[str, str],
    read: str,
    fetch: Callable[..., Sequence[Any]],
    key: str,
) -> Response:
    """A newest-first list of quotes or orders, filtered by status, paged by keyset (``key``: the time column)."""
    status = request.http.args.get("status", "")
    status = status if status in statuses else ""
    try:
        rows = fetch(status=status or None, after=_after(request), limit=PAGE_SIZE + 1)
        error = None
    except ValidationError as exc:
        rows, error = [], "; ".join(_messages(exc))
    page = rows[:PAGE_SIZE]
    next_url = (
        request.url(path, status=status, after=encode_cursor(getattr(page[-1], key), page[-1].id))
        if len(rows) > PAGE_SIZE
        else None
    )
    return request.render(
        TEMPLATES + template,
        rows=page,
        status_filter=status,
        statuses=statuses,
        names=request.crm.sales.customer_names((r.customer_id for r in page), read),
        next_url=next_url,
        error=error,
        Money=Money,
    )


def quote_list(request: ConsoleRequest) -> Response:
    """``GET /console/sales/quotes``: the latest version of each quote in the user's scope, newest first."""
    return _document_list(
        request, QUOTES, "quotes.html", QUOTE_STATUSES, perm.QUOTES_READ, request.crm.sales.quotes.list, "created_at"
    )


def order_list(request: ConsoleRequest) -> Response:
    """``GET /console/sales/orders``: orders in the user's scope, newest first, with what is still owed."""
    return _document_list(
        request, ORDERS, "orders.html", ORDER_STATUSES, perm.ORDERS_READ, request.crm.sales.orders.list, "placed_at"
    )


def quote_detail(request: ConsoleRequest) -> Response:
    """One quote version: its lines, totals, status and its other versions (404 outside the user's scope)."""
    sales = request.crm.sales
    quote = sales.quotes.get(request.params["quote_id"])
    return request.render(
        TEMPLATES + "quote.html",
        quote=quote,
        versions=sales.quotes.versions(quote.id),
        names=sales.customer_names([quote.customer_id], perm.QUOTES_READ),
        can_see_order=request.allowed(perm.ORDERS_READ),
        statuses=QUOTE_STATUSES,
        Money=Money,
        order_number=order_number,
    )


def order_detail(request: ConsoleRequest) -> Response:
    """One order: its lines, totals, status, payments and refunds (404 outside the user's scope)."""
    sales = request.crm.sales
    order = sales.orders.get(request.params["order_id"])
    return request.render(
        TEMPLATES + "order.html",
        order=order,
        payments=sales.payments.list(order_id=order.id),
        refunds=sales.orders.refunds(order.id),
        names=sales.customer_names([order.customer_id], perm.ORDERS_READ),
        can_see_quote=request.allowed(perm.QUOTES_READ),
        statuses=ORDER_STATUSES,
        methods=PAYMENT_METHODS,
        Money=Money,
    )


# -- customer 360 and home -------------------------------------------------------------------------------


@attrs.frozen
class CustomerSales:
    """The 360 panel's data: the customer's latest orders and quotes and open deals, with what they add up to
    (each part only when the user may read it)."""

    orders: list[Order] | None
    outstanding: list[Money]
    quotes: list[Quote] | None
    deals: list[Deal] | None
    open_value: list[Money]
    statuses: dict[str, dict[str, str]]


def customer_sales(crm: CRM, customer: Customer) -> CustomerSales:
    """The customer's latest orders (and what they still owe), quotes and open deals, as the signed-in user."""
    sales, allowed = crm.sales, crm.access.allowed
    orders = sales.orders.list(customer_id=customer.id, limit=PANEL_ROWS) if allowed(perm.ORDERS_READ) else None
    outstanding = sales.payments.outstanding(customer.id) if orders is not None else {}
    quotes = sales.quotes.list(customer_id=customer.id, limit=PANEL_ROWS) if allowed(perm.QUOTES_READ) else None
    deals = sales.deals.list(customer_id=customer.id, status="open") if allowed(perm.DEALS_READ) else None
    return CustomerSales(
        orders,
        [Money(c, minor) for c, minor in sorted(outstanding.items())],
        quotes,
        deals[:PANEL_ROWS] if deals is not None else None,
        totals(d.amount for d in deals or ()),
        {"orders": ORDER_STATUSES, "quotes": QUOTE_STATUSES},
    )


@attrs.frozen
class StageRow:
    """A line of the "Pipeline value" tile: an open stage, how many deals stand there and their value."""

    pipeline: str
    stage: str
    count: int
    values: list[Money]


@attrs.frozen
class PipelineValue:
    """The "Pipeline value" tile: open deals in the user's scope by stage, and their value in all."""

    stages: list[StageRow]
    total: list[Money]


def pipeline_value(crm: CRM) -> PipelineValue:
    """The value of the open deals the user may read, per open stage of each pipeline (one grouped query)."""
    values = crm.sales.deals.value_by_stage()
    pipelines = crm.sales.pipelines.list() if crm.access.allowed(perm.PRODUCTS_READ) else []
    rows = []
    for pipeline in pipelines:
        for stage in pipeline.stages:
            here = [v for v in values if v.stage_id == stage.id]
            if stage.outcome is None and here:
                rows.append(StageRow(pipeline.name, stage.name, sum(v.count for v in here), [v.amount for v in here]))
    open_stages = {s.id for p in pipelines for s in p.stages if s.outcome is None}
    return PipelineValue(rows, totals(v.amount for v in values if v.stage_id in open_stages))


@attrs.frozen
class Today:
    """The "Today" tile: the user's appointments and tasks due today, their overdue tasks, and customer names."""

    appointments: list[Any]
    due: list[Any]
    overdue: list[Any]
    names: dict[int, str]


def today(crm: CRM) -> Today:
    """The signed-in user's agenda for today (business time zone) and their open tasks already past due (a task
    due earlier today is overdue, not listed twice)."""
    sales, now = crm.sales, crm.now()
    agenda = sales.appointments.agenda()
    overdue = sales.tasks.overdue(employee=agenda.employee, now=now, limit=TILE_ROWS)
    due = [task for task in agenda.tasks if task.due_at >= now]
    shown = [*agenda.appointments, *due, *overdue]
    return Today(
        list(agenda.appointments), due, overdue, sales.customer_names((x.customer_id for x in shown), perm.AGENDA_READ)
    )


# -- hooks -----------------------------------------------------------------------------------------------


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    return [
        ConsolePage(PIPELINE, pipeline_board, permission=perm.DEALS_READ),
        ConsolePage(
            "/console/sales/deals/<int:deal_id>/move", move_deal, methods=("POST",), permission=perm.DEALS_UPDATE
        ),
        ConsolePage(QUOTES, quote_list, permission=perm.QUOTES_READ),
        ConsolePage(QUOTES + "/<int:quote_id>", quote_detail, permission=perm.QUOTES_READ),
        ConsolePage(ORDERS, order_list, permission=perm.ORDERS_READ),
        ConsolePage(ORDERS + "/<int:order_id>", order_detail, permission=perm.ORDERS_READ),
        static_files("sales", "crmkit_sales"),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    return [
        MenuEntry("Pipeline", PIPELINE, perm.DEALS_READ),
        MenuEntry("Quotes", QUOTES, perm.QUOTES_READ),
        MenuEntry("Orders", ORDERS, perm.ORDERS_READ),
    ]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    # named "sales" so it takes the place of the raw "sales" section of the customer profile
    return [Panel("sales", "Orders and quotes", TEMPLATES + "panel.html", customer_sales, permission=perm.ORDERS_READ)]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    return [
        Tile(
            "sales-pipeline",
            "Pipeline value",
            TEMPLATES + "pipeline_tile.html",
            pipeline_value,
            permission=perm.DEALS_READ,
        ),
        Tile("sales-today", "Today", TEMPLATES + "today_tile.html", today, permission=perm.AGENDA_READ),
    ]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_sales", "crmkit_sales")]  # crmkit_sales/locale/vi/LC_MESSAGES/crmkit_sales.po
