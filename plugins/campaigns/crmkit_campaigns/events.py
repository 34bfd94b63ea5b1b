"""The webhook event type campaigns emits, and the worker's jobs: due scheduled campaigns and dispatch."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from crmkit import EventType, Job, hookimpl

if TYPE_CHECKING:
    from crmkit.crm import CRM


@hookimpl
def crmkit_webhook_events() -> list[EventType]:
    return [EventType("campaign.finished", "a one-off campaign sent all its messages (data: campaign)")]


@hookimpl
def crmkit_jobs(crm: CRM) -> list[Job]:
    return [
        Job(
            "campaigns.run-due",
            timedelta(minutes=1),
            lambda crm: crm.campaigns.run_due(),
            "run scheduled campaigns whose time came and today's occasions (crmkit campaigns run-due)",
        ),
        Job(
            "campaigns.dispatch",
            timedelta(seconds=30),
            lambda crm: crm.campaigns.dispatch(),
            "deliver queued campaign messages, with retries (crmkit campaigns dispatch)",
        ),
    ]
