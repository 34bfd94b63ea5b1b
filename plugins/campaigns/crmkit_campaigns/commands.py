"""``crmkit campaigns …``: segments, campaigns, channels, dispatch and reports (tracking is served by ``crmkit serve``).

Thin callers of ``crm.campaigns``: no SQL and no rule here. Money options take amounts in major
units of the campaign's currency (``--budget 5000000`` is 5.000.000 ₫).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from crmkit.plugin_api import (
    AWARE_DATETIME,
    KEY_VALUE,
    Coded,
    LazyChoice,
    Percent,
    amount_minor,
    current_format,
    current_translator,
    emit,
    emit_object,
    pass_crm,
    redact_options,
    redact_url,
)

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.money import Money
    from crmkit.plugin_api import Translator
    from crmkit_campaigns.objects import Campaign, RunResult
    from crmkit_campaigns.reports import CampaignReport, Lift


def _ref(value: str) -> int | str:
    """A campaign or segment given by id (digits) or name."""
    return int(value) if value.isdigit() else value


def _minor(crm: CRM, amount: str | None, currency: str | None, option: str) -> int | None:
    """A major-unit amount typed on the command line, in minor units of the currency (default: the CRM's)."""
    return amount_minor(amount, currency or str(crm.settings.get("currency") or "VND"), option)


def _text(value: str | None, path: Path | None, option: str) -> str | None:
    if value is not None and path is not None:
        raise click.UsageError(f"give {option} or {option}-file, not both")
    return path.read_text(encoding="utf-8") if path is not None else value


def _money(minor: int | None, currency: str) -> Money | None:
    """An amount for the output: a table shows it the reader's way, JSON and CSV as ``Money.format()`` (``1.500 ₫``)."""
    from crmkit.money import Money

    return None if minor is None else Money(currency, int(minor))


@click.group()
def campaigns() -> None:
    """Segments, campaigns on consented channels, occasions, tracking and ROI."""


# --- segments ---------------------------------------------------------------------------------------


@campaigns.group()
def segments() -> None:
    """Saved audiences in the filter language (`crmkit campaigns segments fields` lists the fields)."""


@segments.command("create")
@click.argument("name")
@click.argument("expression")
@click.option("--description", help="What the segment is for.")
@pass_crm
def segments_create(crm: CRM, name: str, expression: str, description: str | None) -> None:
    """Save EXPRESSION as segment NAME, e.g. 'province = "Hà Nội" and age between 25 and 40'."""
    segment = crm.campaigns.segments.create(name, expression, description=description)
    emit_object({**attrs.asdict(segment), "customers": crm.campaigns.segments.count(segment.id)})


@segments.command("list")
@pass_crm
def segments_list(crm: CRM) -> None:
    """Every saved segment."""
    emit(
        [
            {"id": s.id, "name": s.name, "expression": s.expression, "description": s.description}
            for s in crm.campaigns.segments.list()
        ],
        ("id", "name", "expression", "description"),
    )


@segments.command("show")
@click.argument("segment")
@pass_crm
def segments_show(crm: CRM, segment: str) -> None:
    """A saved segment and how many customers it holds now."""
    found = crm.campaigns.segments.get(_ref(segment))
    emit_object({**attrs.asdict(found), "customers": crm.campaigns.segments.count(found.id)})


def _audience_options(function: Any) -> Any:
    function = click.option("--expr", "expression", help="An expression instead of a saved segment.")(function)
    return click.argument("segment", required=False)(function)


@segments.command("count")
@_audience_options
@pass_crm
def segments_count(crm: CRM, segment: str | None, expression: str | None) -> None:
    """How many customers a segment (or --expr) holds."""
    count = crm.campaigns.segments.count(_ref(segment) if segment else None, expression=expression)
    emit([{"customers": count}], ("customers",))


@segments.command("sample")
@_audience_options
@click.option("--limit", default=10, show_default=True, help="How many customers to show.")
@pass_crm
def segments_sample(crm: CRM, segment: str | None, expression: str | None, limit: int) -> None:
    """A random handful of a segment's customers."""
    rows = crm.campaigns.segments.sample(_ref(segment) if segment else None, expression=expression, limit=limit)
    emit(rows, ("id", "name", "email", "phone", "city", "province"))


@segments.command("export")
@_audience_options
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option(
    "--as",
    "fmt",
    type=LazyChoice("crmkit_campaigns.segments:EXPORT_FORMATS"),
    default="csv",
    show_default=True,
    help="File format.",
)
@click.option(
    "--bom/--no-bom",
    default=None,
    help="Start a CSV with a UTF-8 BOM so Excel shows Vietnamese (default: for a file, not for stdout).",
)
@pass_crm
def segments_export(
    crm: CRM, segment: str | None, expression: str | None, output: Path | None, fmt: str, bom: bool | None
) -> None:
    """Write a segment's customers (id, name, e-mail, phone, city, province) as CSV or JSON lines."""
    ref = _ref(segment) if segment else None
    with_bom = fmt == "csv" and (bom if bom is not None else output is not None)
    if output is None:
        if with_bom:
            sys.stdout.write("\ufeff")
        count = crm.campaigns.segments.export(sys.stdout, ref, expression=expression, format=fmt)
    else:
        with output.open("w", encoding="utf-8-sig" if with_bom else "utf-8", newline="") as out:
            count = crm.campaigns.segments.export(out, ref, expression=expression, format=fmt)
    click.echo(f"exported {count} customers" + (f" to {output}" if output else ""), err=True)


@segments.command("delete")
@click.argument("segment")
@pass_crm
def segments_delete(crm: CRM, segment: str) -> None:
    """Delete a saved segment that no campaign uses."""
    crm.campaigns.segments.delete(_ref(segment))
    click.echo(f"deleted segment {segment}", err=True)


@segments.command("fields")
@pass_crm
def segments_fields(crm: CRM) -> None:
    """The fields expressions can use: the core's and every installed plugin's."""
    emit(
        [
            {
                "field": f.name,
                "type": f.type
                if f.type not in ("name", "choice", "age")
                else {"name": "text", "age": "number"}.get(f.type, "one of: " + ", ".join(f.values())),
                "source": f.source,
                "description": f.description,
            }
            for f in crm.campaigns.segments.fields().values()
        ],
        ("field", "type", "source", "description"),
    )


# --- campaigns ----------------------------------------------------------------------------------------


def _campaign_row(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "channel": c.channel,
        "segment": c.segment or "(everyone)",
        "occasion": c.occasion,
        "variants": ", ".join(v.name for v in c.variants),
        "holdout": f"{c.holdout_percent.normalize():f}%",
        "scheduled_at": c.scheduled_at,
    }


@campaigns.command("create")
@click.argument("name")
@click.option("--channel", required=True, help="email, sms, chat, or a plugin's channel (zalo…).")
@click.option("--segment", help="Saved segment (name or id); everyone when omitted.")
@click.option("--subject", help="Subject (e-mail), with {{ placeholders }}.")
@click.option("--body", help="Message text, with {{ placeholders }}.")
@click.option(
    "--body-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the text from a file."
)
@click.option("--objective", help="What the campaign is for.")
@click.option("--owner", help="Who runs it.")
@click.option("--currency", help="Currency of costs and attributed revenue [default: the CRM's, else VND].")
@click.option("--budget", help="Budget (major units): a run that would cost more is refused.")
@click.option("--cost-fixed", help="Fixed cost (major units).")
@click.option("--cost-per-message", help="Cost of each message sent (major units).")
@click.option(
    "--holdout",
    type=Decimal,
    default=Decimal(0),
    show_default=True,
    help="Percent of eligible customers held out (they receive nothing) to measure lift.",
)
@click.option(
    "--attribution-days",
    type=int,
    default=7,
    show_default=True,
    help="Purchases this many days after a message count as its conversions.",
)
@click.option(
    "--occasion",
    help="birthday, first_purchase, or an occasion as crmkit.vncalendar spells it (as loyalty "
    "rules do): tet, trung_thu, gio_to, vu_lan, ram_thang_gieng, founding_day, womens_day, "
    "vietnamese_womens_day, teachers_day, national_day…, a solar day 30/4 or 04-30, "
    "or a lunar day '15/8 âm lịch'.",
)
@click.option("--days-before", type=int, default=0, show_default=True, help="Send this many days before the occasion.")
@pass_crm
def create(
    crm: CRM,
    name: str,
    channel: str,
    segment: str | None,
    subject: str | None,
    body: str | None,
    body_file: Path | None,
    objective: str | None,
    owner: str | None,
    currency: str | None,
    budget: str | None,
    cost_fixed: str | None,
    cost_per_message: str | None,
    holdout: Decimal,
    attribution_days: int,
    occasion: str | None,
    days_before: int,
) -> None:
    """Create a draft campaign NAME (its message is variant A; add others with `variant`)."""
    text = _text(body, body_file, "--body")
    if text is None:
        raise click.UsageError("give the message with --body or --body-file")
    campaign = crm.campaigns.create(
        name,
        channel=channel,
        segment=_ref(segment) if segment else None,
        subject=subject,
        body=text,
        objective=objective,
        owner=owner,
        currency=currency,
        budget_minor=_minor(crm, budget, currency, "--budget"),
        cost_fixed_minor=_minor(crm, cost_fixed, currency, "--cost-fixed") or 0,
        cost_per_message_minor=_minor(crm, cost_per_message, currency, "--cost-per-message") or 0,
        holdout_percent=holdout,
        attribution_days=attribution_days,
        occasion=occasion,
        days_before=days_before,
    )
    emit_object(_campaign_row(campaign))


@campaigns.command("variant")
@click.argument("campaign")
@click.argument("name")
@click.option("--subject", help="Subject of this variant.")
@click.option("--body", help="Text of this variant.")
@click.option(
    "--body-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the text from a file."
)
@click.option("--weight", type=int, default=1, show_default=True, help="Share of customers, relative to the others.")
@click.option("--remove", is_flag=True, help="Remove the variant instead.")
@pass_crm
def variant(
    crm: CRM,
    campaign: str,
    name: str,
    subject: str | None,
    body: str | None,
    body_file: Path | None,
    weight: int,
    remove: bool,
) -> None:
    """Add, replace or remove message variant NAME of a draft CAMPAIGN (A/B tests)."""
    if remove:
        updated = crm.campaigns.remove_variant(_ref(campaign), name)
    else:
        text = _text(body, body_file, "--body")
        if text is None:
            raise click.UsageError("give the variant's text with --body or --body-file")
        updated = crm.campaigns.set_variant(_ref(campaign), name, body=text, subject=subject, weight=weight)
    emit([attrs.asdict(v) for v in updated.variants], ("name", "weight", "subject", "body"))


@campaigns.command("list")
@click.option(
    "--status", help="Only campaigns in this status (draft, scheduled, running, done, cancelled, transactional)."
)
@pass_crm
def list_campaigns(crm: CRM, status: str | None) -> None:
    """Campaigns, newest first."""
    emit(
        [_campaign_row(c) for c in crm.campaigns.list(status=status)],
        ("id", "name", "status", "channel", "segment", "occasion", "variants", "holdout", "scheduled_at"),
    )


@campaigns.command("show")
@click.argument("campaign")
@pass_crm
def show(crm: CRM, campaign: str) -> None:
    """A campaign: settings, costs and variants."""
    c = crm.campaigns.get(_ref(campaign))
    data = {
        **_campaign_row(c),
        "objective": c.objective,
        "owner": c.owner,
        "currency": c.currency,
        "budget": _money(c.budget_minor, c.currency),
        "cost_fixed": _money(c.cost_fixed_minor, c.currency),
        "cost_per_message": _money(c.cost_per_message_minor, c.currency),
        "attribution_days": c.attribution_days,
        "days_before": c.days_before if c.occasion else None,
        "started_at": c.started_at,
        "finished_at": c.finished_at,
        "created_by": c.created_by,
        "scheduled_by": c.scheduled_by,
    }
    if current_format() == "json":
        data["variants"] = [attrs.asdict(v) for v in c.variants]
    emit_object(data)
    if current_format() == "table":
        emit([attrs.asdict(v) for v in c.variants], ("name", "weight", "subject", "body"), title="\nVariants")


@campaigns.command("preview")
@click.argument("campaign")
@click.argument("customer_id", type=int)
@click.option("--variant", help="Show this variant instead of the customer's own.")
@pass_crm
def preview(crm: CRM, campaign: str, customer_id: int, variant: str | None) -> None:
    """The message CUSTOMER_ID would receive, and whether they would receive it."""
    p = crm.campaigns.preview(_ref(campaign), customer_id, variant=variant)
    if current_format() != "table":
        emit_object(attrs.asdict(p))
        return
    click.echo(f"To:      {p.to or '(no address)'}")
    click.echo(f"Variant: {p.variant}")
    click.echo(f"Sent:    {'yes' if p.eligible else 'no — ' + str(p.reason)}")
    if p.subject is not None:
        click.echo(f"Subject: {p.subject}")
    click.echo("")
    click.echo(p.text)


@campaigns.command("schedule")
@click.argument("campaign")
@click.option("--at", type=AWARE_DATETIME, help="When to send (with its time zone) [default: now].")
@pass_crm
def schedule(crm: CRM, campaign: str, at: Any) -> None:
    """Schedule CAMPAIGN (run-due sends it from then); activates an occasion campaign."""
    emit_object(_campaign_row(crm.campaigns.schedule(_ref(campaign), at)))


@campaigns.command("unschedule")
@click.argument("campaign")
@pass_crm
def unschedule(crm: CRM, campaign: str) -> None:
    """Take a scheduled CAMPAIGN back to draft."""
    emit_object(_campaign_row(crm.campaigns.unschedule(_ref(campaign))))


def _run_rows(results: list[RunResult]) -> list[dict[str, Any]]:
    return [
        {
            "campaign": r.campaign_name or r.campaign_id,
            "run": r.run_id,
            "period": r.period or None,
            "occasion_date": r.occasion_date,
            "audience": r.audience,
            "queued": r.queued,
            "holdout": r.holdout,
            "excluded": ", ".join(f"{k} {v}" for k, v in r.excluded.items()) or None,
            "send_at": r.send_at,
        }
        for r in results
    ]


RUN_COLUMNS = ("campaign", "run", "period", "occasion_date", "audience", "queued", "holdout", "excluded", "send_at")


@campaigns.command("run")
@click.argument("campaign")
@pass_crm
def run(crm: CRM, campaign: str) -> None:
    """Prepare CAMPAIGN's messages now (consent, frequency cap, holdout, A/B); `dispatch` sends them."""
    result = crm.campaigns.run(_ref(campaign))
    emit(_run_rows([result]), RUN_COLUMNS)


@campaigns.command("run-due")
@click.option(
    "--dispatch/--no-dispatch",
    "then_dispatch",
    default=True,
    show_default=True,
    help="Deliver the queued messages afterwards.",
)
@pass_crm
def run_due(crm: CRM, then_dispatch: bool) -> None:
    """For cron: run scheduled campaigns whose time came and today's occasions, then dispatch."""
    due = crm.campaigns.run_due()
    emit(_run_rows(list(due.runs)), RUN_COLUMNS)
    for name, error in due.errors.items():
        click.echo(f"error: campaign {name}: {error}", err=True)
    if then_dispatch:
        _print_dispatch(crm.campaigns.dispatch())
    if due.errors:
        raise SystemExit(1)


def _print_dispatch(report: Any) -> None:
    if report.quiet_until:
        click.echo(f"quiet hours: nothing sent before {report.quiet_until.isoformat(timespec='minutes')}", err=True)
    for error in report.errors:
        click.echo(f"warning: {error}", err=True)
    emit(
        [
            {
                "sent": report.sent,
                "retrying": report.retrying,
                "failed": report.failed,
                "recovered": report.recovered,
                "unconfirmed": report.unconfirmed,
                "no_adapter": report.skipped,
                "finished_campaigns": ", ".join(map(str, report.finished_campaigns)) or None,
            }
        ],
        ("sent", "retrying", "failed", "recovered", "unconfirmed", "no_adapter", "finished_campaigns"),
    )


@campaigns.command("dispatch")
@click.option("--limit", type=int, help="Send at most this many messages.")
@click.option(
    "--retry-unconfirmed",
    is_flag=True,
    help="Send again the messages whose outcome is unknown (after checking the provider did not deliver them).",
)
@pass_crm
def dispatch(crm: CRM, limit: int | None, retry_unconfirmed: bool) -> None:
    """Deliver queued messages (retries with backoff; safe to run from several processes)."""
    _print_dispatch(crm.campaigns.dispatch(limit=limit, retry_unconfirmed=retry_unconfirmed))


@campaigns.command("cancel")
@click.argument("campaign")
@pass_crm
def cancel(crm: CRM, campaign: str) -> None:
    """Cancel CAMPAIGN: messages not yet sent are dropped."""
    emit_object(_campaign_row(crm.campaigns.cancel(_ref(campaign))))


@campaigns.command("messages")
@click.argument("campaign")
@click.option("--status", help="Only messages in this status (queued, sent, failed, unconfirmed, excluded…).")
@click.option("--limit", default=50, show_default=True)
@pass_crm
def messages(crm: CRM, campaign: str, status: str | None, limit: int) -> None:
    """A campaign's messages, newest first."""
    emit(
        crm.campaigns.messages(_ref(campaign), status=status, limit=limit),
        ("id", "customer_id", "status", "reason", "attempts", "next_attempt_at", "sent_at", "address", "last_error"),
    )


#: The lift's verdict when the sample is too small (``reports.too_few``), for its translation in a table.
VERDICT_PATTERNS = (
    (
        re.compile(
            r"too few to call: (?P<treated>\d+) treated and (?P<held>\d+) held-out customers, (?P<conversions>\d+) "
            r"conversions \(significance needs at least (?P<per_group>\d+) customers in each group and "
            r"(?P<needed>\d+) conversions\)"
        ),
        "too few to call: %(treated)s treated and %(held)s held-out customers, %(conversions)s conversions "
        "(significance needs at least %(per_group)s customers in each group and %(needed)s conversions)",
    ),
)


@campaigns.command("report")
@click.argument("campaign", nargs=-1)
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Also draw a chart (.png or .svg).")
@pass_crm
def report(crm: CRM, campaign: tuple[str, ...], chart: Path | None) -> None:
    """ROI report of one campaign per variant and holdout, or a comparison of several (all that ran by default).

    A table speaks the reader's language (rates as percentages, amounts the local way); JSON and CSV keep
    rates as 4-decimal ratios and amounts as ``1.234.567 ₫`` in every locale."""
    from crmkit_campaigns.reports import chart as draw
    from crmkit_campaigns.reports import comparison_rows

    t = current_translator()
    table = current_format() == "table"
    if len(campaign) == 1:
        found = [crm.campaigns.report(_ref(campaign[0]))]
        _print_report(found[0], t if table else None)
    else:
        found = crm.campaigns.compare([_ref(x) for x in campaign] or None)
        rows = comparison_rows(found)
        for row in rows:
            row["revenue"] = _money(row.pop("revenue_minor"), row["currency"])
            row["cost"] = _money(row.pop("cost_minor"), row["currency"])
            if table:
                row["status"] = _status(t, row["status"])
                row.update(
                    {
                        key: _percent(row[key])
                        for key in (
                            "open_rate",
                            "click_rate",
                            "conversion_rate",
                            "roi",
                            "lift",
                            "lift_low",
                            "lift_high",
                        )
                    }
                )
        emit(
            rows,
            (
                "id",
                "campaign",
                "status",
                "channel",
                "audience",
                "excluded",
                "sent",
                "open_rate",
                "click_rate",
                "conversion_rate",
                "revenue",
                "cost",
                "roi",
                "lift",
                "lift_low",
                "lift_high",
            ),
        )
        if found and found[0].scoped_to:
            click.echo(t.gettext("scope: %(scope)s") % {"scope": _scope(found[0].scoped_to, t.gettext)}, err=True)
    if chart is not None and found:
        written = draw(found, chart, t.gettext)
        click.echo(t.gettext("chart written to %(file)s") % {"file": written}, err=True)


def _print_report(r: CampaignReport, t: Translator | None) -> None:
    """One campaign's report: its figures, then one row per group; in ``t``'s words in a table (``t`` given),
    else for JSON and CSV as they have always been written."""
    from crmkit.plugin_api import translate_message
    from crmkit_campaigns.console import REASONS

    c = r.campaign
    said: Callable[[str], str] = t.gettext if t else str
    if t:  # "on the suppression list: 3; no consent for this channel: 1"
        excluded = "; ".join(f"{t.gettext(REASONS.get(k, k))}: {t.format_number(v)}" for k, v in r.excluded.items())
    else:  # "suppressed 3, no_consent 1", as JSON and CSV have always written it
        excluded = ", ".join(f"{k} {v}" for k, v in r.excluded.items())
    emit_object(
        {
            "campaign": c.name,
            "status": _status(t, c.status) if t else c.status,
            "scope": _scope(r.scoped_to, said),
            "audience": r.audience,
            "excluded": excluded or said("none"),
            "holdout": r.holdout,
            "waiting": r.pending,
            "unconfirmed": r.unconfirmed,
            "revenue": _money(r.revenue_minor, c.currency),
            "cost": _money(r.cost_minor, c.currency),
            "roi": _percent(r.roi) if t else r.roi,
            "lift": _lift(r.lift, t, whole=True),
            "significance": (translate_message(t, r.lift.verdict, VERDICT_PATTERNS) if t else r.lift.verdict)
            if r.lift
            else None,
            "incremental_revenue": _money(r.lift.incremental_revenue_minor, c.currency) if r.lift else None,
        }
    )
    rows = []
    for row in r.as_rows():
        lift = row.pop("lift")
        row["revenue"] = _money(row.pop("revenue_minor"), c.currency)
        row["lift"] = _lift(lift, t, whole=False)
        if t:
            row["group"] = _group(t, row["group"])
            row.update(
                {
                    key: _percent(row[key])
                    for key in ("delivery_rate", "open_rate", "click_rate", "response_rate", "conversion_rate")
                }
            )
        rows.append(row)
    emit(
        rows,
        (
            "group",
            "customers",
            "sent",
            "delivery_rate",
            "open_rate",
            "click_rate",
            "response_rate",
            "conversion_rate",
            "converted",
            "revenue",
            "lift",
        ),
        title="\n"
        + (t.gettext("By group: rates over messages sent, conversion over the group's customers") if t else "By group"),
    )


def _percent(ratio: Decimal | None) -> Percent | None:
    """A ratio a table shows as a percentage the reader's way (vi ``42,5%``)."""
    return None if ratio is None else Percent(ratio)


def _lift(lift: Lift | None, t: Translator | None, *, whole: bool) -> str | None:
    """The lift with its 95 % interval: ``+19,3% (KTC 95% +10,9% … +26,7%)`` in ``t``'s words, or as JSON and CSV
    have always written it (``+19.33% (95% CI +10.87% … +26.68%)``; per group ``+21.73% [+12.13%, +30.47%]``)."""
    if lift is None:
        return None
    if t is None:
        if whole:
            return f"{lift.difference:+.2%} (95% CI {lift.low:+.2%} … {lift.high:+.2%})"
        return f"{lift.difference:+.2%} [{lift.low:+.2%}, {lift.high:+.2%}]"

    def signed(ratio: Decimal) -> str:
        return ("+" if ratio > 0 else "") + t.format_percent(ratio)

    parts = {"difference": signed(lift.difference), "low": signed(lift.low), "high": signed(lift.high)}
    if whole:
        return t.gettext("%(difference)s (95%% CI %(low)s … %(high)s)") % parts
    return f"{parts['difference']} [{parts['low']} … {parts['high']}]"


def _status(t: Translator, status: str) -> Coded:
    """A campaign's status in the reader's words (the console's), its code in JSON and CSV."""
    from crmkit_campaigns.console import STATUSES

    return Coded(status, t.gettext(STATUSES.get(status, status)))


def _group(t: Translator, name: str) -> Coded:
    """A report group in the reader's words: a variant, everyone who got the campaign, the control group."""
    from crmkit_campaigns.reports import HOLDOUT

    label = {"all": t.gettext("All who got it"), HOLDOUT: t.gettext("Control group")}.get(name)
    return Coded(name, label or t.gettext("Variant %(name)s") % {"name": name})


def _scope(user: str | None, gettext: Callable[[str], str] = str) -> str:
    """What a report's figures cover, in words (``gettext``'s language; English for JSON and CSV)."""
    if user is None:
        return gettext("all customers")
    return gettext("only the customers in %(user)s's scope (fixed cost left out)") % {"user": user}


@campaigns.command("webhook-token")
@pass_crm
def webhook_token(crm: CRM) -> None:
    """The bearer token providers send to POST /campaigns/t/events."""
    click.echo(crm.campaigns.webhook_token())


@campaigns.group()
def keys() -> None:
    """The keys that sign tracking links and the webhook token: list and rotate."""


@keys.command("rotate")
@click.option(
    "--grace-days",
    type=click.IntRange(0, 3650),
    default=90,
    show_default=True,
    help="Days the older keys still verify (links already sent, the old webhook token).",
)
@pass_crm
def keys_rotate(crm: CRM, grace_days: int) -> None:
    """Sign new links and the webhook token with a new key; older keys verify for --grace-days more."""
    new_id = crm.campaigns.rotate_signing_key(timedelta(days=grace_days))
    emit(crm.campaigns.signing_keys(), ("id", "state", "created_at", "expires_at"))
    click.echo(
        f"key {new_id} signs from now on; give providers the new `crmkit campaigns webhook-token` "
        f"within {grace_days} days",
        err=True,
    )


@keys.command("list")
@pass_crm
def keys_list(crm: CRM) -> None:
    """The signing keys: id, state (signing, verifying, expired) and dates — never key material."""
    emit(crm.campaigns.signing_keys(), ("id", "state", "created_at", "expires_at"))


# --- channels, settings, suppressions -----------------------------------------------------------------


@campaigns.group()
def channel() -> None:
    """Which adapter delivers each channel."""


@channel.command("set")
@click.argument("name")
@click.argument("adapter", type=LazyChoice("crmkit_campaigns.channels:ADAPTER_TYPES"))
@click.argument("options", nargs=-1, type=KEY_VALUE)
@pass_crm
def channel_set(crm: CRM, name: str, adapter: str, options: tuple[tuple[str, Any], ...]) -> None:
    """Deliver channel NAME with ADAPTER and its OPTIONS (KEY=VALUE), e.g.

    \b
      email smtp host=smtp.example.vn port=587 starttls=true sender="Shop <hi@shop.vn>" username=hi password_env=SMTP_PASSWORD
      sms webhook url=https://sms.example.vn/send token_env=SMS_TOKEN
      email file directory=./outbox
    """
    config = crm.campaigns.set_channel(name, adapter, **dict(options))
    emit_object({"channel": name, **redact_options(config)})


@channel.command("remove")
@click.argument("name")
@pass_crm
def channel_remove(crm: CRM, name: str) -> None:
    """Forget the adapter configured for channel NAME."""
    crm.campaigns.remove_channel(name)
    click.echo(f"channel {name} is no longer configured", err=True)


@campaigns.command("channels")
@pass_crm
def channels(crm: CRM) -> None:
    """Channels that can send, with their adapter."""
    emit(crm.campaigns.channel_list(), ("channel", "adapter", "address_kind", "idempotent", "source", "options"))


@campaigns.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@pass_crm
def config(crm: CRM, key: str | None, value: str | None) -> None:
    """Show the settings, or set KEY to VALUE (timezone, quiet_hours 21:00-08:00, frequency_cap 3/7d,
    base_url, founding_day DD/MM, max_attempts, backoff_seconds, lease_seconds)."""
    if key is None or value is None:
        settings = crm.campaigns.settings
        shown = {
            "timezone": settings.zone.key,
            "quiet_hours": str(settings.quiet_hours or "none"),
            "frequency_cap": f"{settings.frequency_cap[0]}/{settings.frequency_cap[1]}d"
            if settings.frequency_cap
            else "none",
            "base_url": redact_url(settings.base_url),
            "founding_day": "/".join(f"{n:02d}" for n in settings.founding_day) if settings.founding_day else None,
            "max_attempts": settings.max_attempts,
            "backoff_seconds": settings.backoff_seconds,
            "lease_seconds": settings.lease_seconds,
        }
        emit_object({k: v for k, v in shown.items() if key is None or k == key})
        return
    parsed: Any = (
        int(value) if value.isdigit() and key in ("max_attempts", "backoff_seconds", "lease_seconds") else value
    )
    emit_object(redact_options({key: crm.campaigns.configure(key, parsed)}))


@campaigns.command("suppress")
@click.option("--address", help="E-mail address or phone number.")
@click.option("--customer", "customer_id", type=int, help="Customer id.")
@click.option("--channel", "channel_name", help="Only this channel [default: all].")
@click.option("--reason", required=True, help="Why (kept with the entry).")
@pass_crm
def suppress(crm: CRM, address: str | None, customer_id: int | None, channel_name: str | None, reason: str) -> None:
    """Put an address or a customer on the suppression list."""
    new_id = crm.campaigns.suppress(address=address, customer_id=customer_id, channel=channel_name, reason=reason)
    emit_object({"id": new_id, "address": address, "customer_id": customer_id, "channel": channel_name or "all"})


@campaigns.command("unsuppress")
@click.argument("suppression_id", type=int)
@pass_crm
def unsuppress(crm: CRM, suppression_id: int) -> None:
    """Take entry SUPPRESSION_ID off the suppression list."""
    crm.campaigns.unsuppress(suppression_id)
    click.echo(f"suppression {suppression_id} removed", err=True)


@campaigns.command("suppressions")
@click.option("--limit", default=100, show_default=True)
@pass_crm
def suppressions(crm: CRM, limit: int) -> None:
    """The suppression list, newest first."""
    emit(crm.campaigns.suppressions(limit=limit), ("id", "address", "customer_id", "channel", "reason", "created_at"))
