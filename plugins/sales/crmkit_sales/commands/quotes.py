"""Quotes: ``crmkit sales quotes …``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from crmkit.plugin_api import N_, current_translator, emit, emit_object, pass_crm
from crmkit_sales.commands.display import DATE, LINE_HELP, _lines, _order, _quote, _rows, _show_document, _write
from crmkit_sales.commands.group import sales

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
