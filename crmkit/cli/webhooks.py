"""``crmkit webhooks …``: subscriptions, deliveries, dead letters and replays (thin callers of ``crm.webhooks``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_format, current_translator, emit, emit_object, format_option
from crmkit.cli.params import AWARE_DATETIME, LazyChoice
from crmkit.core.jsonable import to_jsonable

if TYPE_CHECKING:
    from crmkit.core.webhooks import Delivery, Subscription
    from crmkit.crm import CRM

LIST_COLUMNS = ("id", "url", "events", "active", "description")
DELIVERY_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "subscription_id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_status",
    "last_error",
)
STATUSES = LazyChoice("crmkit.core.webhooks:STATUSES")


def subscription_view(subscription: Subscription) -> dict[str, Any]:
    """A subscription as ``show`` prints it; its secret only when it has one (on creation)."""
    view = dict(to_jsonable(subscription))
    if current_format() == "table":
        view.update(
            events=list(subscription.events),
            active="yes" if subscription.active else "no (paused)",
            created_at=subscription.created_at,
            updated_at=subscription.updated_at,
        )
    if subscription.secret is None:
        view.pop("secret")
    return view


def delivery_row(delivery: Delivery) -> dict[str, Any]:
    """One line of ``deliveries`` / ``dead``."""
    row = {column: getattr(delivery, column) for column in DELIVERY_COLUMNS}
    if current_format() == "table":
        row["next_attempt_at"] = delivery.next_attempt_at if delivery.status == "pending" else None
    return row


@click.group("webhooks")
def webhooks() -> None:
    """Outgoing webhooks: POST signed events (customer.created, order.placed, …) to your URLs; `crmkit worker` sends them."""


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True, help="An event type to send; repeat for several.")
@click.option("--secret", help="Signing secret (whsec_…); default: a new random one, shown once.")
@click.option("--description", default="", help="What the receiver is.")
@click.option("--paused", is_flag=True, help="Create it inactive (nothing is recorded for it until it is resumed).")
@format_option
@pass_crm
def add(crm: CRM, url: str, events: tuple[str, ...], secret: str | None, description: str, paused: bool) -> None:
    """Send events to URL, signed with a secret shown only now (keep it: the receiver checks signatures with it).

    \b
    crmkit webhooks add https://shop.example.com/crm-hook --event customer.created --event order.placed
    """
    emit_object(
        subscription_view(
            crm.webhooks.subscribe(url, list(events), secret=secret, description=description, active=not paused)
        )
    )


@webhooks.command("list")
@format_option
@pass_crm
def list_subscriptions(crm: CRM) -> None:
    """Every subscription."""
    emit([{c: subscription_view(s)[c] for c in LIST_COLUMNS} for s in crm.webhooks.list()], LIST_COLUMNS)


@webhooks.command("show")
@click.argument("subscription_id", type=int)
@format_option
@pass_crm
def show(crm: CRM, subscription_id: int) -> None:
    """Show subscription SUBSCRIPTION_ID (never its secret)."""
    emit_object(subscription_view(crm.webhooks.get(subscription_id)))


@webhooks.command("update")
@click.argument("subscription_id", type=int)
@click.option("--url", help="New URL.")
@click.option("--event", "events", multiple=True, help="The event types to send (replaces the list); repeat.")
@click.option("--description", help="New description.")
@click.option("--active/--paused", "active", default=None, help="Resume or pause it.")
@format_option
@pass_crm
def update(
    crm: CRM,
    subscription_id: int,
    url: str | None,
    events: tuple[str, ...],
    description: str | None,
    active: bool | None,
) -> None:
    """Change a subscription's URL, event types, description, or pause/resume it."""
    given: dict[str, Any] = {"url": url, "events": list(events) or None, "description": description, "active": active}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        raise click.UsageError("nothing to update: give at least one option (see --help)")
    emit_object(subscription_view(crm.webhooks.update(subscription_id, **given)))


@webhooks.command("remove")
@click.argument("subscription_id", type=int)
@pass_crm
def remove(crm: CRM, subscription_id: int) -> None:
    """Delete a subscription with its delivery log."""
    crm.webhooks.delete(subscription_id)
    click.echo(current_translator().gettext("removed webhook subscription %(id)s") % {"id": subscription_id})


@webhooks.command("deliveries")
@click.option("--subscription", "subscription_id", type=int, help="Only this subscription's.")
@click.option("--status", type=STATUSES, help="Only deliveries in this status.")
@click.option("--limit", type=int, default=50, show_default=True)
@format_option
@pass_crm
def deliveries(crm: CRM, subscription_id: int | None, status: str | None, limit: int) -> None:
    """The latest deliveries, newest first: status, attempts, the last HTTP status and error."""
    emit([delivery_row(d) for d in crm.webhooks.deliveries(subscription_id, status, limit=limit)], DELIVERY_COLUMNS)


@webhooks.command("dead")
@click.option("--limit", type=int, default=50, show_default=True)
@format_option
@pass_crm
def dead(crm: CRM, limit: int) -> None:
    """Dead-lettered deliveries (no 2xx for 3 days): `replay` sends their events again."""
    emit([delivery_row(d) for d in crm.webhooks.dead(limit=limit)], DELIVERY_COLUMNS)


@webhooks.command("replay")
@click.argument("event_id", required=False)
@click.option("--since", type=AWARE_DATETIME, help="Every event from this time (ISO; UTC unless it says).")
@click.option("--until", type=AWARE_DATETIME, help="… up to this time (excluded).")
@click.option("--subscription", "subscription_id", type=int, help="Only to this subscription.")
@pass_crm
def replay(
    crm: CRM, event_id: str | None, since: datetime | None, until: datetime | None, subscription_id: int | None
) -> None:
    """Send EVENT_ID, or every event in --since/--until, again to the subscriptions listening (same webhook-id)."""
    count = crm.webhooks.replay(event_id, since=since, until=until, subscription_id=subscription_id)
    t = current_translator()
    click.echo(
        t.ngettext("queued %(count)s delivery", "queued %(count)s deliveries", count)
        % {"count": t.format_number(count)}
    )


@webhooks.command("events")
@format_option
@pass_crm
def events(crm: CRM) -> None:
    """The event types subscriptions may listen to, with who declares them."""
    emit(
        [{"type": e.name, "plugin": e.plugin, "description": e.description} for e in crm.events.types.values()],
        ("type", "plugin", "description"),
    )
