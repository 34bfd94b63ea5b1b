"""Preparing a campaign run: the audience, consent, suppression, frequency cap, holdout and A/B split,
written to the outbox with one ``INSERT … SELECT`` inside the run's transaction.

Every customer of the audience not yet covered by this campaign and period gets one row: ``queued``
(with the variant it was drawn into and the time it may be sent), ``holdout`` (receives nothing;
the control group of the lift measurement) or ``excluded`` with the reason — the first that applies
of ``suppressed``, ``no_consent``, ``no_address`` (no contact point the channel's adapter sends to)
and ``frequency_cap`` (the customer already has N messages sent or queued in the window, all
campaigns together). The unique key (campaign, period, recipient) makes a second run of the same
campaign add only customers it has not covered: nobody is queued twice. Excluded rows of an earlier
run are re-evaluated by the next one (the customer may have given consent since).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import privacy
from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns import models as m
from crmkit_campaigns.objects import (
    EXCLUSION_REASONS,
    HANDED_OVER,
    PENDING_STATUSES,
    PRESSURE_STATUSES,
    Campaign,
    RunResult,
)
from crmkit_campaigns.sqlparts import bucket_sql, split_bounds

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit_campaigns.config import Settings

#: Serializes run preparation on PostgreSQL, so that two runs at once cannot both pass the frequency cap.
_ADVISORY_LOCK = 0x63726D6B63616D70  # "crmkcamp"
#: Messages that cost money (handed to the provider, or about to be).
BILLABLE_STATUSES = (*PENDING_STATUSES, *HANDED_OVER)


def lock_pressure(conn: sa.Connection) -> None:
    """Serialize writers of queued messages until commit (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already does),
    so that two of them at once cannot both pass the frequency cap."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK)))


def eligibility(
    channel: str, address_kind: str, settings: Settings, now: datetime, *, key: bytes | None = None
) -> sa.ColumnElement[Any]:
    """Why a customer (``customers`` row) cannot receive a message on ``channel`` now, or NULL when they can.

    ``key``: the database's ``crmkit.privacy.hash_key``, when there is one — erasure leaves the
    suppressed addresses of erased customers as keyed digests, matched here against the digest
    of each address (only while such entries exist).
    """
    cid = core.customers.c.id
    k, p, s, msg = core.consents.c, core.contact_points.c, m.suppressions.c, m.messages.c
    any_channel = sa.or_(s.channel.is_(None), s.channel == channel)
    # The suppression list is small next to the audience: each set is computed once (not per customer).
    suppressed = sa.or_(
        cid.in_(sa.select(s.customer_id).where(s.customer_id.is_not(None), any_channel)),
        cid.in_(
            sa.select(p.customer_id)
            .join(m.suppressions, s.address == p.value)
            .where(p.kind == address_kind, any_channel)
        ),
    )
    if key is not None:
        hashed = s.address.startswith(privacy.DIGEST_PREFIX, autoescape=True)
        suppressed = sa.or_(
            suppressed,
            cid.in_(
                sa.select(p.customer_id).where(
                    p.kind == address_kind,
                    sa.exists().where(hashed),
                    privacy.keyed_digest(key, p.value).in_(sa.select(s.address).where(hashed, any_channel)),
                )
            ),
        )
    consent = sa.exists().where(k.customer_id == cid, k.channel == channel, k.granted.is_(True))
    address = sa.exists().where(p.customer_id == cid, p.kind == address_kind)
    whens: list[tuple[Any, str]] = [(suppressed, "suppressed"), (~consent, "no_consent"), (~address, "no_address")]
    if settings.frequency_cap:
        limit, days = settings.frequency_cap
        recent = (
            sa.select(sa.func.count())
            .where(
                msg.customer_id == cid, msg.queued_at >= now - timedelta(days=days), msg.status.in_(PRESSURE_STATUSES)
            )
            .scalar_subquery()
        )
        whens.append((recent >= limit, "frequency_cap"))
    return sa.case(*whens, else_=sa.null())


def prepare(
    crm: CRM,
    session: Session,
    campaign: Campaign,
    *,
    audience: sa.ColumnElement[bool],
    address_kind: str,
    settings: Settings,
    period: str,
    kind: str,
    now: datetime,
    occasion_date: date | None = None,
    expression: str | None = None,
    require_recipients: bool = True,
) -> RunResult:
    """Write the outbox rows of one run in ``session``'s transaction; returns the counts.

    ``require_recipients``: refuse (``ValidationError``, nothing written) when nobody new is eligible
    although the audience is not empty — a campaign without consented recipients.
    """
    conn = session.connection()
    lock_pressure(conn)
    msg = m.messages.c
    same = sa.and_(msg.campaign_id == campaign.id, msg.period == period)
    conn.execute(m.messages.delete().where(same, msg.status == "excluded"))
    send_at = settings.next_send_time(max(now, campaign.scheduled_at or now))
    run_id = conn.execute(
        m.runs.insert()
        .values(
            campaign_id=campaign.id,
            period=period,
            kind=kind,
            occasion_date=occasion_date,
            started_at=now,
            actor=crm.actor,
            expression=expression,
            audience=0,
            queued=0,
            holdout=0,
            excluded={},
        )
        .returning(m.runs.c.id)
    ).scalar_one()

    cid = core.customers.c.id
    covered = sa.exists().where(same, msg.recipient_id == cid)  # the unique key: one index probe
    candidates = (
        sa.select(
            cid.label("customer_id"),
            eligibility(campaign.channel, address_kind, settings, now, key=privacy.hash_key(conn, create=False)).label(
                "reason"
            ),
            bucket_sql(cid, campaign.id, "holdout").label("hb"),
            bucket_sql(cid, campaign.id, "variant").label("vb"),
        )
        .where(audience, ~covered)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    c = candidates.c
    holdout_bp = int(campaign.holdout_percent * 100)
    held = c.hb < holdout_bp
    eligible = c.reason.is_(None)
    status = sa.case((~eligible, "excluded"), (held, "holdout"), else_="queued")
    variant = sa.case((~eligible | held, sa.null()), *_split(campaign, c.vb), else_=campaign.variants[-1].id)
    rows = sa.select(
        sa.literal(campaign.id, m.messages.c.campaign_id.type),
        sa.literal(run_id, m.messages.c.run_id.type),
        variant,
        c.customer_id,
        c.customer_id,
        sa.literal(period),
        sa.literal(campaign.channel),
        status,
        c.reason,
        sa.literal(now, m.messages.c.queued_at.type),
        sa.case(
            (eligible, sa.literal(send_at, m.messages.c.next_attempt_at.type)), else_=sa.null()
        ),  # holdout: when it would have gone
        sa.literal(0),
    ).select_from(candidates)
    columns = [
        "campaign_id",
        "run_id",
        "variant_id",
        "customer_id",
        "recipient_id",
        "period",
        "channel",
        "status",
        "reason",
        "queued_at",
        "next_attempt_at",
        "attempts",
    ]
    conn.execute(m.messages.insert().from_select(columns, rows))

    counts = _counts(conn, campaign.id, period, run_id)
    queued, holdout = counts.pop("queued", 0), counts.pop("holdout", 0)
    excluded = {reason: counts[reason] for reason in EXCLUSION_REASONS if counts.get(reason)}
    total = queued + holdout + sum(excluded.values())
    if total == 0:
        conn.execute(m.runs.delete().where(m.runs.c.id == run_id))
        return RunResult(campaign.id, None, period, 0, 0, 0, {}, occasion_date, None, campaign_name=campaign.name)
    if require_recipients and queued + holdout == 0:
        reasons = ", ".join(f"{reason} {n}" for reason, n in excluded.items())
        raise ValidationError(
            f"no customer can receive campaign {campaign.name!r}: all {total} in the audience are "
            f"excluded ({reasons}); nothing was queued",
            field="audience",
        )
    _check_budget(conn, campaign)
    conn.execute(
        m.runs.update()
        .where(m.runs.c.id == run_id)
        .values(audience=total, queued=queued, holdout=holdout, excluded=excluded)
    )
    return RunResult(
        campaign.id,
        run_id,
        period,
        total,
        queued,
        holdout,
        excluded,
        occasion_date,
        send_at if queued else None,
        campaign_name=campaign.name,
    )


def _split(campaign: Campaign, bucket: Any) -> list[tuple[sa.ColumnElement[bool], int]]:
    """CASE branches giving each variant its share of the buckets, by weight (the last takes the rest)."""
    bounds = split_bounds([v.weight for v in campaign.variants])
    return [(bucket < bound, variant.id) for bound, variant in zip(bounds, campaign.variants)]


def _counts(conn: sa.Connection, campaign_id: int, period: str, run_id: int) -> dict[str, int]:
    """``{status or exclusion reason: count}`` of the rows a run wrote."""
    msg = m.messages.c
    label = sa.case((msg.status == "excluded", msg.reason), else_=msg.status)
    rows = conn.execute(
        sa.select(label, sa.func.count())
        .where(msg.campaign_id == campaign_id, msg.period == period, msg.run_id == run_id)
        .group_by(label)
    ).all()
    return {name: int(n) for name, n in rows}


def _check_budget(conn: sa.Connection, campaign: Campaign) -> None:
    """Refuse a run that would take the campaign's planned cost over its budget."""
    if campaign.budget_minor is None or not campaign.cost_per_message_minor and not campaign.cost_fixed_minor:
        return
    msg = m.messages.c
    billable = conn.execute(
        sa.select(sa.func.count()).where(msg.campaign_id == campaign.id, msg.status.in_(BILLABLE_STATUSES))
    ).scalar_one()
    planned = campaign.cost_fixed_minor + campaign.cost_per_message_minor * billable
    if planned > campaign.budget_minor:
        affordable = max(
            0, (campaign.budget_minor - campaign.cost_fixed_minor) // max(1, campaign.cost_per_message_minor)
        )
        planned_text = Money(campaign.currency, planned).format()
        budget_text = Money(campaign.currency, campaign.budget_minor).format()
        raise ValidationError(
            f"over budget: {billable} messages cost {planned_text}, the budget of {budget_text} "
            f"covers {affordable}; narrow the audience or raise the budget (nothing was queued)",
            field="budget",
        )
