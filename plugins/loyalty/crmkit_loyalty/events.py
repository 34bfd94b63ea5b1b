"""The webhook event types loyalty emits, and the worker's jobs: tier evaluation and point expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from crmkit import EventType, Job, hookimpl

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: Ledger entry kind → the event type it is sent as (other kinds send nothing).
EVENT_OF_KIND = {"earn": "points.earned", "redeem": "points.redeemed"}


@hookimpl
def crmkit_webhook_events() -> list[EventType]:
    return [
        EventType("points.earned", "a member earned points (data: entry, balance after it)"),
        EventType("points.redeemed", "a member redeemed points for a reward (data: entry, balance after it)"),
    ]


@hookimpl
def crmkit_jobs(crm: CRM) -> list[Job]:
    return [
        Job(
            "loyalty.expire",
            timedelta(hours=1),
            lambda crm: crm.loyalty.jobs.expire(),
            "expire the points whose expiry date has passed (crmkit loyalty expire)",
        ),
        Job(
            "loyalty.evaluate-tiers",
            timedelta(days=1),
            lambda crm: crm.loyalty.jobs.evaluate_tiers(),
            "move members to the tier their qualifying points reach (crmkit loyalty evaluate-tiers)",
        ),
    ]
