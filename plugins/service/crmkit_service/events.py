"""The webhook event types the service plugin emits, and its worker job: the SLA breach check."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from crmkit import EventType, Job, hookimpl

if TYPE_CHECKING:
    from crmkit.crm import CRM


@hookimpl
def crmkit_webhook_events() -> list[EventType]:
    return [
        EventType("case.opened", "a case was opened (data: case)"),
        EventType("case.reply_added", "a reply was added to a case's conversation (data: case_id, message)"),
        EventType("case.note_added", "an internal note was written on a case (data: case_id, message)"),
        EventType("case.assigned", "a case was given to another user or team (data: case)"),
        EventType("case.status_changed", "a case changed status (data: case, previous_status)"),
        EventType("case.sla_breached", "a case missed an SLA target (data: target, due_at, case)"),
        EventType(
            "case.sla_warning", "an SLA target is due within its rule's warning time (data: target, due_at, case)"
        ),
        EventType("case.escalated", "a breached case was escalated by its SLA rule (data: target, actions, case)"),
        EventType("case.csat_requested", "a resolved case's satisfaction survey is due (data: case_id, link)"),
        EventType("case.csat_answered", "a customer rated a resolved case 1–5 (data: case_id, score, comment)"),
    ]


@hookimpl
def crmkit_jobs(crm: CRM) -> list[Job]:
    return [
        Job(
            "service.run-due",
            timedelta(minutes=1),
            lambda crm: crm.service.run_due(),
            "mark cases that missed their first-response or resolution target (crmkit service run-due)",
        )
    ]
