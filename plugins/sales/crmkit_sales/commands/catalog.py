"""Products and price lists: ``crmkit sales products|pricelists …``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from crmkit.errors import ValidationError
from crmkit.plugin_api import amount_minor, emit, emit_object, pass_crm
from crmkit_sales.commands.display import DATE, PRODUCT_COLUMNS, _day, _money, _product, _rows
from crmkit_sales.commands.group import sales

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
