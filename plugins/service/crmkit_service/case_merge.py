"""Folding a duplicate case into another (``crmkit service cases merge KEPT MERGED``): the duplicate's
conversation, attachments and watchers move to the kept case, and the duplicate is closed with a pointer to it
(``merged_into_id``), in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmkit import Conflict, ValidationError
from crmkit.plugin_api import to_jsonable
from crmkit_service.models import attachments, cases, intake_fingerprints, messages, watchers

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_service.service import Case, ServiceService

WRITE = "service.write"


def merge_cases(crm: CRM, service: ServiceService, kept_id: int, merged_id: int) -> Case:
    """Fold case ``merged_id`` into ``kept_id`` (both the same customer's, in ``service.write``'s scope); returns
    the kept case. A closed kept case, or a duplicate already merged, is a ``Conflict``; nothing is written then."""
    crm.access.require(WRITE)
    if kept_id == merged_id:
        raise ValidationError("a case cannot be merged into itself", field="merged")
    with crm.transaction() as session:
        conn = session.connection()
        # Lock in id order: two merges of the same pair in opposite directions cannot deadlock.
        locked = {case_id: service._one(conn, case_id, WRITE, lock=True) for case_id in sorted((kept_id, merged_id))}
        kept, merged = locked[kept_id], locked[merged_id]
        if merged.merged_into_id is not None:
            raise Conflict(f"case {merged.id} was already merged into case {merged.merged_into_id}")
        if kept.merged_into_id is not None or kept.status == "closed":
            raise Conflict(f"case {kept.id} is closed: keep an open case (or reopen it first)")
        if kept.customer_id != merged.customer_id:
            raise ValidationError(
                f"case {merged.id} is customer {merged.customer_id}'s and case {kept.id} customer "
                f"{kept.customer_id}'s: only one customer's cases merge",
                field="merged",
            )
        now = crm.now()
        moved = conn.execute(messages.update().where(messages.c.case_id == merged.id).values(case_id=kept.id)).rowcount
        conn.execute(attachments.update().where(attachments.c.case_id == merged.id).values(case_id=kept.id))
        conn.execute(
            intake_fingerprints.update().where(intake_fingerprints.c.case_id == merged.id).values(case_id=kept.id)
        )
        for username in sorted(set(merged.watchers) - set(kept.watchers)):
            conn.execute(watchers.insert().values(case_id=kept.id, username=username))
        if merged.status != "closed":
            service._move(session, merged, "closed", now, resolution=f"merged into case #{kept.id}")
        conn.execute(cases.update().where(cases.c.id == merged.id).values(merged_into_id=kept.id, updated_at=now))
        conn.execute(cases.update().where(cases.c.id == kept.id).values(updated_at=now))
        crm.audit.record(
            session,
            "merge",
            "case",
            kept.id,
            customer_id=kept.customer_id,
            changes={"merged": merged.id, "messages_moved": moved},
        )
        result = service._read(conn, kept.id)
        crm.events.emit(
            session,
            "case.merged",
            lambda: {"case": to_jsonable(result), "merged_id": merged.id},
            customer_id=kept.customer_id,
        )
    return result
