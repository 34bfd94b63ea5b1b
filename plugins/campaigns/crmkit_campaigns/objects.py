"""Typed value objects the campaigns service hands out (attrs, frozen)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

#: The legal status changes; anything else is refused with ``Conflict``.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("scheduled", "cancelled"),
    "scheduled": ("draft", "running", "cancelled"),
    "running": ("done", "cancelled"),
    "done": (),
    "cancelled": (),
    "transactional": (),  # the holder of one purpose's single messages (``send_message``): never moves
}
#: Messages that count against the frequency cap: sent, or on their way.
PRESSURE_STATUSES = ("queued", "claimed", "sending", "sent", "unconfirmed")
PENDING_STATUSES = ("queued", "claimed", "sending")
#: Messages handed to the provider: events (delivered, opened, converted…) can only be about these.
HANDED_OVER = ("sent", "unconfirmed", "bounced")
EXCLUSION_REASONS = ("suppressed", "no_consent", "no_address", "frequency_cap")


@attrs.frozen
class Segment:
    """A saved audience: a name and a filter expression."""

    id: int
    name: str
    expression: str
    description: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class Variant:
    """One version of a campaign's message; customers are split between variants by ``weight``."""

    id: int
    name: str
    weight: int
    subject: str | None
    body: str


@attrs.frozen
class Campaign:
    """A campaign: who it targets, on which channel, with which message, at what cost."""

    id: int
    name: str
    status: str
    channel: str
    segment: str | None
    currency: str
    cost_fixed_minor: int
    cost_per_message_minor: int
    holdout_percent: Decimal
    attribution_days: int
    variants: tuple[Variant, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    objective: str | None = None
    owner: str | None = None
    budget_minor: int | None = None
    occasion: str | None = None
    days_before: int = 0
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    segment_id: int | None = None
    #: Who scheduled it: ``run-due`` runs it with their scope (None: the system did).
    scheduled_by: str | None = None


@attrs.frozen
class RunResult:
    """What preparing a run wrote: the audience split into queued, holdout and excluded (by reason)."""

    campaign_id: int
    run_id: int | None
    period: str
    audience: int
    queued: int
    holdout: int
    excluded: Mapping[str, int]
    occasion_date: date | None = None
    send_at: datetime | None = None
    campaign_name: str | None = None


@attrs.frozen
class DispatchReport:
    """What one ``dispatch`` call did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    recovered: int = 0
    unconfirmed: int = 0
    skipped: int = 0
    quiet_until: datetime | None = None
    errors: Sequence[str] = ()
    finished_campaigns: Sequence[int] = ()


@attrs.frozen
class Preview:
    """A campaign's message as one customer would receive it."""

    campaign_id: int
    customer_id: int
    variant: str
    to: str | None
    subject: str | None
    text: str
    html: str | None
    eligible: bool
    reason: str | None


@attrs.frozen
class MessageEvent:
    """What ``crmkit_message_event`` receives."""

    kind: str
    message_id: int
    campaign_id: int
    customer_id: int
    channel: str
    at: datetime
    detail: Mapping[str, Any] = attrs.field(factory=dict)
