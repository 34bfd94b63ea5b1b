"""Orders and payments: ``crmkit sales orders|payments …``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import click

from crmkit.plugin_api import N_, amount_minor, emit, emit_object, import_options, pass_crm, run_import
from crmkit_sales.commands.display import DATE, LINE_HELP, _lines, _moment, _money, _order, _rows, _show_document
from crmkit_sales.commands.group import sales

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
