"""``crmkit service …``: the plugin's command group — thin callers of ``crm.service``, no SQL and no rule here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import click

from crmkit.plugin_api import N_, Coded, current_format, current_translator, emit, emit_object, pass_crm
from crmkit_service.commands_desk import attach, canned, intake, list_attachments, merge, routing, show_attachments
from crmkit_service.commands_quality import config, csat, remove_rule, report, rules, set_rule
from crmkit_service.console import PRIORITY_LABELS, STATUS_LABELS

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_service.service import Case, Message

#: The columns of a case list in table format (JSON and CSV carry every field).
CASE_TABLE = ("id", "customer_id", "status", "priority", "subject", "assignee", "team", "resolution_due_at")
#: The columns of a conversation in table format.
MESSAGE_TABLE = ("id", "created_at", "kind", "direction", "author", "body")
#: Stored codes (a message's kind and direction, an SLA target, a closed day) by the words a person reads.
CODE_LABELS = {
    "reply": N_("Reply"),
    "note": N_("Note"),
    "inbound": N_("Inbound"),
    "outbound": N_("Outbound"),
    "first_response": N_("First response"),
    "resolution": N_("Resolution"),
    "closed_day": N_("Not a working day"),
}


@click.group()
def service() -> None:
    """Customer service: cases, their conversation and SLAs."""


@service.group()
def cases() -> None:
    """Open, list, show, answer, assign and move cases."""


for command in (merge, attach, list_attachments):
    cases.add_command(command)
service.add_command(routing)
service.add_command(canned)
service.add_command(intake)


@cases.command("open")
@click.argument("customer_id", type=int)
@click.argument("subject")
@click.option("--description", help="What the customer asked or reported.")
@click.option("--channel", default="phone", show_default=True, help="How it came in (the core's channels).")
@click.option("--category", help="A free category, e.g. repair, billing, delivery.")
@click.option("--priority", default="normal", show_default=True, help="low, normal, high or urgent.")
@click.option("--assignee", help="The user working the case.")
@click.option("--team", help="The team working the case (its working hours time the SLA).")
@click.option("--watcher", "watchers", multiple=True, help="A user kept informed (repeatable).")
@click.option("--contact", "contact_id", type=int, help="For an organization's case: the member who raised it.")
@click.option("--order", "order_id", type=int, help="The order it concerns (checked by sales when installed).")
@click.option("--product", help="The product it concerns (an SKU or id when sales is installed).")
@pass_crm
def open_case(
    crm: CRM,
    customer_id: int,
    subject: str,
    description: str | None,
    channel: str,
    category: str | None,
    priority: str,
    assignee: str | None,
    team: str | None,
    watchers: Sequence[str],
    contact_id: int | None,
    order_id: int | None,
    product: str | None,
) -> None:
    """Open a case for CUSTOMER_ID about SUBJECT."""
    show_case(
        crm.service.open(
            customer_id,
            subject,
            description=description,
            channel=channel,
            category=category,
            priority=priority,
            assignee=assignee,
            team=team,
            watchers=watchers,
            contact_id=contact_id,
            order_id=order_id,
            product=product,
        )
    )


@cases.command("list")
@click.option("--status", help="One status, or 'active' for every case still being worked on.")
@click.option("--customer", "customer_id", type=int, help="Only this customer's cases.")
@click.option("--assignee", help="Only cases assigned to this user.")
@click.option("--team", help="Only this team's cases.")
@click.option("--priority", help="Only this priority.")
@click.option("--after", type=int, help="The next page: cases older than this case id.")
@click.option("--limit", default=50, show_default=True)
@pass_crm
def list_cases(
    crm: CRM,
    status: str | None,
    customer_id: int | None,
    assignee: str | None,
    team: str | None,
    priority: str | None,
    after: int | None,
    limit: int,
) -> None:
    """Cases in your scope, newest first."""
    found = crm.service.list(
        status=status,
        customer_id=customer_id,
        assignee=assignee,
        team=team,
        priority=priority,
        after=after,
        limit=limit,
    )
    table = current_format() == "table"
    emit(
        [_case_row(c) for c in found],
        CASE_TABLE if table else _case_fields(),
        title=current_translator().gettext("Cases") if table else None,
    )


@cases.command("show")
@click.argument("case_id", type=int)
@pass_crm
def show(crm: CRM, case_id: int) -> None:
    """A case and its conversation."""
    case = crm.service.get(case_id)
    conversation = crm.service.conversation(case_id)
    files = crm.service.attachments.list(case_id)
    if current_format() == "table":
        show_case(case)
        click.echo("")
        show_messages(conversation)
        if files:
            click.echo("")
            show_attachments(files)
    else:
        emit_object(
            {
                **_case_row(case),
                "conversation": [attrs.asdict(m) for m in conversation],
                "attachments": [attrs.asdict(a) for a in files],
            }
        )


@cases.command("reply")
@click.argument("case_id", type=int)
@click.argument("body", required=False)
@click.option("--inbound", is_flag=True, help="The customer's message (default: our answer to them).")
@click.option("--canned", help="Send this canned reply (in the customer's language) instead of BODY.")
@pass_crm
def reply(crm: CRM, case_id: int, body: str | None, inbound: bool, canned: str | None) -> None:
    """Add a reply to CASE_ID's conversation (also logged on the customer's timeline)."""
    if canned is not None:
        if body is not None or inbound:
            raise click.UsageError("--canned sends our answer: give no BODY and no --inbound with it")
        show_messages([crm.service.canned.reply(case_id, canned)])
        return
    if body is None:
        raise click.UsageError("give the reply's BODY, or --canned KEY")
    show_messages([crm.service.reply(case_id, body, direction="inbound" if inbound else "outbound")])


@cases.command("note")
@click.argument("case_id", type=int)
@click.argument("body")
@pass_crm
def note(crm: CRM, case_id: int, body: str) -> None:
    """Write an internal note on CASE_ID."""
    show_messages([crm.service.note(case_id, body)])


@cases.command("assign")
@click.argument("case_id", type=int)
@click.option("--to", "assignee", help="The user to give it to ('' to unassign).")
@click.option("--team", help="The team to give it to ('' for none).")
@pass_crm
def assign(crm: CRM, case_id: int, assignee: str | None, team: str | None) -> None:
    """Give CASE_ID to a user and/or a team."""
    changes: dict[str, Any] = {}
    if assignee is not None:
        changes["assignee"] = assignee or None
    if team is not None:
        changes["team"] = team or None
    show_case(crm.service.assign(case_id, **changes))


@cases.command("status")
@click.argument("case_id", type=int)
@click.argument("status")
@click.option("--resolution", help="How it was resolved (needed to resolve, or to close an unresolved case).")
@pass_crm
def status(crm: CRM, case_id: int, status: str, resolution: str | None) -> None:
    """Move CASE_ID to STATUS (new, open, waiting_on_customer, waiting_on_third_party, resolved, closed, reopened)."""
    show_case(crm.service.set_status(case_id, status, resolution=resolution))


@service.command("run-due")
@pass_crm
def run_due(crm: CRM) -> None:
    """Mark the cases that missed an SLA target now (what the worker's service.run-due job does every minute)."""
    breaches = crm.service.run_due()
    t = current_translator()
    title = t.ngettext("%(count)s SLA breach", "%(count)s SLA breaches", len(breaches)) % {
        "count": t.format_number(len(breaches))
    }
    emit(
        [
            {"case_id": b.case_id, "customer_id": b.customer_id, "target": _coded(b.target), "due_at": b.due_at}
            for b in breaches
        ],
        ("case_id", "customer_id", "target", "due_at"),
        title=title,
    )


@service.group()
def sla() -> None:
    """SLA policies, rules per customer group, working hours and days off."""


for command in (rules, set_rule, remove_rule):
    sla.add_command(command)
for command in (csat, report, config):
    service.add_command(command)


@sla.command("policies")
@pass_crm
def list_policies(crm: CRM) -> None:
    """The first-response and resolution targets per priority, in working minutes."""
    emit(
        [{**attrs.asdict(p), "priority": _coded(p.priority)} for p in crm.service.policies()],
        ("priority", "first_response_minutes", "resolution_minutes"),
    )


@sla.command("set-policy")
@click.argument("priority")
@click.option("--first-response", "first_response", type=int, required=True, help="Working minutes.")
@click.option("--resolution", type=int, required=True, help="Working minutes.")
@pass_crm
def set_policy(crm: CRM, priority: str, first_response: int, resolution: int) -> None:
    """Set PRIORITY's targets (for cases opened from now on)."""
    policy = crm.service.set_policy(priority, first_response_minutes=first_response, resolution_minutes=resolution)
    emit(
        [{**attrs.asdict(policy), "priority": _coded(policy.priority)}],
        ("priority", "first_response_minutes", "resolution_minutes"),
    )


@sla.command("week")
@click.argument("days", nargs=-1)
@click.option("--team", help="This team's week (default: the business's).")
@pass_crm
def week(crm: CRM, days: Sequence[str], team: str | None) -> None:
    """Show the working week, or set it: DAYS like mon=08:00-17:00 sat=08:00-12:00 (days not named are closed)."""
    from crmkit import ValidationError
    from crmkit_service.businesshours import WEEKDAYS, intervals

    if days:
        wanted: dict[int, tuple[int, ...]] = {}
        for item in days:
            name, _, spans = item.partition("=")
            try:  # mon=08:00-12:00,13:00-17:00: intervals around a lunch break
                bounds = [_minutes(part) for span in spans.split(",") for part in span.split("-", 1)]
                if len(bounds) % 2:
                    raise ValueError(item)
                wanted[WEEKDAYS.index(name.strip().lower())] = tuple(bounds)
            except ValueError:
                raise ValidationError(
                    f"{item!r}: write a day like mon=08:00-17:00 or mon=08:00-12:00,13:00-17:00 "
                    f"({', '.join(WEEKDAYS)})",
                    field="hours",
                ) from None
        crm.service.set_week(wanted, team=team)
    t = current_translator()
    monday = date(2024, 1, 1)  # any Monday: the weekdays by name in the reader's language
    closed = Coded("closed", t.gettext(CODE_LABELS["closed_day"]))
    emit(
        [
            {
                "day": Coded(WEEKDAYS[n], t.format_weekday(monday + timedelta(days=n))),
                "hours": ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in intervals(span))
                if span
                else closed,
            }
            for n, span in enumerate(crm.service.week(team))
        ],
        ("day", "hours"),
    )


def _minutes(text: str) -> int:
    """``08:30`` → 510 (``ValueError`` for anything else)."""
    hours, _, minutes = text.strip().partition(":")
    if not hours.isdigit() or not minutes.isdigit():
        raise ValueError(text)
    return int(hours) * 60 + int(minutes)


@sla.command("day-off")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d", "%d/%m/%Y"]))
@click.argument("note")
@click.option("--team", help="Only this team is off (default: the whole company).")
@pass_crm
def day_off(crm: CRM, day: Any, note: str, team: str | None) -> None:
    """Add a company day off (DAY as 2027-02-05 or 05/02/2027)."""
    added = crm.service.add_day_off(day.date(), note, team=team)
    t = current_translator()
    said = (
        t.gettext("%(day)s is a day off for team %(team)s: %(note)s")
        if added.team
        else t.gettext("%(day)s is a day off for the whole company: %(note)s")
    )
    click.echo(said % {"day": t.format_date(added.day), "team": added.team, "note": added.note})


@sla.command("days-off")
@pass_crm
def list_days_off(crm: CRM) -> None:
    """The company's days off (public holidays come from the calendar and are not listed)."""
    emit(
        [{"day": d.day, "team": d.team or "", "note": d.note} for d in crm.service.days_off()], ("day", "team", "note")
    )


@sla.command("due")
@click.argument("start", type=click.DateTime(formats=["%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z"]))
@click.argument("minutes", type=int)
@click.option("--team")
@pass_crm
def due(crm: CRM, start: Any, minutes: int, team: str | None) -> None:
    """When MINUTES of working time after START (2027-02-05T16:00+07:00) end on TEAM's calendar: the local time
    with the zone named in a table, ISO 8601 for JSON and CSV."""
    calendar = crm.service.calendar(team)
    ends = calendar.add(start, timedelta(minutes=minutes)).astimezone(calendar.zone)
    click.echo(
        current_translator().format_datetime(ends, calendar.zone) if current_format() == "table" else ends.isoformat()
    )


def show_case(case: Case) -> None:
    """Print one case: every field, one per line (or as an object for JSON/CSV)."""
    emit_object(_case_row(case))


def show_messages(items: Sequence[Message]) -> None:
    """Print conversation entries: a short table, or every field for JSON and CSV."""
    table = current_format() == "table"
    emit(
        [_message_row(m) for m in items],
        MESSAGE_TABLE
        if table
        else ("id", "case_id", "customer_id", "kind", "direction", "body", "author", "interaction_id", "created_at"),
    )


def _coded(code: str | None) -> Coded | None:
    """A stored code (status, priority, kind…) that a table shows in the reader's words and JSON/CSV as the code."""
    if code is None:
        return None
    label = STATUS_LABELS.get(code) or PRIORITY_LABELS.get(code) or CODE_LABELS.get(code)
    return Coded(code, current_translator().gettext(label) if label else code)


def _case_row(case: Case) -> dict[str, Any]:
    """A case as raw values: times stay datetimes, codes are :class:`Coded` (the output formats both)."""
    row = attrs.asdict(case, recurse=False)
    from crmkit.plugin_api import channel_label

    row.update(
        status=_coded(case.status),
        priority=_coded(case.priority),
        watchers=", ".join(case.watchers),
        channel=Coded(case.channel, channel_label(current_translator(), case.channel)),
    )
    return row


def _message_row(message: Message) -> dict[str, Any]:
    """A conversation entry as raw values, its kind and direction coded."""
    row = attrs.asdict(message, recurse=False)
    row.update(kind=_coded(message.kind), direction=_coded(message.direction))
    return row


def _case_fields() -> tuple[str, ...]:
    from crmkit_service.service import Case

    return tuple(a.name for a in attrs.fields(Case))
