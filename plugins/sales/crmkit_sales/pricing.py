"""Prices and line amounts: the price rule and the rounding rule, each in one place.

**Price rule** (:func:`resolve_prices`). For a customer, a date, a currency and a quantity, the
unit price of a product is the *lowest* price among the price lists that

1. are active and in the document's currency (prices are never converted between currencies),
2. are valid on the date (``valid_from`` ≤ date ≤ ``valid_until``, both inclusive, open when empty),
3. apply to the customer: no group (everyone), the customer has the list's tag, or the list's
   condition holds for the customer (e.g. ``lifecycle_stage = distributor``, ``total_spend >= …``),
4. price the product from a ``min_quantity`` at or below the line's quantity (quantity breaks);

when a document names a price list, only that list is considered (it must be in the document's
currency and apply to the customer). Ties go to the price list with the lowest id (the price is the
same; the line records which list gave it). With no such price, the product's list price applies if
it is in the document's currency; otherwise the line is refused (no price in that currency).

**Rounding rule** (:func:`price_line`). Every amount is rounded to the currency's minor unit (VND:
whole đồng, it has none below; USD: cents) *per line*, half-to-even (banker's rounding, the rule of
:meth:`crmkit.money.Money.times`), at three points: gross = quantity × unit price; a percentage
discount; tax = rate × (gross − discount). Document totals are exact sums of their lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.money import MAX_MINOR, Money
from crmkit.plugin_api import core_tables as core
from crmkit_sales import models as m
from crmkit_sales.objects import Line, Price, Totals

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: VAT rates a line may carry in Vietnam: 0% (exports), 5%, 8% (the reduced rate), 10% (standard).
VAT_RATES = (Decimal("0"), Decimal("0.05"), Decimal("0.08"), Decimal("0.1"))
#: The largest quantity a line may have (stored ×1000 in a 64-bit column).
MAX_QUANTITY = Decimal(10**9)

#: Customer columns a price list condition may test, besides the segment fields plugins contribute.
CUSTOMER_FIELDS = ("kind", "lifecycle_stage", "owner", "country", "city", "province", "gender")
CONDITION_OPS = ("=", "!=", "<", "<=", ">", ">=", "in")


# --- customer groups -------------------------------------------------------------------------------


def condition_sql(crm: CRM, condition: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """The SQL test (over ``customers``) of a price list condition ``{"field", "op", "value"}``.

    ``field`` is a customer column (:data:`CUSTOMER_FIELDS`) or a segment field contributed by an
    enabled plugin (``crmkit_segment_fields``, e.g. ``total_spend``); raises ``ValidationError``.
    """
    field, op, value = condition.get("field"), condition.get("op", "="), condition.get("value")
    if field in CUSTOMER_FIELDS:
        column: Any = core.customers.c[field]
    else:
        segment_fields = crm.hooks.segment_fields()
        if field not in segment_fields:
            known = ", ".join([*CUSTOMER_FIELDS, *sorted(segment_fields)])
            raise ValidationError(f"unknown field {field!r} (one of: {known})", field="group_condition")
        column = segment_fields[field]
    if op not in CONDITION_OPS:
        raise ValidationError(f"unknown operator {op!r} (one of: {' '.join(CONDITION_OPS)})", field="group_condition")
    if op == "in":
        if not isinstance(value, list) or not value:
            raise ValidationError("'in' takes a non-empty list of values", field="group_condition")
        return column.in_(value)
    if isinstance(value, (list, dict)) or value is None:
        raise ValidationError(f"{op!r} takes one value", field="group_condition")
    return {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }[op](value)


def _applies(conn: sa.Connection, crm: CRM, customer_id: int, condition: Mapping[str, Any]) -> bool:
    c = core.customers.c
    query = (
        sa.select(sa.literal(1)).select_from(core.customers).where(c.id == customer_id, condition_sql(crm, condition))
    )
    return conn.execute(query).first() is not None


# --- the price rule --------------------------------------------------------------------------------------


def _offers() -> sa.Select[Any]:
    """Prices of the products for the customer in price lists that are active, in the currency, valid on the date,
    and for everyone or a tag the customer has (conditions are checked apart). Built once: order placement is hot."""
    lists, items, tags = m.price_lists.c, m.price_list_items.c, core.tags.c
    on = sa.bindparam("on", type_=sa.Date())
    return (
        sa.select(items.product_id, items.min_quantity, items.price_minor, lists.id, lists.group_condition)
        .join(m.price_lists, lists.id == items.price_list_id)
        .where(
            items.product_id.in_(sa.bindparam("product_ids", expanding=True)),
            lists.active.is_(True),
            lists.currency == sa.bindparam("currency"),
            sa.or_(lists.valid_from.is_(None), lists.valid_from <= on),
            sa.or_(lists.valid_until.is_(None), lists.valid_until >= on),
            sa.or_(
                lists.group_tag.is_(None),
                sa.exists().where(tags.customer_id == sa.bindparam("customer_id"), tags.tag == lists.group_tag),
            ),
        )
    )


_OFFERS = _offers()
_OFFERS_FROM_ONE = _OFFERS.where(m.price_lists.c.id == sa.bindparam("price_list_id"))


def resolve_prices(
    conn: sa.Connection,
    crm: CRM,
    *,
    customer_id: int,
    currency: str,
    on: date,
    wanted: Sequence[tuple[Mapping[str, Any], Decimal]],
    price_list_id: int | None = None,
) -> list[Price | None]:
    """The price rule (see the module docstring): one :class:`Price` per ``(product row, quantity)``.

    ``None`` means the product has no price in ``currency`` for this customer; raises
    ``ValidationError`` when the named price list cannot be used. Two queries, plus one per
    applicable price list with a condition.
    """
    params = {
        "customer_id": customer_id,
        "currency": currency,
        "on": on,
        "product_ids": sorted({row["id"] for row, _ in wanted}),
    }
    query = _OFFERS
    if price_list_id is not None:
        _check_named_list(conn, crm, price_list_id, customer_id=customer_id, currency=currency, on=on)
        query, params["price_list_id"] = _OFFERS_FROM_ONE, price_list_id
    candidates: dict[int, list[tuple[int, int, Decimal]]] = {}
    verdicts: dict[int, bool] = {}
    for product_id, min_quantity, price_minor, list_id, condition in conn.execute(query, params):
        if condition is not None:
            if list_id not in verdicts:
                verdicts[list_id] = _applies(conn, crm, customer_id, condition)
            if not verdicts[list_id]:
                continue
        candidates.setdefault(product_id, []).append((price_minor, list_id, min_quantity))
    result: list[Price | None] = []
    for row, quantity in wanted:
        offers = [(price, list_id) for price, list_id, least in candidates.get(row["id"], ()) if least <= quantity]
        if offers:
            price, list_id = min(offers)
            result.append(Price(row["id"], currency, price, list_id))
        elif row["currency"] == currency:
            result.append(Price(row["id"], currency, row["price_minor"], None))
        else:
            result.append(None)
    return result


def _check_named_list(
    conn: sa.Connection, crm: CRM, price_list_id: int, *, customer_id: int, currency: str, on: date
) -> None:
    row = conn.execute(sa.select(m.price_lists).where(m.price_lists.c.id == price_list_id)).mappings().first()
    if row is None:
        raise ValidationError(f"no price list {price_list_id}", field="price_list_id")
    if row["currency"] != currency:
        raise ValidationError(
            f"price list {row['name']!r} is in {row['currency']}, the document is in {currency}", field="currency"
        )
    if (
        not row["active"]
        or (row["valid_from"] and row["valid_from"] > on)
        or (row["valid_until"] and row["valid_until"] < on)
    ):
        raise ValidationError(f"price list {row['name']!r} is not valid on {on.isoformat()}", field="price_list_id")
    if row["group_tag"] is not None:
        has_tag = conn.execute(
            sa.select(core.tags.c.tag).where(
                core.tags.c.customer_id == customer_id, core.tags.c.tag == row["group_tag"]
            )
        ).first()
        if has_tag is None:
            raise ValidationError(
                f"price list {row['name']!r} is for customers tagged {row['group_tag']!r}", field="price_list_id"
            )
    if row["group_condition"] is not None and not _applies(conn, crm, customer_id, row["group_condition"]):
        raise ValidationError(
            f"price list {row['name']!r} does not apply to customer {customer_id}", field="price_list_id"
        )


def line_field(position: int, field: str) -> str:
    """How an error names a field of a document's line, counting lines from 1 like import rows: ``lines.1.quantity``
    (``lines.1`` for the line as a whole)."""
    return f"lines.{position}" if field == "_schema" else f"lines.{position}.{field}"


# --- line amounts --------------------------------------------------------------------------------------


def price_line(
    *,
    position: int,
    product: Mapping[str, Any],
    quantity: Decimal,
    price: Price,
    discount_percent: Decimal | None = None,
    discount_minor: int | None = None,
    tax_rate: Decimal | None = None,
) -> Line:
    """One line's amounts under the rounding rule (module docstring); ``ValidationError`` for a discount above gross."""
    currency = price.currency
    rate = product["tax_rate"] if tax_rate is None else tax_rate
    gross = Money(currency, price.unit_price_minor).times(quantity).minor
    if discount_percent is not None:
        discount = Money(currency, gross).times(discount_percent / 100).minor
    else:
        discount = discount_minor or 0
    if discount > gross:
        raise ValidationError(
            f"discount {Money(currency, discount)} is more than the line amount {Money(currency, gross)}",
            field=line_field(position, "discount_minor"),
        )
    net = gross - discount
    tax = Money(currency, net).times(rate).minor
    return Line(
        position=position,
        product_id=product["id"],
        sku=product["sku"],
        name=product["name"],
        unit=product["unit"],
        category=product["category"],
        quantity=quantity,
        unit_price_minor=price.unit_price_minor,
        price_list_id=price.price_list_id,
        discount_percent=discount_percent,
        discount_minor=discount,
        tax_rate=rate,
        net_minor=net,
        tax_minor=tax,
        total_minor=net + tax,
        cost_minor=product["cost_minor"] if product["currency"] == currency else None,
    )


def totals(lines: Sequence[Line]) -> Totals:
    """A document's totals: exact sums of its lines."""
    return Totals(
        subtotal_minor=sum(line.gross_minor for line in lines),
        discount_minor=sum(line.discount_minor for line in lines),
        tax_minor=sum(line.tax_minor for line in lines),
        total_minor=sum(line.total_minor for line in lines),
    )


def tax_summary(lines: Sequence[Line]) -> list[tuple[Decimal, int, int]]:
    """``(rate, taxable amount, tax)`` per VAT rate, lowest rate first (the VAT box of an invoice)."""
    summary: dict[Decimal, list[int]] = {}
    for line in lines:
        box = summary.setdefault(line.tax_rate, [0, 0])
        box[0] += line.net_minor
        box[1] += line.tax_minor
    return [(rate, net, tax) for rate, (net, tax) in sorted(summary.items())]


def margin(lines: Sequence[Line], currency: str) -> int | None:
    """Net amount (before tax) minus cost (quantity × unit cost, rounded per line), when every line's cost is known."""
    total = 0
    for line in lines:
        if line.cost_minor is None:
            return None
        total += line.net_minor - Money(currency, line.cost_minor).times(line.quantity).minor
    return total


# --- building lines from input ----------------------------------------------------------------------------

_PRODUCTS = sa.select(m.products).where(
    sa.or_(
        m.products.c.id.in_(sa.bindparam("ids", expanding=True)),
        m.products.c.sku.in_(sa.bindparam("skus", expanding=True)),
    )
)


def build_lines(
    conn: sa.Connection,
    crm: CRM,
    *,
    customer_id: int,
    currency: str,
    on: date,
    items: Sequence[Mapping[str, Any]],
    price_list_id: int | None = None,
) -> list[Line]:
    """Priced lines from validated line input (``product_id`` or ``sku``, ``quantity``, discount, tax rate).

    Raises ``ValidationError`` naming the line (``lines.<n>.<field>``, counting from 1) for an unknown or
    inactive product, or one without a price in ``currency``. Two or three queries in all.
    """
    ids = sorted({item["product_id"] for item in items if "product_id" in item})
    skus = sorted({item["sku"] for item in items if "sku" in item})
    rows = conn.execute(_PRODUCTS, {"ids": ids, "skus": skus}).mappings().all()
    by_id = {row["id"]: row for row in rows}
    by_sku = {row["sku"]: row for row in rows}
    errors: dict[str, list[str]] = {}
    chosen: list[tuple[Mapping[str, Any], Decimal]] = []
    for n, item in enumerate(items, 1):
        key, ref = ("product_id", item["product_id"]) if "product_id" in item else ("sku", item["sku"])
        row = by_id.get(ref) if key == "product_id" else by_sku.get(ref)
        if row is None:
            errors[line_field(n, key)] = [f"unknown product {ref!r}"]
        elif not row["active"]:
            errors[line_field(n, key)] = [f"product {row['sku']} ({row['name']}) is no longer sold"]
        else:
            chosen.append((row, item["quantity"]))
    if errors:
        raise ValidationError(errors)
    prices = resolve_prices(
        conn, crm, customer_id=customer_id, currency=currency, on=on, wanted=chosen, price_list_id=price_list_id
    )
    for n, ((row, _), price) in enumerate(zip(chosen, prices, strict=True), 1):
        if price is None:
            errors[line_field(n, "currency")] = [
                f"{row['sku']} has no price in {currency}: its list price is in {row['currency']} and no "
                f"{currency} price list applies to this customer"
            ]
    if errors:
        raise ValidationError(errors)
    lines = [
        price_line(
            position=n + 1,
            product=row,
            quantity=item["quantity"],
            price=price,
            discount_percent=item.get("discount_percent"),
            discount_minor=item.get("discount_minor"),
            tax_rate=item.get("tax_rate"),
        )
        for n, ((row, _), price, item) in enumerate(zip(chosen, prices, items, strict=True))
        if price is not None
    ]
    if totals(lines).subtotal_minor > MAX_MINOR:
        raise ValidationError(
            f"the lines add up to more than {MAX_MINOR} (minor units): split the document", field="lines"
        )
    return lines
