"""Undo a merge from the IDIC merge log, using the core's ``customer_merges`` snapshot.

The core keeps the merged customer as a tombstone and a JSON snapshot of it; IDIC recorded, just
before merging, which rows would move (interaction ids, contact points, addresses, tags, filled-in
fields). Undoing reverses exactly those; the pair is then kept apart so no run merges it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core import tables as core
from crmkit.core.types import utcnow
from crmkit.errors import Conflict, NotFound
from crmkit_idic import models as m
from crmkit_idic.access import MERGE, REVIEW
from crmkit_idic.service import keep_apart

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM


def undo(crm: CRM, session: Session, merge_id: int) -> dict[str, Any]:
    """Restore the merged customer of merge-log entry ``merge_id`` in the caller's transaction."""
    conn = session.connection()
    g, c = m.merge_log.c, core.customers.c
    log = (
        conn.execute(sa.select(m.merge_log).where(g.id == merge_id, crm.access.customers(g.customer_id, REVIEW)))
        .mappings()
        .first()
    )
    if log is None:
        raise NotFound("IDIC merge", merge_id)
    crm.access.require_customer(conn, log["customer_id"], MERGE)
    if log["status"] != "merged":
        raise Conflict(f"merge {merge_id} was already undone")
    kept_id, merged_id, moved = log["customer_id"], log["merged_id"], log["moved"]
    kept = conn.execute(sa.select(core.customers).where(c.id == kept_id)).mappings().one()
    merged = conn.execute(sa.select(core.customers).where(c.id == merged_id)).mappings().one()
    if kept["status"] != "active":
        raise Conflict(f"customer {kept_id} is {kept['status']} since: undo that first")
    if merged["status"] != "merged" or merged["merged_into_id"] != kept_id:
        raise Conflict(f"customer {merged_id} is no longer merged into {kept_id} ({merged['status']})")
    snapshot = conn.execute(sa.select(core.merges.c.snapshot).where(core.merges.c.id == log["core_merge_id"])).scalar()
    if not snapshot:
        raise Conflict(f"the snapshot of merge {merge_id} was erased (right to erasure): it cannot be undone")
    now = utcnow()
    conn.execute(
        core.customers.update().where(c.id == merged_id).values(status="active", merged_into_id=None, updated_at=now)
    )
    earlier = sa.select(g.merged_id).where(g.customer_id == merged_id, g.status == "merged")
    conn.execute(
        core.customers.update().where(c.id.in_(earlier), c.merged_into_id == kept_id).values(merged_into_id=merged_id)
    )
    i, cp, ad, tg = core.interactions.c, core.contact_points.c, core.addresses.c, core.tags.c
    if moved["interactions"]:
        conn.execute(
            core.interactions.update()
            .where(i.id.in_(moved["interactions"]), i.customer_id == kept_id)
            .values(customer_id=merged_id)
        )
    positions = {("email", v): n for n, v in enumerate(snapshot.get("emails", []))}
    positions.update({("phone", v): n for n, v in enumerate(snapshot.get("phones", []))})
    for kind, value in moved["contact_points"]:
        conn.execute(
            core.contact_points.update()
            .where(cp.customer_id == kept_id, cp.kind == kind, cp.value == value)
            .values(customer_id=merged_id, position=positions.get((kind, value), 0))
        )
        conn.execute(
            m.identifiers.update()
            .where(m.identifiers.c.customer_id == kept_id, m.identifiers.c.kind == kind, m.identifiers.c.value == value)
            .values(customer_id=merged_id)
        )
    if moved["addresses"]:
        conn.execute(
            core.addresses.update()
            .where(ad.id.in_(moved["addresses"]), ad.customer_id == kept_id)
            .values(customer_id=merged_id, position=ad.position - 1000)
        )
    if moved["tags"]:
        conn.execute(
            core.tags.update().where(tg.customer_id == kept_id, tg.tag.in_(moved["tags"])).values(customer_id=merged_id)
        )
    for channel, consent in (snapshot.get("consents") or {}).items():
        conn.execute(
            core.consents.insert().values(
                customer_id=merged_id,
                channel=channel,
                granted=consent["granted"],
                source=consent["source"],
                at=datetime.fromisoformat(consent["at"]),
            )
        )
    current = conn.execute(sa.select(core.customers).where(c.id == kept_id)).mappings().one()
    cleared = {f: None for f in moved["filled"] if str(current[f]) == str(snapshot.get(f))}
    attributes = {
        k: v
        for k, v in (current["attributes"] or {}).items()
        if not (k in moved["attributes_added"] and v == (snapshot.get("attributes") or {}).get(k))
    }
    conn.execute(
        core.customers.update().where(c.id == kept_id).values(**cleared, attributes=attributes, updated_at=now)
    )
    crm.customers.reindex([kept_id, merged_id])
    conn.execute(m.merge_log.update().where(g.id == merge_id).values(status="undone", undone_at=now))
    keep_apart(crm, conn, kept_id, merged_id, f"merge {merge_id} undone by {crm.actor}")
    crm.audit.record(
        session,
        "unmerge",
        "customer",
        merged_id,
        customer_id=merged_id,
        changes={"kept_id": kept_id, "idic_merge": merge_id},
    )
    return {
        "merge": merge_id,
        "restored": merged_id,
        "kept": kept_id,
        "interactions_moved_back": len(moved["interactions"]),
        "contact_points_moved_back": len(moved["contact_points"]),
    }
