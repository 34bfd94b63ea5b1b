"""The campaigns plugin's part of the web console: segments built with a live count, campaigns created, previewed,
run or scheduled, their reports with a chart; a "Campaign messages" panel on the customer 360 and a "Campaign
results" tile on the home page.

Every page calls ``crm.campaigns`` as the signed-in user — the calls the CLI and the HTTP API make — so the
plugin's permissions and scopes, consent, suppressions and the frequency cap hold here too. Templates live in
``crmkit_campaigns/console_templates/`` (``templates.py`` is the message-template module), texts in
``crmkit_campaigns/locale/vi/LC_MESSAGES/crmkit_campaigns.po``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile, static_files
from crmkit.errors import Conflict, ValidationError
from crmkit.money import Money
from crmkit.plugin_api import form_errors
from crmkit_campaigns.permissions import CHANNELS, MANAGE, READ, REPORTS, SEGMENTS_MANAGE, SEGMENTS_READ, SEND
from crmkit_campaigns.reports import HOLDOUT
from crmkit_campaigns.segment_language import SegmentSyntaxError

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.crm import CRM
    from crmkit.plugin_api import ConsoleRequest, Customer
    from crmkit_campaigns.objects import Campaign, Preview
    from crmkit_campaigns.reports import CampaignReport, Group

CAMPAIGNS = "/console/campaigns/"
SEGMENTS = "/console/campaigns/segments"
TEMPLATES = "crmkit_campaigns:console_templates/"
#: Campaigns the home tile shows, the latest that have run.
TILE_CAMPAIGNS = 4
#: Messages the customer-360 panel shows, the latest first.
PANEL_MESSAGES = 10
#: Customers offered for a preview (a random handful of the campaign's audience).
PREVIEW_CHOICES = 10
CAMPAIGN_FIELDS = (
    "name",
    "segment",
    "channel",
    "subject",
    "body",
    "holdout_percent",
    "cost_fixed",
    "cost_per_message",
    "budget",
)
SEGMENT_FIELDS = ("name", "expression", "description")
#: Campaign status → its msgid.
STATUSES = {
    "draft": "Draft",
    "scheduled": "Scheduled",
    "running": "Running",
    "done": "Done",
    "cancelled": "Cancelled",
    "transactional": "Transactional",
}
#: A message's status (or, once sent, what the customer did with it) → its msgid.
PROGRESS = {
    "queued": "Waiting to be sent",
    "claimed": "Being sent",
    "sending": "Being sent",
    "sent": "Sent",
    "unconfirmed": "Sent, not confirmed",
    "bounced": "Bounced",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "excluded": "Not sent",
    HOLDOUT: "Held out (control group)",
    "delivered": "Received",
    "opened": "Opened",
    "clicked": "Clicked",
    "responded": "Replied",
    "unsubscribed": "Unsubscribed",
}
#: Why a customer gets no message → its msgid.
REASONS = {
    "suppressed": "on the suppression list",
    "no_consent": "no consent for this channel",
    "no_address": "no address for this channel",
    "frequency_cap": "already has enough messages (frequency cap)",
    HOLDOUT: "held out as the control group",
    "not_in_audience": "not in the campaign's audience",
    "campaign_cancelled": "the campaign was cancelled",
}
_KEEP_SPACES = ("body", "subject", "expression")
#: A segment field's type → its msgid (the builder's list of fields).
FIELD_TYPES = {
    "number": "number",
    "name": "text",
    "text": "text",
    "choice": "one of a list",
    "date": "date",
    "datetime": "date and time",
    "boolean": "true or false",
}
#: What the customer did with a sent message, the furthest first: (column, progress).
_ENGAGEMENT = (
    ("unsubscribed_at", "unsubscribed"),
    ("responded_at", "responded"),
    ("clicked_at", "clicked"),
    ("opened_at", "opened"),
    ("delivered_at", "delivered"),
)


# -- shared bits ------------------------------------------------------------------------------------------


def _errors(exc: ValidationError, fields: tuple[str, ...]) -> dict[str, list[str]]:
    """The service's messages by form input; a field the form does not have goes under ``_`` (shown on top)."""
    return form_errors(exc, fields)


def _form(request: ConsoleRequest, names: tuple[str, ...]) -> dict[str, str]:
    """The posted values of ``names``; the texts the service checks by line and column keep their spaces."""
    form = request.http.form
    return {name: form.get(name, "") if name in _KEEP_SPACES else form.get(name, "").strip() for name in names}


def _refused(exc: Exception) -> str:
    """A refusal of the service as one sentence."""
    if isinstance(exc, ValidationError):
        return "; ".join(m for ms in _errors(exc, ()).values() for m in ms)
    return str(exc)


@attrs.frozen
class LiveCount:
    """What the segment builder shows under the definition: how many customers match, or where it is wrong."""

    expression: str
    customers: int | None = None
    error: str | None = None
    column: int | None = None  # 1-based, where the parser stopped

    @property
    def before(self) -> str:
        """The definition up to the mistake (the page marks the rest)."""
        return self.expression[: (self.column or 1) - 1]

    @property
    def after(self) -> str:
        return self.expression[(self.column or 1) - 1 :]


def live_count(crm: CRM, expression: str) -> LiveCount:
    """Count the customers ``expression`` matches now (in the user's scope), or say what is wrong with it."""
    given = expression if expression.strip() else None  # not stripped: the parser's column is in the text as typed
    try:
        return LiveCount(expression, crm.campaigns.segments.count(expression=given))
    except SegmentSyntaxError as exc:
        return LiveCount(expression, error=exc.detail, column=exc.column)
    except ValidationError as exc:
        return LiveCount(expression, error=_refused(exc))


# -- segments ---------------------------------------------------------------------------------------------


def segment_list(request: ConsoleRequest) -> Response:
    """The saved segments with how many customers (in the user's scope) each holds now."""
    segments = request.crm.campaigns.segments
    rows = [(segment, live_count(request.crm, segment.expression)) for segment in segments.list()]
    return request.render(TEMPLATES + "segments.html", rows=rows, saved=request.http.args.get("saved"))


def segment_count(request: ConsoleRequest) -> Response:
    """The live count under the builder's definition (htmx calls it as the marketer types)."""
    return request.render(
        TEMPLATES + "segment_count.html", live=live_count(request.crm, request.http.args.get("expression", ""))
    )


def segment_new(request: ConsoleRequest) -> Response:
    """The segment builder: a definition in the filter language, its live count, and the fields it may use."""
    crm, values, errors, status = request.crm, dict.fromkeys(SEGMENT_FIELDS, ""), {}, 200
    if request.http.method == "POST":
        values = _form(request, SEGMENT_FIELDS)
        try:
            made = crm.campaigns.segments.create(
                values["name"], values["expression"], description=values["description"] or None
            )
        except ValidationError as exc:
            errors, status = _errors(exc, SEGMENT_FIELDS), 422
        except Conflict as exc:
            errors, status = {"name": [str(exc)]}, 409
        else:
            return request.redirect(SEGMENTS, saved=made.name)
    return request.render(
        TEMPLATES + "segment_form.html",
        status=status,
        values=values,
        errors=errors,
        live=live_count(crm, values["expression"]),
        fields=crm.campaigns.segments.fields().values(),
        field_types=FIELD_TYPES,
    )


# -- campaigns --------------------------------------------------------------------------------------------


def campaign_list(request: ConsoleRequest) -> Response:
    """Every campaign, newest first, with its status, channel and audience."""
    return request.render(TEMPLATES + "campaigns.html", campaigns=request.crm.campaigns.list(), statuses=STATUSES)


def _currency(crm: CRM) -> str:
    """The currency new campaigns are kept in (the business's; the service picks the same)."""
    return str(crm.settings.get("currency") or "VND").upper()


def _amount(values: dict[str, str], name: str, currency: str, errors: dict[str, list[str]]) -> int | None:
    """The minor units of the amount typed in ``name`` (None when left empty); a typo becomes the field's error."""
    if not values[name]:
        return None
    try:
        return Money.parse(values[name], currency).minor
    except ValueError as exc:
        errors[name] = [str(exc)]
        return None


def campaign_new(request: ConsoleRequest) -> Response:
    """The new-campaign form: name, audience (a saved segment or everyone), channel, the message; saved as a draft
    through ``crm.campaigns.create`` (a template mistake is shown by its field, with its line and column)."""
    from crmkit.plugin_api import channel_label  # phonenumbers: loaded when a page needs it

    crm, currency = request.crm, _currency(request.crm)
    values = {
        **dict.fromkeys(CAMPAIGN_FIELDS, ""),
        "channel": "email",
        "holdout_percent": "0",
        "segment": request.http.args.get("segment", ""),
    }
    errors: dict[str, list[str]] = {}
    status = 200
    if request.http.method == "POST":
        values = _form(request, CAMPAIGN_FIELDS)
        options = {
            "cost_fixed_minor": _amount(values, "cost_fixed", currency, errors) or 0,
            "cost_per_message_minor": _amount(values, "cost_per_message", currency, errors) or 0,
            "budget_minor": _amount(values, "budget", currency, errors),
        }
        try:
            options["holdout_percent"] = Decimal(values["holdout_percent"] or "0")
        except ArithmeticError:
            errors["holdout_percent"] = [request.i18n.gettext("Give a percentage between 0 and 50.")]
        if not errors:
            try:
                made = crm.campaigns.create(
                    values["name"],
                    channel=values["channel"],
                    body=values["body"],
                    subject=values["subject"] or None,
                    segment=int(values["segment"]) if values["segment"].isdigit() else None,
                    **options,
                )
            except ValidationError as exc:
                errors = _errors(exc, CAMPAIGN_FIELDS)
            except Conflict as exc:
                errors = {"name": [str(exc)]}
            else:
                return request.redirect(f"{CAMPAIGNS}{made.id}", saved=1)
        status = 422
    segments = [(str(s.id), s.name) for s in crm.campaigns.segments.list()] if request.allowed(SEGMENTS_READ) else []
    ready = [c["channel"] for c in crm.campaigns.channel_list()] if request.allowed(CHANNELS) else []
    channels = [(channel, channel_label(request.i18n, channel)) for channel in ready or crm.channels]
    return request.render(
        TEMPLATES + "campaign_form.html",
        status=status,
        values=values,
        errors=errors,
        segments=segments,
        channels=channels,
        currency=currency,
    )


def _preview(request: ConsoleRequest, campaign: Campaign) -> tuple[Preview | None, str | None]:
    """The preview for the customer chosen in ``?customer=`` (None when none is), or why there is none (no
    adapter delivers the channel…); a customer out of the user's reach is the 404 page."""
    chosen = request.http.args.get("customer", "")
    if not chosen.isdigit():
        return None, None
    try:
        return request.crm.campaigns.preview(campaign.id, int(chosen)), None
    except ValidationError as exc:
        return None, _refused(exc)


def campaign_detail(request: ConsoleRequest, *, error: str | None = None, status: int = 200) -> Response:
    """A campaign: its settings and message, a preview for a chosen customer, and run now / schedule."""
    crm = request.crm
    campaign = crm.campaigns.get(request.params["campaign_id"])
    choices = []
    if request.allowed(SEGMENTS_READ):
        try:
            choices = [
                (str(c["id"]), c["name"])
                for c in crm.campaigns.segments.sample(campaign.segment_id, limit=PREVIEW_CHOICES)
            ]
        except ValidationError:  # its definition names a field gone with an uninstalled plugin
            choices = []
    preview, preview_error = _preview(request, campaign)
    if preview is not None and str(preview.customer_id) not in dict(choices):
        choices.insert(0, (str(preview.customer_id), crm.customers.get(preview.customer_id).name))
    runnable = campaign.status in ("draft", "scheduled", "running") and not campaign.occasion
    return request.render(
        TEMPLATES + "campaign.html",
        status=status,
        campaign=campaign,
        statuses=STATUSES,
        choices=choices,
        preview=preview,
        preview_error=preview_error,
        reasons=REASONS,
        error=error,
        saved=request.http.args.get("saved"),
        can_run=runnable and request.allowed(SEND),
        can_schedule=campaign.status == "draft" and request.allowed(SEND) and request.allowed(MANAGE),
        can_report=campaign.status != "draft" and request.allowed(REPORTS),
        money=lambda minor: Money(campaign.currency, minor),
    )


def campaign_preview(request: ConsoleRequest) -> Response:
    """The message the chosen customer would receive, and whether they would (swapped in by htmx)."""
    campaign = request.crm.campaigns.get(request.params["campaign_id"])
    preview, preview_error = _preview(request, campaign)
    return request.render(
        TEMPLATES + "preview.html", campaign=campaign, preview=preview, preview_error=preview_error, reasons=REASONS
    )


def campaign_run(request: ConsoleRequest) -> Response:
    """Run now: prepare the messages for the customers in the user's scope (consent, suppressions and the cap
    applied); the worker sends them. A refusal (nobody may receive it, over budget…) stays on the page."""
    campaign_id = request.params["campaign_id"]
    try:
        request.crm.campaigns.run(campaign_id)
    except (ValidationError, Conflict) as exc:
        return campaign_detail(request, error=_refused(exc), status=409 if isinstance(exc, Conflict) else 422)
    if request.allowed(REPORTS):
        return request.redirect(f"{CAMPAIGNS}{campaign_id}/report", ran=1)
    return request.redirect(f"{CAMPAIGNS}{campaign_id}", saved=1)


def campaign_schedule(request: ConsoleRequest) -> Response:
    """Schedule a draft for a local time the user picks (in their own time zone); ``run-due`` sends it then."""
    from crmkit.vncalendar import zone_named

    user, campaign_id = request.user, request.params["campaign_id"]
    zone = zone_named(user.timezone) if user and user.timezone else request.crm.timezone
    try:
        at = datetime.fromisoformat(request.http.form.get("at", "").strip()).replace(tzinfo=zone)
    except ValueError:
        return campaign_detail(request, error=request.i18n.gettext("Pick the day and time to send it."), status=422)
    try:
        request.crm.campaigns.schedule(campaign_id, at)
    except (ValidationError, Conflict) as exc:
        return campaign_detail(request, error=_refused(exc), status=409 if isinstance(exc, Conflict) else 422)
    return request.redirect(f"{CAMPAIGNS}{campaign_id}", saved=1)


@attrs.frozen
class KeyFigure:
    """One headline number of a report: a count, the rate it makes, or an amount."""

    label: str  # a msgid
    value: Any  # int, Money or Decimal ratio (None: not applicable)
    rate: Decimal | None = None
    kind: str = "number"  # number | money | percent


def figures(report: CampaignReport) -> list[KeyFigure]:
    """The report's headline: sent, delivered, opened, clicked, converted (with their rates), revenue, cost, ROI."""
    t: Group = report.treated
    currency = report.campaign.currency
    return [
        KeyFigure("Audience", report.audience),
        KeyFigure("Sent", t.sent),
        KeyFigure("Received", t.delivered, t.rate(t.delivered)),
        KeyFigure("Opened", t.opened, t.rate(t.opened)),
        KeyFigure("Clicked", t.clicked, t.rate(t.clicked)),
        KeyFigure("Converted", t.converted, t.conversion_rate),
        KeyFigure("Revenue", Money(currency, report.revenue_minor), kind="money"),
        KeyFigure("Cost", Money(currency, report.cost_minor), kind="money"),
        KeyFigure("ROI", report.roi, kind="percent"),
    ]


def _chart(request: ConsoleRequest, report: CampaignReport) -> str | None:
    """The report's chart as a ``data:`` URL of an SVG in the user's language; None without matplotlib."""
    from crmkit_campaigns.reports import chart_svg

    try:
        drawing = chart_svg([report], request.i18n.gettext)
    except ValidationError:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(drawing).decode("ascii")


def campaign_report(request: ConsoleRequest) -> Response:
    """The report: headline figures, a chart of conversion (with the holdout) and revenue vs cost, the groups
    as a table (what the chart shows, for screen readers too), the lift over the holdout, who was left out."""
    report = request.crm.campaigns.report(request.params["campaign_id"])
    currency = report.campaign.currency
    return request.render(
        TEMPLATES + "report.html",
        report=report,
        figures=figures(report),
        chart=_chart(request, report),
        statuses=STATUSES,
        reasons=REASONS,
        ran=request.http.args.get("ran"),
        money=lambda minor: Money(currency, minor),
    )


# -- the customer 360 and the home page -------------------------------------------------------------------


@attrs.frozen
class MessageLine:
    """One message of the 360 panel: the campaign, when, and how far it got."""

    campaign_id: int
    campaign: str
    channel: str
    at: datetime
    progress: str  # a key of PROGRESS
    reason: str | None


def progress(message: Mapping[str, Any]) -> tuple[str, datetime]:
    """How far a message got — for a sent one, the furthest thing the customer did — and when."""
    if message["status"] in ("sent", "unconfirmed"):
        for column, stage in _ENGAGEMENT:
            if message[column] is not None:
                return stage, message[column]
    return message["status"], message["sent_at"] or message["queued_at"]


def customer_messages(crm: CRM, customer: Customer) -> dict[str, Any]:
    """The panel's data: the customer's latest campaign messages and their suppression entries."""
    lines = []
    for message in crm.campaigns.customer_messages(customer.id, limit=PANEL_MESSAGES):
        stage, at = progress(message)
        lines.append(
            MessageLine(message["campaign_id"], message["campaign"], message["channel"], at, stage, message["reason"])
        )
    return {
        "messages": lines,
        "suppressions": crm.campaigns.suppressions(customer_id=customer.id, limit=20),
        "progress": PROGRESS,
        "reasons": REASONS,
    }


def campaign_results(crm: CRM) -> list[tuple[Campaign, Group]]:
    """The tile's data: the latest campaigns that have run, each with its treated group's figures (none for a
    user who may read reports but not the campaigns themselves)."""
    if not crm.access.allowed(READ):
        return []
    latest = [c for status in ("running", "done") for c in crm.campaigns.list(status=status, limit=TILE_CAMPAIGNS)]
    ran = sorted((c.id for c in latest), reverse=True)[:TILE_CAMPAIGNS]
    return [(report.campaign, report.treated) for report in crm.campaigns.compare(ran)] if ran else []


# -- hooks ------------------------------------------------------------------------------------------------


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    one = CAMPAIGNS + "<int:campaign_id>"
    return [
        ConsolePage(CAMPAIGNS, campaign_list, permission=READ),
        ConsolePage(CAMPAIGNS + "new", campaign_new, methods=("GET", "POST"), permission=MANAGE),
        ConsolePage(one, campaign_detail, permission=READ),
        ConsolePage(one + "/preview", campaign_preview, permission=READ),
        ConsolePage(one + "/run", campaign_run, methods=("POST",), permission=SEND),
        ConsolePage(one + "/schedule", campaign_schedule, methods=("POST",), permission=SEND),
        ConsolePage(one + "/report", campaign_report, permission=REPORTS),
        ConsolePage(SEGMENTS, segment_list, permission=SEGMENTS_READ),
        ConsolePage(SEGMENTS + "/new", segment_new, methods=("GET", "POST"), permission=SEGMENTS_MANAGE),
        ConsolePage(SEGMENTS + "/count", segment_count, permission=SEGMENTS_READ),
        static_files("campaigns", "crmkit_campaigns"),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    return [MenuEntry("Campaigns", CAMPAIGNS, READ), MenuEntry("Segments", SEGMENTS, SEGMENTS_READ)]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    # named "campaigns" so it takes the place of the raw "campaigns" section of the customer profile
    return [Panel("campaigns", "Campaign messages", TEMPLATES + "panel.html", customer_messages, permission=READ)]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    return [Tile("campaign-results", "Campaign results", TEMPLATES + "tile.html", campaign_results, permission=REPORTS)]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_campaigns", "crmkit_campaigns")]  # crmkit_campaigns/locale/vi/LC_MESSAGES/crmkit_campaigns.po
