"""The help desk's ``crmkit service …`` commands: merging cases and attachments (``cases merge|attach|attachments``), routing
(``routing add|list|remove|shift``), canned replies (``canned add|list|show``) and refused intake payloads
(``intake rejected|purge``) — thin callers of ``crm.service``; ``commands.py`` adds them to its groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import click

from crmkit.plugin_api import current_format, current_translator, emit, emit_object, pass_crm
from crmkit_service.businesshours import WEEKDAYS
from crmkit_service.routing import shift_week

if TYPE_CHECKING:
    from collections.abc import Sequence

    from crmkit import CRM
    from crmkit_service.case_links import Attachment

ATTACHMENT_TABLE = ("id", "name", "url", "storage_key", "size", "content_type", "created_at")


@click.command("merge")
@click.argument("kept_id", type=int)
@click.argument("merged_id", type=int)
@pass_crm
def merge(crm: CRM, kept_id: int, merged_id: int) -> None:
    """Fold duplicate case MERGED_ID into KEPT_ID: its conversation, attachments and watchers move, and it is
    closed pointing to KEPT_ID."""
    from crmkit_service.commands import show_case

    show_case(crm.service.merge(kept_id, merged_id))


@click.command("attach")
@click.argument("case_id", type=int)
@click.argument("name")
@click.option("--url", help="Where the file is (http or https).")
@click.option("--storage-key", help="Or its key in your file storage.")
@click.option("--size", type=int, help="Its size in bytes.")
@click.option("--content-type", help="Its media type, e.g. image/jpeg.")
@pass_crm
def attach(
    crm: CRM,
    case_id: int,
    name: str,
    url: str | None,
    storage_key: str | None,
    size: int | None,
    content_type: str | None,
) -> None:
    """Attach a file to CASE_ID by reference (the file itself stays where it is)."""
    added = crm.service.attachments.add(
        case_id, name, url=url, storage_key=storage_key, size=size, content_type=content_type
    )
    emit([attrs.asdict(added)], ATTACHMENT_TABLE)


@click.command("attachments")
@click.argument("case_id", type=int)
@pass_crm
def list_attachments(crm: CRM, case_id: int) -> None:
    """The files attached to CASE_ID."""
    show_attachments(crm.service.attachments.list(case_id))


def show_attachments(items: Sequence[Attachment]) -> None:
    """Print attachments: a titled table, or every field for JSON and CSV."""
    table = current_format() == "table"
    emit(
        [attrs.asdict(a) for a in items],
        ATTACHMENT_TABLE if table else ("case_id", *ATTACHMENT_TABLE, "created_by"),
        title=current_translator().gettext("Attachments") if table else None,
    )


@click.group("routing")
def routing() -> None:
    """Routing rules: which team and agent a new case goes to; agents' shifts."""


RULE_TABLE = ("id", "position", "category", "channel", "customer_group", "language", "team", "strategy")


@routing.command("add")
@click.argument("team")
@click.option("--category", help="Only cases of this category.")
@click.option("--channel", help="Only cases that came in by this channel.")
@click.option("--group", "customer_group", help="Only customers of this group (e.g. a loyalty tier: diamond).")
@click.option("--language", help="Only customers served in this language (vi or en).")
@click.option(
    "--strategy", default="round_robin", show_default=True, help="round_robin, least_loaded or team (no agent)."
)
@click.option("--position", type=int, help="Where in the order the rule is tried (default: last).")
@pass_crm
def add_rule(
    crm: CRM,
    team: str,
    category: str | None,
    channel: str | None,
    customer_group: str | None,
    language: str | None,
    strategy: str,
    position: int | None,
) -> None:
    """Send new cases matching every option given to TEAM (tried in order; the first match wins)."""
    rule = crm.service.routing.add(
        team,
        category=category,
        channel=channel,
        customer_group=customer_group,
        language=language,
        strategy=strategy,
        position=position,
    )
    emit_object(attrs.asdict(rule))


@routing.command("list")
@pass_crm
def list_rules(crm: CRM) -> None:
    """The rules in the order they are tried."""
    emit([attrs.asdict(rule) for rule in crm.service.routing.list()], (*RULE_TABLE, "created_at"))


@routing.command("remove")
@click.argument("rule_id", type=int)
@pass_crm
def remove_rule(crm: CRM, rule_id: int) -> None:
    """Delete rule RULE_ID."""
    crm.service.routing.remove(rule_id)


@routing.command("shift")
@click.argument("username")
@click.option("--day", "days", multiple=True, type=click.Choice(WEEKDAYS), help="A working day (repeatable).")
@click.option("--from", "opens", type=click.DateTime(formats=["%H:%M"]), help="Starts at, e.g. 08:00.")
@click.option("--to", "closes", type=click.DateTime(formats=["%H:%M"]), help="Ends at, e.g. 17:00.")
@pass_crm
def shift(crm: CRM, username: str, days: tuple[str, ...], opens: Any, closes: Any) -> None:
    """Set USERNAME's own shift (the same hours on each --day), or without --day follow their team's hours."""
    week = shift_week(days, opens and opens.time(), closes and closes.time())
    crm.service.routing.set_shift(username, week)


@click.group("canned")
def canned() -> None:
    """Canned replies: stored answers with placeholders, in Vietnamese and English."""


CANNED_TABLE = ("key", "language", "title", "body")


@canned.command("add")
@click.argument("key")
@click.argument("body")
@click.option("--language", default="vi", show_default=True, help="vi or en: the variant this text is.")
@click.option("--title", help="What the agent picks it by (default: the key).")
@pass_crm
def add_canned(crm: CRM, key: str, body: str, language: str, title: str | None) -> None:
    """Store (or replace) KEY's LANGUAGE variant: BODY may use {customer_name}, {given_name}, {case_number},
    {order_number} and {agent_name}."""
    emit_object(attrs.asdict(crm.service.canned.add(key, body, language=language, title=title)))


@canned.command("list")
@pass_crm
def list_canned(crm: CRM) -> None:
    """Every canned reply, by key and language."""
    emit([attrs.asdict(reply) for reply in crm.service.canned.list()], CANNED_TABLE)


@canned.command("show")
@click.argument("key")
@pass_crm
def show_canned(crm: CRM, key: str) -> None:
    """KEY's variants in full."""
    emit([attrs.asdict(reply) for reply in crm.service.canned.show(key)], (*CANNED_TABLE, "updated_by", "updated_at"))


@click.group("intake")
def intake() -> None:
    """Refused web-form and inbound-message payloads, kept for inspection."""


@intake.command("rejected")
@click.option("--limit", default=50, show_default=True)
@pass_crm
def rejected(crm: CRM, limit: int) -> None:
    """The refused payloads, newest first: the field, the reason and the raw text."""
    emit(
        [attrs.asdict(r) for r in crm.service.intake.rejected(limit=limit)],
        ("id", "received_at", "source", "customer_id", "field", "reason", "payload"),
    )


@intake.command("purge")
@click.option("--days", default=30, show_default=True, help="Keep the payloads of the last DAYS days.")
@pass_crm
def purge(crm: CRM, days: int) -> None:
    """Delete refused payloads older than DAYS (the worker's service.purge-rejected job does it hourly)."""
    click.echo(crm.service.intake.purge_rejected(days=days))
