"""``crmkit service sla rules|set-rule|remove-rule``, ``crmkit service csat …``, ``crmkit service report NAME`` and
``crmkit service config``: thin callers of ``crm.service.sla``, ``.csat``, ``.reports`` and ``.configure``
(``commands.py`` adds them to its groups)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from crmkit.plugin_api import current_translator, emit, pass_crm
from crmkit_service.report_pages import TITLES as REPORT_TITLES

if TYPE_CHECKING:
    from crmkit import CRM

RULE_COLUMNS = (
    "customer_group",
    "priority",
    "first_response_minutes",
    "resolution_minutes",
    "warn_minutes",
    "escalate_to",
    "escalate_team",
    "notify",
    "raise_priority",
)


@click.command("rules")
@pass_crm
def rules(crm: CRM) -> None:
    """SLA rules per customer group and priority: targets, warning and escalation."""
    emit([attrs.asdict(rule) for rule in crm.service.sla.rules()], RULE_COLUMNS)


@click.command("set-rule")
@click.argument("priority")
@click.option("--group", "customer_group", help="The customer group (e.g. a loyalty tier: diamond); default: all.")
@click.option("--first-response", "first_response_minutes", type=int, help="Working minutes (default: the policy).")
@click.option("--resolution", "resolution_minutes", type=int, help="Working minutes (default: the policy).")
@click.option("--warn", "warn_minutes", type=int, help="Warn this many minutes before a target is missed.")
@click.option("--escalate-to", help="On a breach, reassign to this user.")
@click.option("--escalate-team", help="On a breach, move to this team.")
@click.option("--notify", help="On a breach, tell this user (the team lead): made a watcher, named in the event.")
@click.option("--raise-priority", is_flag=True, help="On a breach, raise the priority one step.")
@pass_crm
def set_rule(crm: CRM, priority: str, **options: Any) -> None:
    """Set the SLA rule of PRIORITY (for a customer group with --group), for cases opened from now on."""
    emit([attrs.asdict(crm.service.sla.set_rule(priority, **options))], RULE_COLUMNS)


@click.command("remove-rule")
@click.argument("priority")
@click.option("--group", "customer_group", help="The customer group (default: the rule for every group).")
@pass_crm
def remove_rule(crm: CRM, priority: str, customer_group: str | None) -> None:
    """Remove the SLA rule of PRIORITY (and --group)."""
    t = current_translator()
    done = crm.service.sla.remove_rule(priority, customer_group=customer_group)
    click.echo(t.gettext("Rule removed.") if done else t.gettext("There was no such rule."))


@click.group("csat")
def csat() -> None:
    """Customer satisfaction surveys of resolved cases."""


@csat.command("record")
@click.argument("case_id", type=int)
@click.argument("score", type=int)
@click.option("--comment", help="What the customer said.")
@pass_crm
def record(crm: CRM, case_id: int, score: int, comment: str | None) -> None:
    """Record the customer's SCORE (1–5) for a resolved case."""
    case = crm.service.csat.record(case_id, score, comment)
    emit([{"id": case.id, "status": case.status, "csat_score": case.csat_score, "csat_comment": case.csat_comment}])


@csat.command("pending")
@click.option("--limit", default=50, show_default=True)
@pass_crm
def pending(crm: CRM, limit: int) -> None:
    """Resolved cases whose survey waits for an answer."""
    emit(
        [
            {"id": c.id, "customer_id": c.customer_id, "subject": c.subject, "csat_requested_at": c.csat_requested_at}
            for c in crm.service.csat.pending(limit=limit)
        ],
        ("id", "customer_id", "subject", "csat_requested_at"),
    )


def _moment(value: Any) -> datetime | None:
    return None if value is None else value.replace(tzinfo=value.tzinfo or UTC)


@click.command("report")
@click.argument("name", type=click.Choice(tuple(REPORT_TITLES)))
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="From this day (UTC; default: 90 days ago).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="Until this day (UTC; default: now).")
@click.option("--by", type=click.Choice(("assignee", "team", "category")), help="csat and csat-trend: group by.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML report.")
@pass_crm
def report(crm: CRM, name: str, since: Any, until: Any, by: str | None, html_path: Path | None) -> None:
    """Run the report NAME: backlog, sla, fcr, reopens, csat, csat-trend or hours."""
    options: dict[str, Any] = {} if name == "backlog" else {"since": _moment(since), "until": _moment(until)}
    if by and name.startswith("csat"):
        options["by"] = by
    rows = crm.service.reports.run(name, **options)
    t = current_translator()
    emit(rows, title=t.gettext(REPORT_TITLES[name]))
    if html_path is not None:
        from crmkit_service.report_pages import standalone

        html_path.write_text(standalone(name, rows, t), encoding="utf-8")
        click.echo(t.gettext("HTML report written to %(path)s") % {"path": html_path})


@click.command("config")
@click.argument("name", required=False)
@click.argument("value", required=False)
@pass_crm
def config(crm: CRM, name: str | None, value: str | None) -> None:
    """Show the service settings, or set NAME to VALUE (reply_to_resolved reopen|refuse, reply_to_closed
    refuse|reopen, csat_reopen_below 2–5|off)."""
    if name is not None:
        crm.service.configure(name, value)
    emit([{"name": key, "value": setting} for key, setting in crm.service.settings().items()], ("name", "value"))
