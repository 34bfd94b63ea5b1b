"""``crmkit audit``: who changed what, and when (thin caller of ``crm.audit``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_format, emit, format_option, print_next_page

if TYPE_CHECKING:
    from crmkit.crm import CRM

COLUMNS = ("id", "at", "actor", "action", "entity", "entity_id", "customer_id", "changes")
#: Changes are cut to this many characters in the table (JSON and CSV carry them whole).
CHANGES_WIDTH = 70


@click.command("audit")
@click.option("--customer", "customer_id", type=int, help="Only changes to this customer.")
@click.option("--actor", help="Only changes made by this user.")
@click.option("--entity", help="Only changes to this kind of thing (customer, plugin, setting, …).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="How many, newest first.")
@click.option("--after", metavar="CURSOR", help="Continue after the page that printed this cursor.")
@format_option
@pass_crm
def audit(
    crm: CRM, customer_id: int | None, actor: str | None, entity: str | None, limit: int, after: str | None
) -> None:
    """The audit log, newest first: who changed what, and when."""
    page = crm.audit.entries(customer_id=customer_id, actor=actor, entity=entity, after=after, limit=limit)
    table = current_format() == "table"
    rows = []
    for entry in page:
        changes = entry.changes
        if table and changes is not None:
            text = json.dumps(changes, ensure_ascii=False, default=str)
            changes = text if len(text) <= CHANGES_WIDTH else text[: CHANGES_WIDTH - 1] + "…"
        rows.append(
            {
                "id": entry.id,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "entity": entry.entity,
                "entity_id": entry.entity_id,
                "customer_id": entry.customer_id,
                "changes": changes,
            }
        )
    emit(rows, COLUMNS)
    print_next_page(page.next_cursor, "--after")
