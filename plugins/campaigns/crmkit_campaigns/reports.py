"""ROI and lift of campaigns, per variant and against the holdout, computed in SQL over the outbox.

Definitions (documented in the README):

* **rates** are per message handed to the provider (``sent``): delivered, opened, clicked, responded, unsubscribed;
* a **conversion** is a customer with at least one purchase in the campaign's currency within
  ``attribution_days`` after the message was sent — for a held-out customer, after the time the run
  would have sent it. Purchases come from every ``crmkit_value_transactions`` source (sales), net of refunds;
* **attributed revenue** is the sum of those purchases; **cost** = fixed cost + cost per message × messages sent;
  **ROI** = (revenue − cost) / cost (none without a cost);
* **lift** compares the conversion rate of everyone drawn into the campaign (``treated``: every eligible,
  non-held-out customer, sent or not — intention to treat) with the holdout's. Its 95 % confidence
  interval is Newcombe's hybrid score interval for a difference of two proportions (Newcombe 1998,
  method 10): with ``[l₁, u₁]`` and ``[l₀, u₀]`` the Wilson score intervals of each rate,
  ``[d − √((p₁ − l₁)² + (u₀ − p₀)²), d + √((u₁ − p₁)² + (p₀ − l₀)²)]`` for ``d = p₁ − p₀``; unlike the
  normal approximation it stays within −100 % … +100 % and keeps its coverage on small groups and rates
  near 0 or 1. The statistics are computed in floating point (they are estimates, not money) and
  reported as 4-decimal ``Decimal``. The lift is **significant** when the interval excludes 0 *and*
  the sample is large enough to call: at least :data:`MIN_PER_GROUP` customers in each group and
  :data:`MIN_CONVERSIONS` conversions in the two groups together; below that ``significant`` is False
  and ``note`` says why. Incremental revenue is ``(revenue₁/n₁ − revenue₀/n₀) · n₁``.

A user whose ``campaigns.reports.read`` scope is narrower than ``all`` gets a **scoped** report:
every figure counts only the messages to customers in the scope (the predicate is in the SQL), the
cost is the per-message cost of those messages (the campaign's fixed cost is left out: it is not
theirs to divide), and ``scoped_to`` names the user.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import purchases
from crmkit_campaigns import models as m
from crmkit_campaigns.objects import HANDED_OVER, PENDING_STATUSES, Campaign
from crmkit_campaigns.permissions import REPORTS

if TYPE_CHECKING:
    from crmkit.crm import CRM

Z95 = 1.959964
#: Fewer customers than this in the treated group or the holdout: the lift is never called significant.
MIN_PER_GROUP = 30
#: Fewer conversions than this in the two groups together: the lift is never called significant.
MIN_CONVERSIONS = 5
HOLDOUT = "holdout"
CHART_FORMATS = ("png", "svg")


@attrs.frozen
class Group:
    """Figures of one variant, the holdout, or all treated customers (``name`` "all")."""

    name: str
    customers: int
    sent: int
    delivered: int
    bounced: int
    failed: int
    opened: int
    clicked: int
    responded: int
    unsubscribed: int
    converted: int
    revenue_minor: int

    def rate(self, count: int, base: int | None = None) -> Decimal | None:
        """``count`` over ``base`` (messages sent by default), 4 decimals; None when the base is 0."""
        base = self.sent if base is None else base
        return _ratio(count, base)

    @property
    def conversion_rate(self) -> Decimal | None:
        """Converted customers over the group's customers (sent or not: the lift's basis)."""
        return _ratio(self.converted, self.customers)


@attrs.frozen
class Lift:
    """Treated vs holdout conversion rates, their difference with a 95 % interval, and what it brought."""

    treated_rate: Decimal
    holdout_rate: Decimal
    difference: Decimal
    low: Decimal
    high: Decimal
    relative: Decimal | None
    significant: bool  # the interval excludes 0 and the sample is large enough (``note`` is None)
    incremental_conversions: Decimal
    incremental_revenue_minor: int
    #: Why the sample is too small to call the lift significant; None when it is large enough.
    note: str | None = None

    @property
    def verdict(self) -> str:
        """The lift's significance in words, for reports."""
        if self.note:
            return self.note
        if self.significant:
            return "significant (the 95 % interval excludes 0)"
        return "not significant (the 95 % interval includes 0)"


@attrs.frozen
class CampaignReport:
    """One campaign's report."""

    campaign: Campaign
    audience: int
    excluded: Mapping[str, int]
    holdout: int
    pending: int
    unconfirmed: int
    groups: Sequence[Group]  # each variant, then "all" treated, then the holdout (when there is one)
    cost_minor: int
    revenue_minor: int
    roi: Decimal | None
    lift: Lift | None
    variant_lifts: Mapping[str, Lift]
    #: The user whose scope the figures cover (only their customers' messages), None when they cover everyone.
    scoped_to: str | None = None

    @property
    def scoped(self) -> bool:
        """Whether the figures cover only the customers in a user's scope."""
        return self.scoped_to is not None

    @property
    def treated(self) -> Group:
        return next(g for g in self.groups if g.name == "all")

    def as_rows(self) -> list[dict[str, Any]]:
        """One flat row per group, for tables, JSON and CSV."""
        rows = []
        for g in self.groups:
            rows.append(
                {
                    "group": g.name,
                    "customers": g.customers,
                    "sent": g.sent,
                    "delivered": g.delivered,
                    "delivery_rate": g.rate(g.delivered),
                    "open_rate": g.rate(g.opened),
                    "click_rate": g.rate(g.clicked),
                    "response_rate": g.rate(g.responded),
                    "unsubscribe_rate": g.rate(g.unsubscribed),
                    "converted": g.converted,
                    "conversion_rate": g.conversion_rate,
                    "revenue_minor": g.revenue_minor,
                    "lift": (self.variant_lifts.get(g.name) or (self.lift if g.name == "all" else None)),
                }
            )
        return rows


def _ratio(count: int, base: int) -> Decimal | None:
    if not base:
        return None
    return (Decimal(count) / Decimal(base)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def _plus_days(moment: Any, days: int, dialect: str) -> Any:
    """``moment`` + ``days`` days in SQL (on SQLite, formatted the way crmkit stores times)."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%d %H:%M:%f", moment, f"+{int(days)} days")
    return moment + sa.func.make_interval(0, 0, 0, int(days))


def campaign_report(crm: CRM, campaign: Campaign) -> CampaignReport:
    """The report of one campaign (read in a handful of aggregate queries), over the messages to customers
    in the acting user's ``campaigns.reports.read`` scope."""
    msg = m.messages.c
    in_scope = crm.access.customers(msg.customer_id, REPORTS)
    principal = crm.access.principal
    scoped_to = None if principal.owners(REPORTS) is None else principal.username
    dialect = crm.engine.dialect.name
    anchor = sa.func.coalesce(msg.sent_at, msg.next_attempt_at, msg.queued_at)
    p = purchases(crm).c
    revenue = sa.func.coalesce(
        sa.select(sa.func.sum(p.amount_minor))
        .where(
            p.customer_id == msg.customer_id,
            p.currency == campaign.currency,
            p.amount_minor > 0,
            p.occurred_at > anchor,
            p.occurred_at <= _plus_days(anchor, campaign.attribution_days, dialect),
        )
        .scalar_subquery(),
        0,
    )
    group = sa.case((msg.status == HOLDOUT, sa.literal(-1, m.messages.c.variant_id.type)), else_=msg.variant_id)
    per_message = (
        sa.select(
            group.label("grp"),
            msg.status,
            msg.delivered_at,
            msg.opened_at,
            msg.clicked_at,
            msg.responded_at,
            msg.unsubscribed_at,
            revenue.label("revenue"),
        )
        .where(msg.campaign_id == campaign.id, msg.status != "excluded", in_scope)
        .subquery()
    )
    r = per_message.c

    def count_if(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    sent = r.status.in_(HANDED_OVER)
    query = sa.select(
        r.grp,
        sa.func.count(),
        count_if(sent),
        count_if(sent & r.delivered_at.is_not(None)),
        count_if(r.status == "bounced"),
        count_if(r.status == "failed"),
        count_if(sent & r.opened_at.is_not(None)),
        count_if(sent & r.clicked_at.is_not(None)),
        count_if(sent & r.responded_at.is_not(None)),
        count_if(sent & r.unsubscribed_at.is_not(None)),
        count_if(r.revenue > 0),
        sa.func.sum(r.revenue),
        count_if(r.status.in_(PENDING_STATUSES)),
        count_if(r.status == "unconfirmed"),
    ).group_by(r.grp)
    with crm.reading() as conn:
        rows = conn.execute(query).all()
        excluded = dict(
            conn.execute(
                sa.select(msg.reason, sa.func.count())
                .where(msg.campaign_id == campaign.id, msg.status == "excluded", in_scope)
                .group_by(msg.reason)
            ).all()
        )
        billable = conn.execute(
            sa.select(sa.func.count()).where(msg.campaign_id == campaign.id, msg.status.in_(HANDED_OVER), in_scope)
        ).scalar_one()
    names = {v.id: v.name for v in campaign.variants}
    by_name: dict[str, Group] = {}
    pending = unconfirmed = 0
    for grp, *figures, waiting, unsure in rows:
        name = HOLDOUT if grp == -1 else names.get(grp, f"variant {grp}")
        by_name[name] = Group(name, *(int(x or 0) for x in figures))
        pending += int(waiting or 0)
        unconfirmed += int(unsure or 0)
    variants = [by_name.get(v.name, Group(v.name, *([0] * 11))) for v in campaign.variants]
    treated = Group("all", *(sum(getattr(g, f.name) for g in variants) for f in attrs.fields(Group)[1:]))
    holdout = by_name.get(HOLDOUT)
    groups = [*variants, treated] + ([holdout] if holdout else [])
    fixed = campaign.cost_fixed_minor if scoped_to is None else 0
    cost = fixed + campaign.cost_per_message_minor * int(billable)
    revenue_total = treated.revenue_minor
    roi = (Decimal(revenue_total - cost) / Decimal(cost)).quantize(Decimal("0.0001")) if cost else None
    lift = compare(treated, holdout) if holdout else None
    variant_lifts = {g.name: lifted for g in variants if holdout and (lifted := compare(g, holdout))}
    excluded_counts = {str(k): int(v) for k, v in excluded.items()}
    return CampaignReport(
        campaign=campaign,
        audience=treated.customers + (holdout.customers if holdout else 0) + sum(excluded_counts.values()),
        excluded=excluded_counts,
        holdout=holdout.customers if holdout else 0,
        pending=pending,
        unconfirmed=unconfirmed,
        groups=groups,
        cost_minor=cost,
        revenue_minor=revenue_total,
        roi=roi,
        lift=lift,
        variant_lifts=variant_lifts,
        scoped_to=scoped_to,
    )


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of the proportion ``successes / total`` (within 0 … 1); ``total`` > 0."""
    p = successes / total
    scale = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(converted1: int, total1: int, converted0: int, total0: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``p₁ − p₀`` (his method 10, from two Wilson intervals; within −1 … 1)."""
    p1, p0 = converted1 / total1, converted0 / total0
    low1, high1 = wilson(converted1, total1, z)
    low0, high0 = wilson(converted0, total0, z)
    diff = p1 - p0
    return (
        diff - math.sqrt((p1 - low1) ** 2 + (high0 - p0) ** 2),
        diff + math.sqrt((high1 - p1) ** 2 + (p0 - low0) ** 2),
    )


def too_few(treated: Group, holdout: Group) -> str | None:
    """Why these groups are too small to call a lift significant, or None when they are large enough."""
    conversions = treated.converted + holdout.converted
    if min(treated.customers, holdout.customers) >= MIN_PER_GROUP and conversions >= MIN_CONVERSIONS:
        return None
    return (
        f"too few to call: {treated.customers} treated and {holdout.customers} held-out customers, "
        f"{conversions} conversions (significance needs at least {MIN_PER_GROUP} customers in each group "
        f"and {MIN_CONVERSIONS} conversions)"
    )


def compare(treated: Group, holdout: Group) -> Lift | None:
    """Lift of ``treated`` over ``holdout``: difference of conversion rates with Newcombe's 95 % interval."""
    n1, n0 = treated.customers, holdout.customers
    if not n1 or not n0:
        return None
    p1, p0 = treated.converted / n1, holdout.converted / n0
    diff = p1 - p0
    low, high = newcombe(treated.converted, n1, holdout.converted, n0)
    note = too_few(treated, holdout)

    def dec(value: float) -> Decimal:
        return Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)

    incremental_revenue = (treated.revenue_minor * n0 - holdout.revenue_minor * n1) // n0
    return Lift(
        treated_rate=dec(p1),
        holdout_rate=dec(p0),
        difference=dec(diff),
        low=dec(low),
        high=dec(high),
        relative=dec(diff / p0) if p0 else None,
        significant=note is None and (low > 0 or high < 0),
        incremental_conversions=dec(diff * n1),
        incremental_revenue_minor=incremental_revenue,
        note=note,
    )


def comparison_rows(reports: Sequence[CampaignReport]) -> list[dict[str, Any]]:
    """One row per campaign, side by side (rates over messages sent, conversion over customers)."""
    rows = []
    for report in reports:
        t = report.treated
        rows.append(
            {
                "id": report.campaign.id,
                "campaign": report.campaign.name,
                "status": report.campaign.status,
                "channel": report.campaign.channel,
                "audience": report.audience,
                "excluded": sum(report.excluded.values()),
                "sent": t.sent,
                "open_rate": t.rate(t.opened),
                "click_rate": t.rate(t.clicked),
                "response_rate": t.rate(t.responded),
                "conversion_rate": t.conversion_rate,
                "revenue_minor": report.revenue_minor,
                "cost_minor": report.cost_minor,
                "roi": report.roi,
                "lift": report.lift.difference if report.lift else None,
                "lift_low": report.lift.low if report.lift else None,
                "lift_high": report.lift.high if report.lift else None,
                "currency": report.campaign.currency,
                "scoped_to": report.scoped_to,
            }
        )
    return rows


def chart(reports: Sequence[CampaignReport], path: str | Path, gettext: Callable[[str], str] | None = None) -> Path:
    """Draw conversion rates (variants and holdout, with 95 % Wilson intervals) and revenue vs cost; PNG or SVG by suffix.

    One campaign: its groups side by side; several: one bar per campaign. Its labels go through ``gettext``
    (``crmkit campaigns report --chart`` passes the reader's), English without. Needs matplotlib
    (``pip install 'crmkit-campaigns[chart]'``).
    """
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in CHART_FORMATS:
        raise ValidationError(f"the chart file must end in .png or .svg, not {target.name!r}", field="chart")
    figure = _figure(reports, gettext or _untranslated)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format=fmt)
    return target


def chart_svg(reports: Sequence[CampaignReport], gettext: Callable[[str], str]) -> bytes:
    """The same chart as SVG bytes, its labels through ``gettext`` (the web console shows it in the reader's
    language); text stays text, so the drawing is small. Needs matplotlib, as :func:`chart`."""
    figure = _figure(reports, gettext)
    import matplotlib

    out = BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figure.savefig(out, format="svg")
    return out.getvalue()


def _untranslated(text: str) -> str:
    return text


def _figure(reports: Sequence[CampaignReport], gettext: Callable[[str], str]) -> Any:
    """The chart's matplotlib ``Figure`` (built without pyplot: no global state, safe in a threaded server)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        raise ValidationError("charts need matplotlib: pip install 'crmkit-campaigns[chart]'", field="chart") from None
    if len(reports) == 1:
        # "all" adds up the variants: with one variant it is the same bar again
        groups = [g for g in reports[0].groups if g.name != "all" or len(reports[0].campaign.variants) > 1]
        labels = [gettext("holdout") if g.name == HOLDOUT else g.name for g in groups]
        colours = ["#9e9e9e" if g.name == HOLDOUT else "#1f77b4" for g in groups]
        counts = [(g.converted, g.customers) for g in groups]
        money = [(reports[0].revenue_minor, reports[0].cost_minor)]
        money_labels = [reports[0].campaign.name]
        title = reports[0].campaign.name
    else:
        labels = [r.campaign.name for r in reports]
        colours = ["#1f77b4"] * len(reports)
        counts = [(r.treated.converted, r.treated.customers) for r in reports]
        money = [(r.revenue_minor, r.cost_minor) for r in reports]
        money_labels = labels
        title = gettext("Campaigns compared")
    rates = [converted / total if total else 0.0 for converted, total in counts]
    intervals = [wilson(converted, total) if total else (0.0, 0.0) for converted, total in counts]
    # Wilson: within 0 … 100 %; at a rate of 0 the rounding can put the low end a hair above it
    errors = [
        [max(0.0, r - low) * 100 for r, (low, _) in zip(rates, intervals)],
        [max(0.0, high - r) * 100 for r, (_, high) in zip(rates, intervals)],
    ]
    figure = Figure(figsize=(11, 4.2))
    left, right = figure.subplots(1, 2)
    left.bar(labels, [r * 100 for r in rates], yerr=errors, capsize=4, color=colours)
    left.set_ylabel(gettext("conversion rate (%)"))
    left.set_title(gettext("Conversion (95 % interval)"))
    positions = range(len(money))
    right.bar(
        [p - 0.2 for p in positions], [rev for rev, _ in money], width=0.4, label=gettext("revenue"), color="#2ca02c"
    )
    right.bar(
        [p + 0.2 for p in positions], [cost for _, cost in money], width=0.4, label=gettext("cost"), color="#d62728"
    )
    right.set_xticks(list(positions), money_labels)
    right.set_title(gettext("Revenue and cost (%(currency)s)") % {"currency": reports[0].campaign.currency})
    right.legend()
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}".replace(",", ".")))
    figure.suptitle(title)
    figure.tight_layout()
    return figure
