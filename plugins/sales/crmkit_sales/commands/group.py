"""The ``crmkit sales`` group itself and its one top-level setting command."""

from __future__ import annotations

from typing import Any

import click

from crmkit.plugin_api import emit_object, pass_crm


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
