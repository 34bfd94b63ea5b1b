"""Hook implementations for a case's links, its merge, intake, routing and canned replies: customer merges of
their tables, their webhook events and the rejected-payload purge job (the API routes are in ``api_desk``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from crmkit import EventType, Job, hookimpl
from crmkit.plugin_api import repoint
from crmkit_service.models import CASE_DATA, cases

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM


@hookimpl
def crmkit_customers_merged_many(crm: CRM, pairs: Mapping[int, int], session: Session) -> None:
    """Cases naming a merged-away contact, and attachments, fingerprints and rejected payloads of a merged-away
    customer, move to the kept one (cases and messages move in ``ServiceService.merged``)."""
    conn = session.connection()
    repoint(conn, cases.c.contact_id, pairs)
    for table in CASE_DATA:
        repoint(conn, table.c.customer_id, pairs)


@hookimpl
def crmkit_webhook_events() -> list[EventType]:
    return [
        EventType("case.attachment_added", "a file reference was attached to a case (data: case_id, attachment)"),
        EventType("case.merged", "a duplicate case was folded into another (data: case, merged_id)"),
    ]


@hookimpl
def crmkit_jobs(crm: CRM) -> list[Job]:
    return [
        Job(
            "service.purge-rejected",
            timedelta(hours=1),
            lambda crm: crm.service.intake.purge_rejected(),
            "delete refused intake payloads kept longer than 30 days (crmkit service intake purge)",
        )
    ]
