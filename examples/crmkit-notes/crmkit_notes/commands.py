"""``crmkit notes …``: the plugin's command group — thin callers of ``crm.notes``, no SQL here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import click

from crmkit.plugin_api import current_format, emit, pass_crm

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_notes.service import Note

FIELDS = ("id", "customer_id", "created_at", "author", "text")  # --format json / csv
TABLE = ("id", "at (UTC)", "author", "text")


@click.group()
def notes() -> None:
    """Free-text notes about customers."""


@notes.command("add")
@click.argument("customer_id", type=int)
@click.argument("text")
@pass_crm
def add(crm: CRM, customer_id: int, text: str) -> None:
    """Write a note about CUSTOMER_ID (as the `crmkit --user`)."""
    show([crm.notes.add(customer_id, text)])


@notes.command("list")
@click.argument("customer_id", type=int)
@click.option("--limit", default=50, show_default=True, help="How many notes to show, newest first.")
@pass_crm
def list_notes(crm: CRM, customer_id: int, limit: int) -> None:
    """Show the notes about CUSTOMER_ID, newest first."""
    show(crm.notes.list(customer_id, limit=limit), title=f"Notes about customer {customer_id}")


@notes.command("show")
@click.argument("note_id", type=int)
@pass_crm
def show_note(crm: CRM, note_id: int) -> None:
    """Show one note."""
    show([crm.notes.get(note_id)])


@notes.command("delete")
@click.argument("note_id", type=int)
@pass_crm
def delete(crm: CRM, note_id: int) -> None:
    """Delete one note (audited)."""
    note = crm.notes.delete(note_id)
    click.echo(f"note {note.id} about customer {note.customer_id} deleted")


def show(items: Sequence[Note], title: str | None = None) -> None:
    """Print notes: a short table, or every field with the exact time for JSON and CSV."""
    if current_format() == "table":
        emit(
            [
                {"id": n.id, "at (UTC)": f"{n.created_at:%Y-%m-%d %H:%M}", "author": n.author, "text": n.text}
                for n in items
            ],
            TABLE,
            title=title,
        )
    else:
        emit([attrs.asdict(n) for n in items], FIELDS)
