"""Contracts: ``crmkit sales contracts …``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import click

from crmkit.plugin_api import N_, amount_minor, emit, emit_object, pass_crm
from crmkit_sales.commands.display import DATE, _day, _money, _rows
from crmkit_sales.commands.group import sales

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
