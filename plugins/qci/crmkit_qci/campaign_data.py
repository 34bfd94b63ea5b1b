"""Everything QCI reads from or hands to crmkit-campaigns, through its public service ``crm.campaigns`` only.

Callers check ``crm.has_service("campaigns")`` first. Used: ``crm.campaigns.compare()`` (the report of
every campaign that has run: ``campaign``, ``cost_minor``, ``revenue_minor`` and the ``groups`` with the
treated customers and the holdout), ``crm.campaigns.segments.fields()`` / ``.create(name, expression)``
and ``crm.campaigns.create(name, channel=, body=, subject=, segment=, objective=, owner=)``. When the
installed campaigns lacks one of them, the KPI says which API is missing (``not available``) and the
plan records that the handoff did not happen — never a guess or a zero.

A campaign belongs to the period in which it started running, and only campaigns in the KPI
currency count (amounts in different currencies are never added).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.money import Money
from crmkit_qci.periods import Period

if TYPE_CHECKING:
    from crmkit import CRM


@attrs.frozen
class Results:
    """Campaign results of a period: ROI and lift, each None with the reason when it cannot be computed."""

    roi: Decimal | None
    lift: Decimal | None
    detail: str | None = None
    roi_why: str | None = None
    lift_why: str | None = None


def _reports(crm: CRM, period: Period, currency: str) -> list[Any]:
    from crmkit_qci.kpis import Unavailable

    compare = getattr(crm.campaigns, "compare", None)
    if compare is None:
        raise Unavailable("the installed crmkit-campaigns has no campaign report API (crm.campaigns.compare)")
    return [
        r
        for r in compare()
        if r.campaign.started_at is not None
        and r.campaign.currency == currency
        and period.start <= r.campaign.started_at < period.end
    ]


def costs(crm: CRM, period: Period, currency: str, objective: str | None = None) -> int | None:
    """Σ cost of the campaigns that started in the period (of one objective, compared case-insensitively), in
    minor units of ``currency``; None when none ran."""
    reports = [
        r
        for r in _reports(crm, period, currency)
        if objective is None or (r.campaign.objective or "").strip().lower() == objective
    ]
    return sum(int(r.cost_minor) for r in reports) if reports else None


def results(crm: CRM, period: Period, currency: str) -> Results:
    """ROI = (Σ revenue − Σ cost) / Σ cost, and lift = treated − holdout conversion rate pooled over the
    campaigns that kept a holdout, for the campaigns that started in the period."""
    reports = _reports(crm, period, currency)
    if not reports:
        why = f"no campaign in {currency} started in {period.label}"
        return Results(None, None, roi_why=why, lift_why=why)
    cost = sum(int(r.cost_minor) for r in reports)
    revenue = sum(int(r.revenue_minor) for r in reports)
    detail = (
        f"{len(reports)} campaign{'s' if len(reports) != 1 else ''}: attributed revenue "
        f"{Money(currency, revenue).format()}, cost {Money(currency, cost).format()}"
    )
    roi = None if not cost else _four((Decimal(revenue) - Decimal(cost)) / Decimal(cost))
    treated = [_group(r.groups, "all") for r in reports]
    held = [_group(r.groups, "holdout") for r in reports]
    pairs = [
        (t, h)
        for t, h in zip(treated, held, strict=True)
        if t is not None and h is not None and h.customers and t.customers
    ]
    lift = None
    if pairs:
        n1, c1 = sum(t.customers for t, _ in pairs), sum(t.converted for t, _ in pairs)
        n0, c0 = sum(h.customers for _, h in pairs), sum(h.converted for _, h in pairs)
        lift = _four(Decimal(c1) / Decimal(n1) - Decimal(c0) / Decimal(n0))
    return Results(
        roi,
        lift,
        detail,
        roi_why=None if roi is not None else f"the campaigns of {period.label} had no cost",
        lift_why=None if lift is not None else f"no campaign of {period.label} kept a holdout group",
    )


def _group(groups: Sequence[Any], name: str) -> Any:
    return next((g for g in groups if g.name == name), None)


def _four(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def hand_off(crm: CRM, rule: Mapping[str, Any], owner: str, action_id: int) -> tuple[str | None, str | None, str]:
    """Create the rule's segment and draft campaign for action ``action_id``; returns (segment id, campaign id, note).

    The segment is the rule's first expression whose fields campaigns knows (analytics' ``rfm_segment``,
    sales' ``order_count``… when installed; the core's ``lifecycle_stage`` otherwise). Campaigns'
    own refusals (``ValidationError``, ``Conflict``) propagate: the caller rolls back to its savepoint.
    """
    spec = rule["campaign"]
    service = crm.campaigns
    segments = getattr(service, "segments", None)
    if segments is None or not all(
        hasattr(x, a) for x, a in ((segments, "fields"), (segments, "create"), (service, "create"))
    ):
        return (
            None,
            None,
            (
                "not handed off: the installed crmkit-campaigns has no segment/campaign creation API "
                "(crm.campaigns.segments.create, crm.campaigns.create)"
            ),
        )
    known = set(segments.fields())
    choice = next((c for c in spec["segment"] if set(c["fields_"]) <= known), None)
    if choice is None:
        wanted = sorted({f for c in spec["segment"] for f in c["fields_"]})
        return None, None, f"not handed off: campaigns knows none of the segment fields {', '.join(wanted)}"
    name = f"{spec['name']} (QCI #{action_id})"
    segment = segments.create(name, choice["expression"], description=f"QCI action #{action_id}: {rule['title']}")
    campaign = service.create(
        name,
        channel=spec["channel"],
        body=spec["template"],
        subject=spec["subject"],
        segment=segment.id,
        objective=spec["objective"],
        owner=owner,
    )
    return (
        str(segment.id),
        str(campaign.id),
        f"segment #{segment.id} ({choice['expression']}) and draft campaign #{campaign.id} created in crmkit-campaigns",
    )
