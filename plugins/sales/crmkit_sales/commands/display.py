"""Parsing and display helpers shared by the ``crmkit sales`` commands (no SQL, no business rule)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import attrs
import click

from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.plugin_api import N_, Percent, amount_minor, current_translator, emit, emit_object

LINE_HELP = "SKU:QTY[:DISCOUNT[:VAT]] — DISCOUNT '10%' or an amount; VAT '8%' (repeat per line)."
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
