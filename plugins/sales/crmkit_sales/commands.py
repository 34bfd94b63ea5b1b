"""``crmkit sales …``: thin commands over ``crm.sales`` (no SQL, no business rule here).

Amounts are typed in major units of the document's currency (``95000`` đồng, ``19.99`` dollars);
times without a zone are in the business's time zone; dates are ``YYYY-MM-DD`` or ``DD/MM/YYYY``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import click

from crmkit.cli.context import pass_crm
from crmkit.cli.importing import import_options, run_import
from crmkit.cli.output import N_, Percent, current_translator, emit, emit_object
from crmkit.cli.params import amount_minor
from crmkit.errors import ValidationError
from crmkit.money import Money

DATE = click.DateTime(formats=["%Y-%m-%d", "%d/%m/%Y"])


# --- parsing and display helpers ---------------------------------------------------------------------


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def _moment(crm: Any, text: str, field: str) -> datetime:
    """``2026-03-02 09:00`` (business time zone) or an ISO time with an offset, as an aware datetime."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"not a time: {text!r} (use YYYY-MM-DD HH:MM)", field=field) from None
    return value if value.tzinfo else value.replace(tzinfo=crm.sales.tasks.timezone)


def _lines(specs: Sequence[str], currency: str) -> list[dict[str, Any]]:
    """``SKU:QTY[:DISCOUNT[:VAT]]`` → line input; a discount ending in % is a percentage, else an amount."""
    from crmkit_sales.pricing import line_field  # errors name lines from 1, as the service does

    lines = []
    for n, spec in enumerate(specs, 1):
        parts = spec.split(":")
        if len(parts) < 2 or len(parts) > 4 or not parts[0]:
            raise ValidationError(f"{spec!r}: use SKU:QTY[:DISCOUNT[:VAT]]", field=line_field(n, "sku"))
        line: dict[str, Any] = {"sku": parts[0], "quantity": parts[1]}
        if len(parts) > 2 and parts[2]:
            discount = parts[2]
            if discount.endswith("%"):
                line["discount_percent"] = discount[:-1]
            else:
                line["discount_minor"] = amount_minor(discount, currency, line_field(n, "discount"))
        if len(parts) > 3 and parts[3]:
            line["tax_rate"] = parts[3]
        lines.append(line)
    return lines


def _money(currency: str, minor: int | None) -> Money | None:
    """An amount for the output to show (``1.234.567 ₫`` in Vietnamese tables, ``Money.format()`` in JSON)."""
    return None if minor is None else Money(currency, minor)


def _rows(items: Iterable[Any], shape: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    return [shape(item) for item in items]


PRODUCT_COLUMNS = [
    N_("id"),
    N_("sku"),
    N_("name"),
    N_("kind"),
    N_("unit"),
    N_("category"),
    N_("price"),
    N_("cost"),
    N_("vat"),
    N_("active"),
]


def _product(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "sku": p.sku,
        "name": p.name,
        "kind": p.kind,
        "unit": p.unit,
        "category": p.category,
        "price": _money(p.currency, p.price_minor),
        "cost": _money(p.currency, p.cost_minor),
        "vat": Percent(p.tax_rate),
        "active": p.active,
    }


def _local(crm: Any, moment: datetime) -> datetime:
    """A time in the business's time zone (JSON ``2026-03-02T09:00:00+07:00``; a table names the zone)."""
    return moment.astimezone(crm.sales.orders.timezone)


def _deal(crm: Any, d: Any) -> dict[str, Any]:
    return {
        **attrs.asdict(d),
        "amount": _money(d.currency, d.amount_minor),
        "opened_at": _local(crm, d.opened_at),
        "closed_at": _local(crm, d.closed_at) if d.closed_at else None,
    }


def _move(crm: Any, change: Any) -> dict[str, Any]:
    return {**attrs.asdict(change), "changed_at": _local(crm, change.changed_at)}


def _line(currency: str, line: Any) -> dict[str, Any]:
    return {
        "#": line.position,
        "sku": line.sku,
        "name": line.name,
        "quantity": line.quantity,
        "unit": line.unit,
        "unit_price": _money(currency, line.unit_price_minor),
        "discount": _money(currency, line.discount_minor),
        "vat": Percent(line.tax_rate),
        "amount": _money(currency, line.net_minor),
        "total": _money(currency, line.total_minor),
    }


def _totals(doc: Any) -> dict[str, Any]:
    return {
        "subtotal": _money(doc.currency, doc.subtotal_minor),
        "discount": _money(doc.currency, doc.discount_minor),
        "tax": _money(doc.currency, doc.tax_minor),
        "total": _money(doc.currency, doc.total_minor),
    }


def _quote(q: Any) -> dict[str, Any]:
    return {
        "id": q.id,
        "number": q.number,
        "version": q.version,
        "customer_id": q.customer_id,
        "status": q.status,
        "issued_on": q.issued_on,
        "valid_until": q.valid_until,
        **_totals(q),
        "order_id": q.order_id,
    }


def _order(crm: Any, o: Any) -> dict[str, Any]:
    return {
        "id": o.id,
        "number": o.number,
        "customer_id": o.customer_id,
        "status": o.status,
        "placed_at": _local(crm, o.placed_at),
        "owner": o.owner,
        **_totals(o),
        "paid": _money(o.currency, o.paid_minor),
        "refunded": _money(o.currency, o.refunded_minor),
        "outstanding": _money(o.currency, o.outstanding_minor),
        "paid_in_full": o.paid_in_full,
    }


def _show_document(doc: Any, head: dict[str, Any]) -> None:
    emit_object(head)
    emit(_rows(doc.lines, lambda line: _line(doc.currency, line)))


def _write(text: str, output: str | None) -> None:
    if output is None or output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        click.echo(current_translator().gettext("wrote %(file)s") % {"file": output}, err=True)


@click.group("sales")
def sales() -> None:
    """Sales: catalogue, price lists, pipelines and deals, quotes, orders, payments, contracts, agenda, reports."""


@sales.command("lifecycle-on-order")
@click.argument("state", required=False, type=click.Choice(["on", "off"]))
@pass_crm
def lifecycle_on_order(crm: Any, state: str | None) -> None:
    """Show, or turn on or off, whether an order or a won deal makes a lead or prospect a customer."""
    if state is not None:
        crm.sales.set_lifecycle_on_order(state == "on")
    emit_object({"lifecycle_on_order": "on" if crm.sales.lifecycle_on_order() else "off"})


# --- products -------------------------------------------------------------------------------------------


@sales.group()
def products() -> None:
    """Products and services with their list prices."""


@products.command("list")
@click.option("--search", help="Part of the SKU or name (accent-insensitive).")
@click.option("--category")
@click.option("--all", "show_all", is_flag=True, help="Include products no longer sold.")
@pass_crm
def products_list(crm: Any, search: str | None, category: str | None, show_all: bool) -> None:
    """List the catalogue."""
    found = crm.sales.products.list(search=search, category=category, active=None if show_all else True)
    emit(_rows(found, _product), PRODUCT_COLUMNS)


def _product_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--name"),
            click.option("--price", help="List price in major units (95000 đồng, 19.99 USD)."),
            click.option("--currency", help="VND by default (the CRM's currency)."),
            click.option("--unit"),
            click.option("--category"),
            click.option("--cost", help="Unit cost in major units (for margins)."),
            click.option("--vat", help="0%, 5%, 8% or 10%."),
            click.option("--kind", type=click.Choice(["product", "service"])),
            click.option("--description"),
        ]
    ):
        function = option(function)
    return function


def _product_fields(crm: Any, current: Any, **given: Any) -> dict[str, Any]:
    currency = (given["currency"] or (current.currency if current else crm.sales.products.currency)).upper()
    fields = {k: given[k] for k in ("name", "unit", "category", "kind", "description") if given[k] is not None}
    if given["currency"]:
        fields["currency"] = currency
    if given["price"] is not None:
        fields["price_minor"] = amount_minor(given["price"], currency, "price")
    if given["cost"] is not None:
        fields["cost_minor"] = amount_minor(given["cost"], currency, "cost")
    if given["vat"] is not None:
        fields["tax_rate"] = given["vat"]
    return fields


@products.command("add")
@click.option("--sku", required=True)
@_product_options
@pass_crm
def products_add(crm: Any, sku: str, **given: Any) -> None:
    """Add a product or service."""
    fields = _product_fields(crm, None, **given)
    fields.setdefault("currency", crm.sales.products.currency)
    emit_object(_product(crm.sales.products.add(sku=sku, **fields)))


@products.command("update")
@click.argument("product")
@_product_options
@pass_crm
def products_update(crm: Any, product: str, **given: Any) -> None:
    """Change a product (by SKU or id)."""
    current = crm.sales.products.get(product)
    emit_object(_product(crm.sales.products.update(current.id, **_product_fields(crm, current, **given))))


@products.command("show")
@click.argument("product")
@pass_crm
def products_show(crm: Any, product: str) -> None:
    """Show a product (by SKU or id)."""
    emit_object(_product(crm.sales.products.get(product)))


@products.command("deactivate")
@click.argument("product")
@pass_crm
def products_deactivate(crm: Any, product: str) -> None:
    """Stop selling a product (past documents keep it)."""
    emit_object(_product(crm.sales.products.deactivate(product)))


# --- price lists ----------------------------------------------------------------------------------------


@sales.group()
def pricelists() -> None:
    """Price lists per customer group (a tag or a condition), with validity dates."""


def _pricelist(pl: Any) -> dict[str, Any]:
    group = (
        f"tag {pl.group_tag}"
        if pl.group_tag
        else (
            f"{pl.group_condition['field']} {pl.group_condition['op']} {pl.group_condition['value']}"
            if pl.group_condition
            else "everyone"
        )
    )
    return {
        "id": pl.id,
        "name": pl.name,
        "currency": pl.currency,
        "group": group,
        "valid_from": pl.valid_from,
        "valid_until": pl.valid_until,
        "active": pl.active,
        "prices": len(pl.items),
    }


@pricelists.command("list")
@pass_crm
def pricelists_list(crm: Any) -> None:
    """List the price lists."""
    emit(
        _rows(crm.sales.pricelists.list(), _pricelist),
        ["id", "name", "currency", "group", "valid_from", "valid_until", "active"],
    )


def _condition(text: str) -> dict[str, Any]:
    """``lifecycle_stage in distributor,retailer`` / ``total_spend >= 50000000`` as a condition mapping."""
    parts = text.split(None, 2)
    if len(parts) != 3:
        raise ValidationError(
            f"{text!r}: use FIELD OP VALUE, e.g. 'lifecycle_stage = distributor'", field="group_condition"
        )
    field, op, value = parts
    parsed: Any = [v.strip() for v in value.split(",")] if op == "in" else value
    if op != "in" and value.lstrip("-").isdigit():
        parsed = int(value)
    return {"field": field, "op": op, "value": parsed}


@pricelists.command("add")
@click.argument("name")
@click.option("--currency", help="VND by default.")
@click.option("--tag", help="For customers with this tag.")
@click.option(
    "--where", "condition", help="For customers matching FIELD OP VALUE, e.g. 'lifecycle_stage = distributor'."
)
@click.option("--from", "valid_from", type=DATE)
@click.option("--until", "valid_until", type=DATE)
@pass_crm
def pricelists_add(
    crm: Any,
    name: str,
    currency: str | None,
    tag: str | None,
    condition: str | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> None:
    """Create a price list (for everyone unless --tag or --where)."""
    price_list = crm.sales.pricelists.add(
        name=name,
        currency=currency or crm.sales.pricelists.currency,
        group_tag=tag,
        group_condition=_condition(condition) if condition else None,
        valid_from=_day(valid_from),
        valid_until=_day(valid_until),
    )
    emit_object(_pricelist(price_list))


@pricelists.command("show")
@click.argument("price_list")
@pass_crm
def pricelists_show(crm: Any, price_list: str) -> None:
    """Show a price list and its prices."""
    pl = crm.sales.pricelists.get(price_list)
    emit_object(_pricelist(pl))
    emit(
        [
            {"sku": i.sku, "name": i.name, "from_quantity": i.min_quantity, "price": _money(pl.currency, i.price_minor)}
            for i in pl.items
        ],
        ["sku", "name", "from_quantity", "price"],
    )


@pricelists.command("set-price")
@click.argument("price_list")
@click.argument("product")
@click.argument("price")
@click.option("--min-quantity", default="1", show_default=True, help="The price applies from this quantity up.")
@pass_crm
def pricelists_set_price(crm: Any, price_list: str, product: str, price: str, min_quantity: str) -> None:
    """Set a product's price in a price list (major units)."""
    pl = crm.sales.pricelists.get(price_list)
    pl = crm.sales.pricelists.set_price(
        pl.id, product, amount_minor(price, pl.currency, "price"), min_quantity=min_quantity
    )
    emit_object(_pricelist(pl))


@pricelists.command("remove-price")
@click.argument("price_list")
@click.argument("product")
@click.option("--min-quantity", default="1", show_default=True)
@pass_crm
def pricelists_remove_price(crm: Any, price_list: str, product: str, min_quantity: str) -> None:
    """Remove a product's price from a price list."""
    emit_object(_pricelist(crm.sales.pricelists.remove_price(price_list, product, min_quantity=min_quantity)))


@pricelists.command("price")
@click.argument("customer_id", type=int)
@click.argument("product")
@click.option("--currency")
@click.option("--on", "on", type=DATE, help="Date (today by default).")
@click.option("--quantity", default="1", show_default=True)
@pass_crm
def pricelists_price(
    crm: Any, customer_id: int, product: str, currency: str | None, on: datetime | None, quantity: str
) -> None:
    """The unit price a customer gets for a product (the price rule), and where it comes from."""
    price = crm.sales.pricelists.price_for(customer_id, product, currency=currency, on=_day(on), quantity=quantity)
    source = crm.sales.pricelists.get(price.price_list_id).name if price.price_list_id else "list price"
    emit_object(
        {
            "product_id": price.product_id,
            "price": _money(price.currency, price.unit_price_minor),
            "price_minor": price.unit_price_minor,
            "currency": price.currency,
            "source": source,
        }
    )


# --- pipelines and deals -------------------------------------------------------------------------------------


@sales.group()
def pipelines() -> None:
    """Pipelines and their stages."""


STAGE_COLUMNS = [N_("pipeline"), N_("stage_id"), N_("position"), N_("stage"), N_("probability"), N_("outcome")]


def _stages(pipeline: Any) -> list[dict[str, Any]]:
    return [
        {
            "pipeline": pipeline.name,
            "stage_id": s.id,
            "position": s.position,
            "stage": s.name,
            "probability": s.probability,
            "outcome": s.outcome,
        }
        for s in pipeline.stages
    ]


@pipelines.command("list")
@pass_crm
def pipelines_list(crm: Any) -> None:
    """Every pipeline with its stages."""
    emit([row for p in crm.sales.pipelines.list() for row in _stages(p)], STAGE_COLUMNS)


@pipelines.command("show")
@click.argument("pipeline")
@pass_crm
def pipelines_show(crm: Any, pipeline: str) -> None:
    """One pipeline's stages."""
    emit(_stages(crm.sales.pipelines.get(pipeline)))


@pipelines.command("add")
@click.argument("name")
@click.option(
    "--stage", "stages", multiple=True, required=True, help="NAME:PROBABILITY, in order (e.g. 'Báo giá:0.5')."
)
@click.option("--won", default="Won", show_default=True, help="Name of the won stage.")
@click.option("--lost", default="Lost", show_default=True, help="Name of the lost stage.")
@pass_crm
def pipelines_add(crm: Any, name: str, stages: tuple[str, ...], won: str, lost: str) -> None:
    """Create a pipeline: open stages in order, then the won and lost stages."""
    given = []
    for n, spec in enumerate(stages):
        stage_name, _, probability = spec.rpartition(":")
        if not stage_name:
            raise ValidationError({"stages": {n: [f"{spec!r}: use NAME:PROBABILITY"]}})
        given.append({"name": stage_name, "probability": probability})
    given += [
        {"name": won, "probability": "1", "outcome": "won"},
        {"name": lost, "probability": "0", "outcome": "lost"},
    ]
    emit(_stages(crm.sales.pipelines.add(name, given)))


@sales.group()
def deals() -> None:
    """Deals (opportunities) and their stage history."""


DEAL_COLUMNS = [
    N_("id"),
    N_("customer_id"),
    N_("title"),
    N_("pipeline_id"),
    N_("stage_id"),
    N_("status"),
    N_("owner"),
    N_("amount"),
    N_("expected_close"),
    N_("source"),
]


@deals.command("list")
@click.option("--customer", type=int)
@click.option("--owner")
@click.option("--status", type=click.Choice(["open", "won", "lost"]))
@click.option("--pipeline")
@click.option("--limit", default=100, show_default=True)
@pass_crm
def deals_list(
    crm: Any, customer: int | None, owner: str | None, status: str | None, pipeline: str | None, limit: int
) -> None:
    """List deals, newest first."""
    found = crm.sales.deals.list(customer_id=customer, owner=owner, status=status, pipeline=pipeline, limit=limit)
    emit(_rows(found, lambda d: _deal(crm, d)), DEAL_COLUMNS)


@deals.command("add")
@click.argument("customer_id", type=int)
@click.option("--pipeline", required=True)
@click.option("--title", required=True)
@click.option("--amount", default="0", help="Expected value in major units.")
@click.option("--currency")
@click.option("--owner")
@click.option("--close", "expected_close", type=DATE, help="Expected close date.")
@click.option("--source")
@click.option("--stage", help="Starting stage (the first by default).")
@pass_crm
def deals_add(
    crm: Any,
    customer_id: int,
    pipeline: str,
    title: str,
    amount: str,
    currency: str | None,
    owner: str | None,
    expected_close: datetime | None,
    source: str | None,
    stage: str | None,
) -> None:
    """Open a deal."""
    currency = (currency or crm.sales.deals.currency).upper()
    deal = crm.sales.deals.add(
        customer_id=customer_id,
        pipeline=pipeline,
        title=title,
        stage=stage,
        amount_minor=amount_minor(amount, currency, "amount"),
        currency=currency,
        owner=owner,
        expected_close=_day(expected_close),
        source=source,
    )
    emit_object(_deal(crm, deal))


@deals.command("show")
@click.argument("deal_id", type=int)
@pass_crm
def deals_show(crm: Any, deal_id: int) -> None:
    """Show a deal and its stage history."""
    emit_object(_deal(crm, crm.sales.deals.get(deal_id)))
    emit(_rows(crm.sales.deals.history(deal_id), lambda h: _move(crm, h)))


@deals.command("history")
@click.argument("deal_id", type=int)
@pass_crm
def deals_history(crm: Any, deal_id: int) -> None:
    """A deal's moves between stages: who, when, why."""
    emit(_rows(crm.sales.deals.history(deal_id), lambda h: _move(crm, h)))


@deals.command("move")
@click.argument("deal_id", type=int)
@click.argument("stage")
@click.option("--reason")
@pass_crm
def deals_move(crm: Any, deal_id: int, stage: str, reason: str | None) -> None:
    """Move a deal to another stage of its pipeline (by name or id)."""
    emit_object(_deal(crm, crm.sales.deals.move(deal_id, stage, reason=reason)))


@deals.command("win")
@click.argument("deal_id", type=int)
@click.option("--reason")
@pass_crm
def deals_win(crm: Any, deal_id: int, reason: str | None) -> None:
    """Close a deal as won."""
    emit_object(_deal(crm, crm.sales.deals.win(deal_id, reason=reason)))


@deals.command("lose")
@click.argument("deal_id", type=int)
@click.option("--reason", required=True)
@pass_crm
def deals_lose(crm: Any, deal_id: int, reason: str) -> None:
    """Close a deal as lost, with the reason."""
    emit_object(_deal(crm, crm.sales.deals.lose(deal_id, reason=reason)))


# --- quotes -----------------------------------------------------------------------------------------------------


@sales.group()
def quotes() -> None:
    """Quotes: versions, statuses, documents, and orders from accepted quotes."""


QUOTE_COLUMNS = [
    N_("id"),
    N_("number"),
    N_("customer_id"),
    N_("status"),
    N_("issued_on"),
    N_("valid_until"),
    N_("total"),
    N_("order_id"),
]
LINE_HELP = "SKU:QTY[:DISCOUNT[:VAT]] — DISCOUNT '10%' or an amount; VAT '8%' (repeat per line)."


@quotes.command("list")
@click.option("--customer", type=int)
@click.option("--status", type=click.Choice(["draft", "sent", "accepted", "declined", "expired"]))
@click.option("--all-versions", is_flag=True, help="Include superseded versions.")
@pass_crm
def quotes_list(crm: Any, customer: int | None, status: str | None, all_versions: bool) -> None:
    """List quotes, newest first."""
    emit(
        _rows(crm.sales.quotes.list(customer_id=customer, status=status, latest=not all_versions), _quote),
        QUOTE_COLUMNS,
    )


@quotes.command("create")
@click.argument("customer_id", type=int)
@click.option("--line", "line_specs", multiple=True, required=True, help=LINE_HELP)
@click.option("--currency")
@click.option("--valid-days", default=30, show_default=True)
@click.option("--deal", "deal_id", type=int)
@click.option("--price-list", "price_list", help="Use this price list (name or id).")
@click.option("--owner")
@click.option("--notes")
@pass_crm
def quotes_create(
    crm: Any,
    customer_id: int,
    line_specs: tuple[str, ...],
    currency: str | None,
    valid_days: int,
    deal_id: int | None,
    price_list: str | None,
    owner: str | None,
    notes: str | None,
) -> None:
    """Create a draft quote at the customer's prices."""
    currency = (currency or crm.sales.quotes.currency).upper()
    quote = crm.sales.quotes.create(
        customer_id=customer_id,
        lines=_lines(line_specs, currency),
        currency=currency,
        valid_days=valid_days,
        deal_id=deal_id,
        price_list_id=crm.sales.pricelists.get(price_list).id if price_list else None,
        owner=owner,
        notes=notes,
    )
    _show_document(quote, _quote(quote))


@quotes.command("show")
@click.argument("quote_id", type=int)
@pass_crm
def quotes_show(crm: Any, quote_id: int) -> None:
    """Show a quote with its lines."""
    quote = crm.sales.quotes.get(quote_id)
    _show_document(quote, _quote(quote))


@quotes.command("revise")
@click.argument("quote_id", type=int)
@click.option("--line", "line_specs", multiple=True, help=LINE_HELP + " Replaces every line.")
@click.option("--valid-until", type=DATE)
@click.option("--notes")
@pass_crm
def quotes_revise(
    crm: Any, quote_id: int, line_specs: tuple[str, ...], valid_until: datetime | None, notes: str | None
) -> None:
    """Revise a quote (a sent or decided one gets a new version)."""
    current = crm.sales.quotes.get(quote_id)
    changes: dict[str, Any] = {}
    if line_specs:
        changes["lines"] = _lines(line_specs, current.currency)
    if valid_until:
        changes["valid_until"] = valid_until.date()
    if notes is not None:
        changes["notes"] = notes
    quote = crm.sales.quotes.revise(quote_id, **changes)
    _show_document(quote, _quote(quote))


def _quote_action(name: str, help_text: str) -> None:
    @quotes.command(name, help=help_text)
    @click.argument("quote_id", type=int)
    @pass_crm
    def command(crm: Any, quote_id: int) -> None:
        emit_object(_quote(getattr(crm.sales.quotes, name)(quote_id)))


_quote_action("send", "draft → sent.")
_quote_action("accept", "sent → accepted.")
_quote_action("decline", "sent → declined.")
_quote_action("expire", "sent → expired.")


@quotes.command("expire-due")
@pass_crm
def quotes_expire_due(crm: Any) -> None:
    """Expire every sent quote past its validity date."""
    emit_object({"expired": crm.sales.quotes.expire_due()})


@quotes.command("versions")
@click.argument("quote_id", type=int)
@pass_crm
def quotes_versions(crm: Any, quote_id: int) -> None:
    """Every version of a quote."""
    emit(_rows(crm.sales.quotes.versions(quote_id), lambda q: {**_quote(q), "superseded_at": q.superseded_at}))


@quotes.command("order")
@click.argument("quote_id", type=int)
@pass_crm
def quotes_order(crm: Any, quote_id: int) -> None:
    """Turn an accepted quote into an order."""
    emit_object(_order(crm, crm.sales.quotes.place_order(quote_id)))


@quotes.command("render")
@click.argument("quote_id", type=int)
@click.option("-o", "--output", help="File to write (stdout by default).")
@click.option("--print", "printable", is_flag=True, help="Printable A4 layout.")
@pass_crm
def quotes_render(crm: Any, quote_id: int, output: str | None, printable: bool) -> None:
    """Write the quote as an HTML document to send or print."""
    _write(crm.sales.quotes.render_html(quote_id, printable=printable, locale=current_translator().locale), output)


@quotes.command("seller")
@click.option("--name")
@click.option("--address")
@click.option("--tax-code")
@click.option("--phone")
@click.option("--email")
@click.option("--bank-account")
@pass_crm
def quotes_seller(crm: Any, **given: Any) -> None:
    """Show, or set, the business printed on quotes."""
    if any(v is not None for v in given.values()):
        current = crm.sales.seller()
        crm.sales.set_seller({**current, **{k: v for k, v in given.items() if v is not None}})
    emit_object(crm.sales.seller())


# --- orders and payments ---------------------------------------------------------------------------------------


@sales.group()
def orders() -> None:
    """Orders: place, ship, deliver, cancel, refund."""


ORDER_COLUMNS = [
    N_("id"),
    N_("number"),
    N_("customer_id"),
    N_("status"),
    N_("placed_at"),
    N_("owner"),
    N_("total"),
    N_("paid"),
    N_("outstanding"),
]


@orders.command("list")
@click.option("--customer", type=int)
@click.option("--status", type=click.Choice(["placed", "shipped", "delivered", "cancelled", "refunded"]))
@click.option("--owner")
@click.option("--since", type=DATE)
@click.option("--until", type=DATE)
@click.option("--limit", default=100, show_default=True)
@pass_crm
def orders_list(
    crm: Any,
    customer: int | None,
    status: str | None,
    owner: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """List orders, newest first."""
    zone = crm.sales.orders.timezone
    found = crm.sales.orders.list(
        customer_id=customer,
        status=status,
        owner=owner,
        limit=limit,
        since=since.replace(tzinfo=zone) if since else None,
        until=(until + timedelta(days=1)).replace(tzinfo=zone) if until else None,
    )
    emit(_rows(found, lambda o: _order(crm, o)), ORDER_COLUMNS)


@orders.command("place")
@click.argument("customer_id", type=int)
@click.option("--line", "line_specs", multiple=True, required=True, help=LINE_HELP)
@click.option("--currency")
@click.option("--owner")
@click.option("--price-list", "price_list")
@click.option("--ship-name")
@click.option("--ship-phone")
@click.option("--ship-address")
@click.option("--notes")
@click.option(
    "--placed-at",
    help="When it was placed, for an order taken earlier (YYYY-MM-DD HH:MM, business "
    "time zone; not in the future). Default: now.",
)
@click.option(
    "--voucher",
    "vouchers",
    multiple=True,
    metavar="CODE",
    help="A voucher code (e.g. from `crmkit loyalty redeem`) taken off before VAT; repeat for several.",
)
@pass_crm
def orders_place(
    crm: Any,
    customer_id: int,
    line_specs: tuple[str, ...],
    currency: str | None,
    owner: str | None,
    price_list: str | None,
    ship_name: str | None,
    ship_phone: str | None,
    ship_address: str | None,
    notes: str | None,
    placed_at: str | None,
    vouchers: tuple[str, ...],
) -> None:
    """Place an order directly, at the customer's prices (a lead or prospect becomes a customer)."""
    currency = (currency or crm.sales.orders.currency).upper()
    order = crm.sales.orders.place(
        placed_at=_moment(crm, placed_at, "placed_at") if placed_at else None,
        customer_id=customer_id,
        lines=_lines(line_specs, currency),
        currency=currency,
        owner=owner,
        price_list_id=crm.sales.pricelists.get(price_list).id if price_list else None,
        shipping_name=ship_name,
        shipping_phone=ship_phone,
        shipping_address=ship_address,
        notes=notes,
        vouchers=list(vouchers) or None,
    )
    head = _order(crm, order)
    if order.discounts:
        head["vouchers"] = "; ".join(
            f"{d.code} −{_money(order.currency, d.amount_minor)} ({d.label})" for d in order.discounts
        )
    _show_document(order, head)


@orders.command("import")
@import_options("--map 'Mã đơn=reference' --map 'Ngày=placed_at'")
@click.option(
    "--with-hooks",
    is_flag=True,
    help="Treat each order as a sale happening now: loyalty earns, campaigns and webhooks react "
    "(default: history stays quiet; `crmkit loyalty backfill` earns later).",
)
@pass_crm
def orders_import(
    crm: Any,
    file: Path,
    mapping: tuple[tuple[str, str], ...],
    rejects: Path | None,
    batch_size: int,
    file_format: str | None,
    no_bom: bool,
    with_hooks: bool,
) -> None:
    """Import past orders from a CSV or JSON Lines FILE, idempotent by their reference.

    Columns: reference, customer_external_id (or customer_id), placed_at (a local day or time, or
    with an offset), currency, total (or sku/description, quantity, unit_price; or lines), status,
    notes. A re-run skips the references already imported; bad rows go to the reject file with
    their row number, field and reason.
    """
    run_import(
        file,
        lambda progress: crm.sales.orders.import_history(
            file,
            format=file_format,
            mapping=dict(mapping) or None,
            reject_path=rejects,
            batch_size=batch_size,
            progress=progress,
            with_hooks=with_hooks,
            reject_bom=not no_bom,
        ),
    )


@orders.command("show")
@click.argument("order_id", type=int)
@pass_crm
def orders_show(crm: Any, order_id: int) -> None:
    """Show an order with its lines."""
    order = crm.sales.orders.get(order_id)
    _show_document(order, _order(crm, order))


def _order_step(name: str, help_text: str) -> None:
    @orders.command(name, help=help_text)
    @click.argument("order_id", type=int)
    @pass_crm
    def command(crm: Any, order_id: int) -> None:
        emit_object(_order(crm, getattr(crm.sales.orders, name)(order_id)))


_order_step("ship", "Mark an order shipped.")
_order_step("deliver", "Mark an order delivered.")


@orders.command("cancel")
@click.argument("order_id", type=int)
@click.option("--reason")
@pass_crm
def orders_cancel(crm: Any, order_id: int, reason: str | None) -> None:
    """Cancel an order before delivery (nothing paid may be kept)."""
    emit_object(_order(crm, crm.sales.orders.cancel(order_id, reason=reason)))


@orders.command("refund")
@click.argument("order_id", type=int)
@click.argument("amount")
@click.option("--reason")
@pass_crm
def orders_refund(crm: Any, order_id: int, amount: str, reason: str | None) -> None:
    """Refund money paid on an order (major units; partial or full)."""
    currency = crm.sales.orders.get(order_id).currency
    crm.sales.orders.refund(order_id, amount_minor(amount, currency, "amount"), reason=reason)
    emit_object(_order(crm, crm.sales.orders.get(order_id)))


@sales.group()
def payments() -> None:
    """Payments against orders and outstanding balances."""


@payments.command("record")
@click.argument("order_id", type=int)
@click.argument("amount")
@click.option("--method", default="bank_transfer", show_default=True)
@click.option("--reference")
@click.option("--note")
@pass_crm
def payments_record(crm: Any, order_id: int, amount: str, method: str, reference: str | None, note: str | None) -> None:
    """Record a payment (major units); more than the outstanding balance is refused."""
    currency = crm.sales.orders.get(order_id).currency
    crm.sales.payments.record(
        order_id, amount_minor(amount, currency, "amount"), method=method, reference=reference, note=note
    )
    emit_object(_order(crm, crm.sales.orders.get(order_id)))


@payments.command("list")
@click.option("--order", "order_id", type=int)
@click.option("--customer", type=int)
@pass_crm
def payments_list(crm: Any, order_id: int | None, customer: int | None) -> None:
    """List payments, newest first."""
    found = crm.sales.payments.list(order_id=order_id, customer_id=customer)
    emit(
        _rows(found, lambda p: {**attrs.asdict(p), "amount": _money(p.currency, p.amount_minor)}),
        ["id", "order_id", "paid_at", "amount", "method", "reference", "recorded_by"],
    )


@payments.command("outstanding")
@click.argument("customer_id", type=int)
@pass_crm
def payments_outstanding(crm: Any, customer_id: int) -> None:
    """What a customer still owes, per currency."""
    owed = crm.sales.payments.outstanding(customer_id)
    emit(
        [
            {"currency": cur, "outstanding": _money(cur, amount), "outstanding_minor": amount}
            for cur, amount in owed.items()
        ],
        ["currency", "outstanding", "outstanding_minor"],
    )


# --- contracts ----------------------------------------------------------------------------------------------------


@sales.group()
def contracts() -> None:
    """Contracts and renewals."""


def _contract(c: Any) -> dict[str, Any]:
    return {**attrs.asdict(c), "value": _money(c.currency, c.value_minor)}


CONTRACT_COLUMNS = [
    N_("id"),
    N_("number"),
    N_("customer_id"),
    N_("title"),
    N_("start_date"),
    N_("end_date"),
    N_("renewal_date"),
    N_("value"),
    N_("status"),
]


@contracts.command("list")
@click.option("--customer", type=int)
@click.option("--status", type=click.Choice(["draft", "active", "expired", "terminated", "renewed"]))
@pass_crm
def contracts_list(crm: Any, customer: int | None, status: str | None) -> None:
    """List contracts."""
    emit(_rows(crm.sales.contracts.list(customer_id=customer, status=status), _contract), CONTRACT_COLUMNS)


@contracts.command("add")
@click.argument("customer_id", type=int)
@click.option("--number", required=True)
@click.option("--title", required=True)
@click.option("--start", type=DATE, required=True)
@click.option("--end", type=DATE)
@click.option("--renewal", type=DATE, help="Renewal date (the end date is used when empty).")
@click.option("--value", required=True, help="Major units.")
@click.option("--currency")
@click.option("--order", "order_id", type=int)
@click.option("--status", default="active", show_default=True)
@click.option("--owner")
@click.option("--notes")
@pass_crm
def contracts_add(
    crm: Any,
    customer_id: int,
    number: str,
    title: str,
    start: datetime,
    end: datetime | None,
    renewal: datetime | None,
    value: str,
    currency: str | None,
    order_id: int | None,
    status: str,
    owner: str | None,
    notes: str | None,
) -> None:
    """Record a contract."""
    currency = (currency or crm.sales.contracts.currency).upper()
    contract = crm.sales.contracts.add(
        customer_id=customer_id,
        number=number,
        title=title,
        start_date=start.date(),
        end_date=_day(end),
        renewal_date=_day(renewal),
        value_minor=amount_minor(value, currency, "value"),
        currency=currency,
        order_id=order_id,
        status=status,
        owner=owner,
        notes=notes,
    )
    emit_object(_contract(contract))


@contracts.command("renewals")
@click.option("--days", default=30, show_default=True)
@pass_crm
def contracts_renewals(crm: Any, days: int) -> None:
    """Active contracts up for renewal in the next N days."""
    emit(_rows(crm.sales.contracts.up_for_renewal(days), _contract), CONTRACT_COLUMNS)


@contracts.command("set-status")
@click.argument("contract_id", type=int)
@click.argument("status", type=click.Choice(["draft", "active", "expired", "terminated", "renewed"]))
@pass_crm
def contracts_set_status(crm: Any, contract_id: int, status: str) -> None:
    """Change a contract's status."""
    emit_object(_contract(crm.sales.contracts.update(contract_id, status=status)))


@contracts.command("expire-due")
@pass_crm
def contracts_expire_due(crm: Any) -> None:
    """Mark active contracts past their end date expired."""
    emit_object({"expired": crm.sales.contracts.expire_due()})


# --- appointments and tasks ---------------------------------------------------------------------------------------


@sales.group()
def appointments() -> None:
    """Appointments, agendas and iCalendar export."""


APPOINTMENT_COLUMNS = [
    N_("id"),
    N_("customer_id"),
    N_("employee"),
    N_("subject"),
    N_("starts"),
    N_("ends"),
    N_("channel"),
    N_("place"),
    N_("status"),
    N_("outcome"),
]
TASK_COLUMNS = [N_("id"), N_("customer_id"), N_("employee"), N_("title"), N_("due"), N_("priority"), N_("done")]


def _appointment(crm: Any, a: Any) -> dict[str, Any]:
    zone = crm.sales.appointments.timezone
    return {
        "id": a.id,
        "customer_id": a.customer_id,
        "employee": a.employee,
        "subject": a.subject,
        "starts": a.starts_at.astimezone(zone),
        "ends": a.ends_at.astimezone(zone),
        "channel": a.channel,
        "place": a.place,
        "status": a.status,
        "outcome": a.outcome,
    }


def _task(crm: Any, t: Any) -> dict[str, Any]:
    zone = crm.sales.tasks.timezone
    return {
        "id": t.id,
        "customer_id": t.customer_id,
        "employee": t.employee,
        "title": t.title,
        "due": t.due_at.astimezone(zone),
        "priority": t.priority,
        "done": t.done_at.astimezone(zone) if t.done_at else None,
    }


@appointments.command("add")
@click.argument("customer_id", type=int)
@click.option("--employee", help="A user (yourself by default).")
@click.option("--subject", required=True)
@click.option("--at", "starts", required=True, help="Start, e.g. '2026-03-02 09:00' (business time zone).")
@click.option("--minutes", default=60, show_default=True)
@click.option("--channel", default="in_person", show_default=True)
@click.option("--place")
@click.option("--notes")
@pass_crm
def appointments_add(
    crm: Any,
    customer_id: int,
    employee: str | None,
    subject: str,
    starts: str,
    minutes: int,
    channel: str,
    place: str | None,
    notes: str | None,
) -> None:
    """Schedule an appointment."""
    appointment = crm.sales.appointments.add(
        customer_id=customer_id,
        employee=employee,
        subject=subject,
        starts_at=_moment(crm, starts, "starts_at"),
        duration_minutes=minutes,
        channel=channel,
        place=place,
        notes=notes,
    )
    emit_object(_appointment(crm, appointment))


@appointments.command("list")
@click.option("--customer", type=int)
@click.option("--employee")
@pass_crm
def appointments_list(crm: Any, customer: int | None, employee: str | None) -> None:
    """List appointments in time order."""
    emit(
        _rows(crm.sales.appointments.list(customer_id=customer, employee=employee), lambda a: _appointment(crm, a)),
        APPOINTMENT_COLUMNS,
    )


@appointments.command("agenda")
@click.argument("employee", required=False)
@click.option("--date", "on", type=DATE, help="Day (today by default).")
@click.option("--week", is_flag=True, help="The whole week (Monday–Sunday) of that day.")
@pass_crm
def appointments_agenda(crm: Any, employee: str | None, on: datetime | None, week: bool) -> None:
    """An employee's (yours by default) appointments and open tasks for a day or a week."""
    agenda = crm.sales.appointments.agenda(employee, on=_day(on), span="week" if week else "day")
    t = current_translator()
    emit(
        _rows(agenda.appointments, lambda a: _appointment(crm, a)), APPOINTMENT_COLUMNS, title=t.gettext("Appointments")
    )
    emit(_rows(agenda.tasks, lambda task: _task(crm, task)), TASK_COLUMNS, title=t.gettext("Tasks due"))


@appointments.command("ics")
@click.argument("employee", required=False)
@click.option("--date", "on", type=DATE, help="A day of the week to export (today by default).")
@click.option("--day", "one_day", is_flag=True, help="Only that day, not its week.")
@click.option("-o", "--output", help="File to write (stdout by default).")
@pass_crm
def appointments_ics(crm: Any, employee: str | None, on: datetime | None, one_day: bool, output: str | None) -> None:
    """Export an employee's (your) agenda as iCalendar (.ics)."""
    _write(crm.sales.appointments.ics(employee, on=_day(on), span="day" if one_day else "week"), output)


@appointments.command("done")
@click.argument("appointment_id", type=int)
@click.option("--outcome", required=True)
@pass_crm
def appointments_done(crm: Any, appointment_id: int, outcome: str) -> None:
    """Record that an appointment took place, and its outcome."""
    emit_object(_appointment(crm, crm.sales.appointments.record_outcome(appointment_id, outcome)))


@appointments.command("cancel")
@click.argument("appointment_id", type=int)
@pass_crm
def appointments_cancel(crm: Any, appointment_id: int) -> None:
    """Cancel an appointment."""
    emit_object(_appointment(crm, crm.sales.appointments.cancel(appointment_id)))


@sales.group()
def tasks() -> None:
    """Follow-up tasks."""


@tasks.command("add")
@click.argument("customer_id", type=int)
@click.option("--employee", help="A user (yourself by default).")
@click.option("--title", required=True)
@click.option("--due", required=True, help="Due time, e.g. '2026-03-02 17:00' (business time zone).")
@click.option("--priority", type=click.Choice(["low", "normal", "high"]), default="normal", show_default=True)
@click.option("--notes")
@pass_crm
def tasks_add(
    crm: Any, customer_id: int, employee: str | None, title: str, due: str, priority: str, notes: str | None
) -> None:
    """Create a task."""
    task = crm.sales.tasks.add(
        customer_id=customer_id,
        employee=employee,
        title=title,
        due_at=_moment(crm, due, "due_at"),
        priority=priority,
        notes=notes,
    )
    emit_object(_task(crm, task))


@tasks.command("list")
@click.option("--employee")
@click.option("--customer", type=int)
@click.option("--all", "show_all", is_flag=True, help="Include done tasks.")
@pass_crm
def tasks_list(crm: Any, employee: str | None, customer: int | None, show_all: bool) -> None:
    """List tasks by due time."""
    emit(
        _rows(
            crm.sales.tasks.list(employee=employee, customer_id=customer, open_only=not show_all),
            lambda t: _task(crm, t),
        ),
        TASK_COLUMNS,
    )


@tasks.command("overdue")
@click.option("--employee")
@pass_crm
def tasks_overdue(crm: Any, employee: str | None) -> None:
    """Open tasks past their due time."""
    emit(_rows(crm.sales.tasks.overdue(employee=employee), lambda t: _task(crm, t)), TASK_COLUMNS)


@tasks.command("done")
@click.argument("task_id", type=int)
@click.option("--outcome")
@pass_crm
def tasks_done(crm: Any, task_id: int, outcome: str | None) -> None:
    """Mark a task done."""
    emit_object(_task(crm, crm.sales.tasks.complete(task_id, outcome=outcome)))


# --- labels and reports -----------------------------------------------------------------------------------------------


@sales.command("labels")
@click.argument("customer_ids", nargs=-1, type=int)
@click.option("--tag", help="Every customer with this tag.")
@click.option("--all", "everyone", is_flag=True, help="Every customer with a postal address.")
@click.option("--layout", default="3x8", show_default=True, help="Sheet layout: 3x8 or 3x7 labels on A4.")
@click.option("-o", "--output", help="HTML file to write (stdout by default).")
@pass_crm
def labels(
    crm: Any, customer_ids: tuple[int, ...], tag: str | None, everyone: bool, layout: str, output: str | None
) -> None:
    """Printable address labels (HTML, A4) for customer ids, a tag, or everyone."""
    t = current_translator()
    sheet = crm.sales.labels.render(
        customer_ids=list(customer_ids) or None, tag=tag, everyone=everyone, layout=layout, locale=t.locale
    )
    _write(sheet.html, output)
    said = t.ngettext("%(count)s label", "%(count)s labels", sheet.count) % {"count": t.format_number(sheet.count)}
    if sheet.skipped:
        said += "; " + t.gettext("no postal address you may see: %(ids)s") % {"ids": ", ".join(map(str, sheet.skipped))}
    click.echo(said, err=True)


@sales.group()
def report() -> None:
    """Sales reports (use crmkit --format table|json|csv)."""


def _period(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--customer", "customer_id", type=int, help="Only this customer's deals or orders.")(
        function
    )
    function = click.option("--until", type=DATE, help="Last day (inclusive).")(function)
    return click.option("--since", type=DATE, help="First day.")(function)


def _emit_report(rows: Any, shape: Callable[[Any], dict[str, Any]], columns: list[str] | None = None) -> None:
    """Print a report's rows, and on stderr whether they cover only the customers in the user's scope."""
    emit(_rows(rows, shape), columns)
    if getattr(rows, "scoped", False):
        said = current_translator().gettext(
            "scoped: only the customers within %(user)s's sales.reports.read scope are counted"
        )
        click.echo(said % {"user": rows.user}, err=True)


@report.command("funnel")
@click.argument("pipeline")
@_period
@pass_crm
def report_funnel(
    crm: Any, pipeline: str, since: datetime | None, until: datetime | None, customer_id: int | None
) -> None:
    """Conversion by stage (deals opened in the period)."""
    _emit_report(
        crm.sales.reports.funnel(pipeline, since=_day(since), until=_day(until), customer_id=customer_id), attrs.asdict
    )


@report.command("forecast")
@click.option("--pipeline")
@_period
@pass_crm
def report_forecast(
    crm: Any, pipeline: str | None, since: datetime | None, until: datetime | None, customer_id: int | None
) -> None:
    """Weighted pipeline by month of expected close (amount × stage probability)."""
    rows = crm.sales.reports.forecast(pipeline=pipeline, since=_day(since), until=_day(until), customer_id=customer_id)
    _emit_report(
        rows,
        lambda r: {
            **attrs.asdict(r),
            "amount": _money(r.currency, r.amount_minor),
            "weighted": _money(r.currency, r.weighted_minor),
        },
        ["month", "currency", "deals", "amount", "weighted", "amount_minor", "weighted_minor"],
    )


@report.command("performance")
@_period
@pass_crm
def report_performance(crm: Any, since: datetime | None, until: datetime | None, customer_id: int | None) -> None:
    """Win rate and revenue per employee."""
    rows = crm.sales.reports.performance(since=_day(since), until=_day(until), customer_id=customer_id)
    _emit_report(
        rows,
        lambda r: {
            **attrs.asdict(r),
            "revenue": _money(r.currency, r.revenue_minor),
            "won_amount": _money(r.currency, r.won_amount_minor),
        },
        ["owner", "won", "lost", "win_rate", "won_amount", "orders", "revenue", "currency", "revenue_minor"],
    )


@report.command("top-products")
@_period
@click.option("--limit", default=10, show_default=True)
@click.option("--per-month", is_flag=True, help="The top products of each month.")
@pass_crm
def report_top_products(
    crm: Any, since: datetime | None, until: datetime | None, customer_id: int | None, limit: int, per_month: bool
) -> None:
    """Best-selling products by revenue (before VAT)."""
    rows = crm.sales.reports.top_products(
        since=_day(since), until=_day(until), limit=limit, per_month=per_month, customer_id=customer_id
    )
    _emit_report(
        rows,
        lambda r: {**attrs.asdict(r), "revenue": _money(r.currency, r.revenue_minor)},
        ["period", "rank", "sku", "name", "quantity", "orders", "revenue", "revenue_minor"],
    )


@report.command("days-to-close")
@click.option("--pipeline")
@click.option("--per-owner", is_flag=True)
@_period
@pass_crm
def report_days_to_close(
    crm: Any,
    pipeline: str | None,
    per_owner: bool,
    since: datetime | None,
    until: datetime | None,
    customer_id: int | None,
) -> None:
    """Average days from opening to winning a deal."""
    rows = crm.sales.reports.days_to_close(
        pipeline=pipeline, per_owner=per_owner, since=_day(since), until=_day(until), customer_id=customer_id
    )
    _emit_report(rows, attrs.asdict, ["pipeline", "owner", "deals", "average_days", "min_days", "max_days"])


@report.command("revenue")
@_period
@pass_crm
def report_revenue(crm: Any, since: datetime | None, until: datetime | None, customer_id: int | None) -> None:
    """Orders and revenue (net of refunds) per month."""
    rows = crm.sales.reports.revenue_by_month(since=_day(since), until=_day(until), customer_id=customer_id)
    _emit_report(
        rows,
        lambda r: {**attrs.asdict(r), "revenue": _money(r.currency, r.revenue_minor)},
        ["month", "currency", "orders", "revenue", "revenue_minor"],
    )
