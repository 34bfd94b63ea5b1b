"""``crmkit interactions …``: log a contact and read a customer's timeline (thin callers of ``crm.interactions``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import CLIContext, pass_crm
from crmkit.cli.importing import import_options, run_import
from crmkit.cli.output import (
    N_,
    Coded,
    current_format,
    current_translator,
    emit,
    emit_object,
    format_option,
    print_next_page,
)
from crmkit.cli.params import AWARE_DATETIME, LazyChoice
from crmkit.core.jsonable import to_jsonable

if TYPE_CHECKING:
    from crmkit.core.models import Interaction
    from crmkit.crm import CRM

DIRECTIONS = LazyChoice("crmkit.core.models:DIRECTIONS")
INTERACTION_COLUMNS = (
    N_("id"),
    N_("at"),
    N_("channel"),
    N_("direction"),
    N_("subject"),
    N_("outcome"),
    N_("rating"),
    N_("employee"),
)


def interaction_row(interaction: Interaction) -> dict[str, Any]:
    """One line of a timeline (table format): the time is shown in the business's time zone, the zone named."""
    return {
        "id": interaction.id,
        "at": interaction.occurred_at,
        "channel": _channel(interaction.channel),
        "direction": interaction.direction,
        "subject": interaction.subject,
        "outcome": interaction.outcome,
        "rating": interaction.rating,
        "employee": interaction.employee,
    }


def _channel(channel: str) -> Coded:
    """A channel as the console names it (``in_person`` is vi ``Gặp trực tiếp``); a plugin's channel by its code."""
    from crmkit.console.display import channel_label

    return Coded(channel, channel_label(current_translator(), channel))


@click.group("interactions")
def interactions() -> None:
    """Contacts with customers on every channel: log them, import past ones, read a customer's timeline."""


@interactions.command("log")
@click.argument("customer_id", type=int)
@click.argument("channel")
@click.option(
    "--direction",
    type=DIRECTIONS,
    default="inbound",
    show_default=True,
    help="Who reached out: the customer (inbound) or you (outbound).",
)
@click.option("--at", type=AWARE_DATETIME, help="When, with a time zone (2024-05-01T09:30+07:00); default now.")
@click.option("--subject", help='Subject line ("Hỏi giá sản phẩm").')
@click.option("--summary", help="What was said or done.")
@click.option("--outcome", help="How it ended (resolved, follow-up, quote sent, …).")
@click.option("--rating", type=int, help="Customer satisfaction, 1–5.")
@click.option("--employee", help="The employee involved (default: the acting user, crmkit --user).")
@format_option
@click.pass_obj
def log(state: CLIContext, customer_id: int, channel: str, direction: str, at: datetime | None, **fields: Any) -> None:
    """Record a contact with CUSTOMER_ID on CHANNEL (email, phone, sms, chat, social, web, fax, post, in_person, …)."""
    if fields.get("employee") is None:
        fields["employee"] = state.user
    given = {k: v for k, v in fields.items() if v is not None}
    interaction = state.crm.interactions.log(customer_id, channel, direction=direction, occurred_at=at, **given)
    if current_format() == "table":
        title = current_translator().gettext("Logged for customer %(id)s") % {"id": interaction.customer_id}
        emit([interaction_row(interaction)], INTERACTION_COLUMNS, title=title)
    else:
        emit_object(to_jsonable(interaction))


@interactions.command("timeline")
@click.argument("customer_id", type=int)
@click.option("--channel", "channels", multiple=True, help="Only this channel; repeat for several.")
@click.option("--since", type=AWARE_DATETIME, help="From this time on (ISO date-time with a time zone).")
@click.option("--until", type=AWARE_DATETIME, help="Before this time.")
@click.option("--employee", help="Only contacts handled by this employee.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="How many, newest first.")
@click.option("--before", metavar="CURSOR", help="Continue after the page that printed this cursor.")
@format_option
@pass_crm
def timeline(
    crm: CRM,
    customer_id: int,
    channels: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    employee: str | None,
    limit: int,
    before: str | None,
) -> None:
    """CUSTOMER_ID's interactions across every channel, newest first."""
    page = crm.interactions.timeline(
        customer_id,
        channels=list(channels) or None,
        since=since,
        until=until,
        employee=employee,
        before=before,
        limit=limit,
    )
    if current_format() == "table":
        emit([interaction_row(i) for i in page], INTERACTION_COLUMNS)
    else:
        emit(
            [to_jsonable(i) for i in page],
            (
                "id",
                "customer_id",
                "channel",
                "direction",
                "occurred_at",
                "subject",
                "summary",
                "outcome",
                "rating",
                "employee",
                "sender",
                "external_id",
            ),
        )
    print_next_page(page.next_cursor, "--before")


@interactions.command("import")
@import_options('--map "Mã KH=customer_external_id" --map ID=external_id')
@pass_crm
def import_(
    crm: CRM,
    file: Path,
    mapping: tuple[tuple[str, str], ...],
    rejects: Path | None,
    batch_size: int,
    file_format: str | None,
    no_bom: bool,
) -> None:
    """Import past contacts (calls, visits, e-mails, …) from a CSV or JSON Lines FILE, idempotent by external_id.

    Columns: external_id (the contact's id in the old system), customer_id or customer_external_id,
    channel, occurred_at (with a time zone), and optionally direction, subject, summary, outcome,
    rating (1–5), employee, sender. A re-run updates what it imported before and never duplicates
    it; rows that fail go to the reject file with their row number and reason.
    """
    from crmkit.core.transfer import import_interactions

    run_import(
        file,
        lambda progress: import_interactions(
            crm,
            file,
            format=file_format,
            mapping=dict(mapping) or None,
            reject_path=rejects,
            batch_size=batch_size,
            progress=progress,
            reject_bom=not no_bom,
        ),
    )
