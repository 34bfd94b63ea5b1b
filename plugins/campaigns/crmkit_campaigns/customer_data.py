"""The campaigns side of the core's cross-cutting duties: export, erasure, merge, customer 360, segment fields."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import privacy
from crmkit.plugin_api import core_tables as core
from crmkit.plugin_api import delete_in, executemany, journal_moved, repoint, select_in, to_jsonable
from crmkit_campaigns import models as m
from crmkit_campaigns.channels import FileOutboxAdapter, build_adapter
from crmkit_campaigns.objects import HANDED_OVER
from crmkit_campaigns.permissions import READ
from crmkit_campaigns.shown import masked_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit.plugin_api import Customer

PROFILE_ROWS = 5
RECENT_DAYS = 90


def export(crm: CRM, session: Session, customer: Customer) -> dict[str, list[dict[str, Any]]]:
    """Every campaigns row about the customer: messages, their events, suppression entries (those of
    the customer and those made for one of the customer's addresses alone).

    Addresses are masked (also inside errors and event details) for a user who may not see the
    customer's contact details, as the core masks the customer itself.
    """
    rows = privacy.export_rows(session, m.CUSTOMER_TABLES, customer.id)
    s = m.suppressions.c
    by_address = session.connection().execute(
        sa.select(m.suppressions)
        .where(s.customer_id.is_(None), s.address.in_(_contact_values(session.connection(), customer.id)))
        .order_by(s.id)
    )
    rows[m.suppressions.name] += [to_jsonable(dict(row)) for row in by_address.mappings()]
    if crm.access.sees_contacts_of(customer.owner):
        return rows
    addresses = {r.get("address") for table in rows.values() for r in table} - {None}
    return {table: [masked_row(r, addresses) for r in found] for table, found in rows.items()}


def profile_shown(crm: CRM, customer: Customer) -> bool:
    """Whether the customer-360 section shows: ``campaigns.read`` over this customer."""
    return crm.access.allowed(READ) and crm.access.covers(customer.owner, READ)


def erase(crm: CRM, session: Session, customer_id: int) -> None:
    """Delete the customer's messages (and the file-outbox files written for them) and events; keep each
    suppression of the customer or of one of their addresses as a keyed digest of the address alone.

    The digest (``crmkit.privacy.digest``) still blocks the address should it come back, while
    neither it, its reason nor its audit entries say whose it was.
    """
    conn = session.connection()
    s = m.suppressions.c
    values = _contact_values(conn, customer_id)
    theirs = conn.execute(
        sa.select(s.id, s.address).where(sa.or_(s.customer_id == customer_id, s.address.in_(values)))
    ).all()
    _forget_outbox_files(crm, conn, customer_id)
    privacy.delete_rows(session, (m.events, m.messages), customer_id)
    conn.execute(m.suppressions.delete().where(s.id.in_([i for i, address in theirs if address is None])))
    kept = [(i, address) for i, address in theirs if address is not None]
    if kept:
        key = privacy.hash_key(conn)
        executemany(
            conn,
            m.suppressions.update()
            .where(s.id == sa.bindparam("_id"))
            .values(address=sa.bindparam("_address"), customer_id=None, reason=ERASED_REASON),
            [
                {
                    "_id": i,
                    "_address": address if address.startswith(privacy.DIGEST_PREFIX) else privacy.digest(key, address),
                }
                for i, address in kept
            ],
        )
    crm.audit.clear_changes(session, "suppression", [i for i, _ in theirs])


#: The reason an erased customer's suppression entries keep (theirs said why, perhaps naming them).
ERASED_REASON = "kept after an erasure"


def _contact_values(conn: sa.Connection, customer_id: int) -> list[str]:
    """The customer's normalised e-mail addresses and phone numbers (as suppressions store addresses)."""
    p = core.contact_points.c
    return list(conn.execute(sa.select(p.value).where(p.customer_id == customer_id)).scalars())


def _forget_outbox_files(crm: CRM, conn: sa.Connection, customer_id: int) -> None:
    """Delete the files a file-outbox channel wrote for the customer's messages."""
    msg = m.messages.c
    written = conn.execute(
        sa.select(msg.channel, msg.provider_message_id).where(
            msg.customer_id == customer_id, msg.provider_message_id.startswith("file:")
        )
    ).all()
    channels = crm.campaigns.settings.channels
    for channel, provider_id in written:
        adapter = build_adapter(channel, channels[channel]) if channel in channels else None
        if isinstance(adapter, FileOutboxAdapter):
            adapter.forget(provider_id)


def merge_many(session: Session, pairs: Mapping[int, int]) -> None:
    """Re-point merged customers' rows to the kept ones (``pairs``: merged id → kept id), as merging pair by
    pair in order would; the outbox rows are read in bulk and rewritten in a few statements.

    The outbox is unique on (campaign, period, ``recipient_id``) and a run skips a customer who has
    a row as recipient. Where only the merged record had a message, that row becomes the kept
    customer's (recipient included), so a later run does not message the same person again; where
    both had one, both rows stay (the person did receive two), the merged one keeping its recipient.
    """
    conn = session.connection()
    msg = m.messages.c
    kept_rows = {
        (r, c, p): (i, status)
        for i, r, c, p, status in select_in(
            conn,
            sa.select(msg.id, msg.recipient_id, msg.campaign_id, msg.period, msg.status),
            msg.recipient_id,
            sorted(set(pairs.values())),
        )
    }
    rows: dict[int, list[Any]] = defaultdict(list)
    for row in select_in(
        conn,
        sa.select(msg.id, msg.customer_id, msg.campaign_id, msg.period, msg.recipient_id).where(
            msg.status != "excluded"
        ),
        msg.customer_id,
        list(pairs),
    ):
        rows[row.customer_id].append(row)
    dropped: list[int] = []
    handed: list[dict[str, int]] = []
    handed_by: dict[int, list[int]] = defaultdict(list)
    for merged_id, kept_id in pairs.items():
        for message_id, _, campaign_id, period, _ in sorted(
            rows[merged_id], key=lambda r: (r.recipient_id != merged_id, r.id)
        ):
            kept_row = kept_rows.get((kept_id, campaign_id, period))
            if kept_row is not None and kept_row[1] != "excluded":
                continue  # both were messaged: each row keeps its recipient
            if kept_row is not None:  # the kept record was only excluded (a run re-evaluates those anyway)
                dropped.append(kept_row[0])
            handed.append({"_id": message_id, "_kept": kept_id})
            handed_by[merged_id].append(message_id)
            kept_rows[(kept_id, campaign_id, period)] = (message_id, "moved")
    delete_in(conn, msg.id, dropped)
    executemany(
        conn,
        m.messages.update().where(msg.id == sa.bindparam("_id")).values(recipient_id=sa.bindparam("_kept")),
        handed,
    )
    journal_moved(conn, m.messages, "recipient_id", handed_by)  # an unmerge hands them back
    for table in m.CUSTOMER_TABLES:
        repoint(conn, table.c.customer_id, pairs)


def profile(session: Session, customer_id: int, now: datetime) -> dict[str, Any]:
    """Customer 360 at ``now``: messages received (latest first) and responses, with counts."""
    conn = session.connection()
    msg, cmp, ev = m.messages.c, m.campaigns.c, m.events.c
    handed = msg.status.in_(HANDED_OVER)
    since = now - timedelta(days=RECENT_DAYS)
    total, recent = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((msg.sent_at >= since, 1), else_=0))).where(
            msg.customer_id == customer_id, handed
        )
    ).one()
    latest = (
        conn.execute(
            sa.select(
                msg.id,
                cmp.name.label("campaign"),
                msg.channel,
                msg.status,
                msg.sent_at,
                msg.opened_at,
                msg.clicked_at,
                msg.responded_at,
                msg.unsubscribed_at,
            )
            .join(m.campaigns, cmp.id == msg.campaign_id)
            .where(msg.customer_id == customer_id, handed)
            .order_by(msg.sent_at.desc(), msg.id.desc())
            .limit(PROFILE_ROWS)
        )
        .mappings()
        .all()
    )
    responses = (
        conn.execute(
            sa.select(ev.at, cmp.name.label("campaign"), ev.kind, ev.detail)
            .join(m.campaigns, cmp.id == ev.campaign_id)
            .where(ev.customer_id == customer_id, ev.kind.in_(("responded", "clicked", "converted", "unsubscribed")))
            .order_by(ev.at.desc(), ev.id.desc())
            .limit(PROFILE_ROWS)
        )
        .mappings()
        .all()
    )
    return {
        "messages_received": int(total),
        f"messages_received_{RECENT_DAYS}d": int(recent or 0),
        "latest_messages": [dict(r) for r in latest],
        "latest_responses": [dict(r) for r in responses],
    }


def segment_fields(now: datetime) -> dict[str, Any]:
    """``messages_received_90d`` (the 90 days before ``now``) and ``last_campaign_at``, correlated on ``customers.id``."""
    msg = m.messages.c
    mine = sa.and_(msg.customer_id == core.customers.c.id, msg.status.in_(HANDED_OVER))
    since = now - timedelta(days=RECENT_DAYS)
    return {
        f"messages_received_{RECENT_DAYS}d": sa.select(sa.func.count())
        .where(mine, msg.sent_at >= since)
        .scalar_subquery(),
        "last_campaign_at": sa.select(sa.func.max(msg.sent_at)).where(mine).scalar_subquery(),
    }
