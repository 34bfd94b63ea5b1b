"""Recording what happened to sent messages: delivered, bounced, opened, clicked, unsubscribed, responded,
converted. Each event is one transaction: the message's first-time column (``opened_at``…), a row in
``campaign_events``, and ``crmkit_message_event`` for other plugins.

An unsubscribe withdraws the customer's consent for the message's channel through
``crm.customers.set_consent`` (audited, hooks fired) in the same transaction. A reply is logged as
an inbound core interaction. A hard bounce puts the address on the suppression list.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.errors import NotFound, ValidationError
from crmkit_campaigns import hookspecs
from crmkit_campaigns import models as m
from crmkit_campaigns.objects import HANDED_OVER, MessageEvent
from crmkit_campaigns.permissions import SEND

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit.plugin_api import Interaction

#: Events a provider's webhook may report, and the message column each sets the first time.
FIRST_TIME = {
    "delivered": "delivered_at",
    "bounced": "bounced_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "responded": "responded_at",
    "unsubscribed": "unsubscribed_at",
}
#: Set while a reply that is already attributed to a message is logged as an interaction.
_ATTRIBUTED: ContextVar[int | None] = ContextVar("crmkit_campaigns_attributed_reply", default=None)


@functools.cache
def _convertible() -> sa.Select[Any]:
    """The messages an order may convert: the customer's, sent before it in the past year, in its currency.

    Built once, with the statuses written into the SQL (an IN of bound values is rendered again at every
    execution): it runs inside every order's transaction."""
    msg, cmp = m.messages.c, m.campaigns.c
    handed_over = [sa.literal_column(f"'{status}'") for status in HANDED_OVER]
    return (
        sa.select(msg.id, msg.campaign_id, msg.customer_id, msg.channel, msg.sent_at, cmp.attribution_days)
        .join(m.campaigns, cmp.id == msg.campaign_id)
        .where(
            msg.customer_id == sa.bindparam("customer_id"),
            msg.status.in_(handed_over),
            msg.queued_at >= sa.bindparam("since", type_=msg.queued_at.type),
            msg.sent_at <= sa.bindparam("placed", type_=msg.sent_at.type),
            cmp.currency == sa.bindparam("currency"),
        )
    )


class Tracking:
    """Records message events (``crm.campaigns.tracking``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def record(
        self, message_id: int, kind: str, *, at: datetime | None = None, detail: Mapping[str, Any] | None = None
    ) -> bool:
        """Record an event about a message; returns False when it changes nothing (a repeated open…).

        ``NotFound`` for an unknown message; ``ValidationError`` for an unknown kind or a message
        that was never sent (an event about a queued or held-out message cannot be true) — except
        an unsubscribe, which is always honoured. Needs ``campaigns.send`` over the message's customer
        (the tracking routes act as the system).
        """
        self._crm.access.require(SEND)
        if kind not in FIRST_TIME:
            raise ValidationError(f"unknown event {kind!r} (known: {', '.join(FIRST_TIME)})", field="event")
        at = at or self._crm.now()
        detail = dict(detail or {})
        with self._crm.transaction() as session:
            row = self._message(session, message_id, lock=True)  # the first-time check below is then atomic
            if row["status"] not in HANDED_OVER and kind != "unsubscribed":
                raise ValidationError(f"message {message_id} was not sent (it is {row['status']})", field="message_id")
            first = row[FIRST_TIME[kind]] is None
            if kind in ("opened", "delivered", "unsubscribed", "bounced") and not first:
                return False  # once is what counts; repeated pixel loads are noise
            changes: dict[str, Any] = {FIRST_TIME[kind]: at} if first else {}
            if kind == "clicked" and row["opened_at"] is None:
                changes["opened_at"] = at  # a click proves the message was opened
            if kind == "bounced":
                changes.update(status="bounced", reason="bounced", last_error=str(detail.get("reason") or "bounced"))
                if detail.get("permanent", True) and row["address"]:
                    self._suppress_bounced(session, row)
            if changes:
                session.connection().execute(m.messages.update().where(m.messages.c.id == message_id).values(changes))
            if kind == "unsubscribed":
                self._crm.customers.set_consent(
                    row["customer_id"],
                    row["channel"],
                    False,
                    source=f"unsubscribe link, campaign {row['campaign_id']}",
                    at=at,
                )
            self._event(session, row, kind, at, detail)
        return True

    def respond(
        self, message_id: int, text: str, *, at: datetime | None = None, subject: str | None = None
    ) -> Interaction:
        """A reply to a message: logged as an inbound interaction on its channel, and the message marked responded.

        Needs ``campaigns.send`` over the message's customer (and ``interactions.log``).
        """
        self._crm.access.require(SEND)
        at = at or self._crm.now()
        with self._crm.transaction() as session:
            row = self._message(session, message_id, lock=True)
            if row["status"] not in HANDED_OVER:
                raise ValidationError(f"message {message_id} was not sent (it is {row['status']})", field="message_id")
            campaign = (
                session.connection()
                .execute(sa.select(m.campaigns.c.name).where(m.campaigns.c.id == row["campaign_id"]))
                .scalar_one()
            )
            token = _ATTRIBUTED.set(message_id)
            try:
                interaction = self._crm.interactions.log(
                    row["customer_id"],
                    row["channel"],
                    direction="inbound",
                    occurred_at=at,
                    subject=(subject or f"Reply to campaign: {campaign}")[:300],
                    summary=text,
                    sender=row["address"],
                    outcome="campaign reply",
                )
            finally:
                _ATTRIBUTED.reset(token)
            if row["responded_at"] is None:
                session.connection().execute(
                    m.messages.update().where(m.messages.c.id == message_id).values(responded_at=at)
                )
            self._event(session, row, "responded", at, {"interaction_id": interaction.id})
        return interaction

    def interaction_logged(self, interaction: Interaction, session: Session) -> None:
        """An inbound contact on a channel soon after a message on it counts as that message's response.

        The latest message sent to the customer on that channel within its campaign's attribution
        window gets ``responded_at`` (once); replies recorded through :meth:`respond` are already attributed.
        """
        if interaction.direction != "inbound" or _ATTRIBUTED.get() is not None:
            return
        msg, cmp = m.messages.c, m.campaigns.c
        conn = session.connection()
        oldest = interaction.occurred_at - timedelta(days=366)
        candidates = (
            conn.execute(
                sa.select(m.messages, cmp.attribution_days)
                .join(m.campaigns, cmp.id == msg.campaign_id)
                .where(
                    msg.customer_id == interaction.customer_id,
                    msg.queued_at >= oldest,
                    msg.channel == interaction.channel,
                    msg.status.in_(HANDED_OVER),
                    msg.sent_at <= interaction.occurred_at,
                )
                .order_by(msg.sent_at.desc())
                .limit(20)
            )
            .mappings()
            .all()
        )
        row = next(
            (r for r in candidates if interaction.occurred_at - r["sent_at"] <= timedelta(days=r["attribution_days"])),
            None,
        )
        if row is None or row["responded_at"] is not None:
            return
        conn.execute(m.messages.update().where(msg.id == row["id"]).values(responded_at=interaction.occurred_at))
        self._event(session, row, "responded", interaction.occurred_at, {"interaction_id": interaction.id})

    def order_placed(self, order: Any, session: Session) -> None:
        """A purchase soon after a message (within its campaign's attribution window) is that message's conversion."""
        placed = order.placed_at
        rows = (
            session.connection()
            .execute(
                _convertible(),
                {
                    "customer_id": order.customer_id,
                    "since": placed - timedelta(days=366),
                    "placed": placed,
                    "currency": order.currency,
                },
            )
            .mappings()
            .all()
        )
        for row in rows:
            if placed - row["sent_at"] <= timedelta(days=row["attribution_days"]):
                self._event(
                    session,
                    row,
                    "converted",
                    placed,
                    {"order_id": order.id, "amount_minor": order.total_minor, "currency": order.currency},
                )

    # -- internals ---------------------------------------------------------------------------------------

    def _message(self, session: Session, message_id: int, *, lock: bool = False) -> Mapping[str, Any]:
        """The message, when its customer is in the acting user's ``campaigns.send`` scope (else ``NotFound``).

        ``lock``: hold the message's row until the transaction ends (``SELECT … FOR UPDATE`` on PostgreSQL;
        SQLite's write transactions begin ``IMMEDIATE`` and so run one at a time), so that of 16 simultaneous
        first opens or unsubscribes exactly one sees the first-time column empty."""
        msg = m.messages.c
        query = sa.select(m.messages).where(msg.id == message_id, self._crm.access.customers(msg.customer_id, SEND))
        row = session.connection().execute(query.with_for_update(of=m.messages) if lock else query).mappings().first()
        if row is None:
            raise NotFound("campaign message", message_id)
        return row

    def _suppress_bounced(self, session: Session, row: Mapping[str, Any]) -> None:
        s = m.suppressions.c
        conn = session.connection()
        if (
            conn.execute(
                sa.select(s.id).where(
                    s.address == row["address"], sa.or_(s.channel.is_(None), s.channel == row["channel"])
                )
            ).first()
            is None
        ):
            conn.execute(
                m.suppressions.insert().values(
                    channel=row["channel"],
                    address=row["address"],
                    customer_id=row["customer_id"],
                    reason=f"hard bounce (campaign {row['campaign_id']})",
                    created_by=self._crm.actor,
                    created_at=self._crm.now(),
                )
            )

    def _event(
        self, session: Session, row: Mapping[str, Any], kind: str, at: datetime, detail: Mapping[str, Any]
    ) -> None:
        session.connection().execute(
            m.events.insert().values(
                message_id=row["id"],
                campaign_id=row["campaign_id"],
                customer_id=row["customer_id"],
                kind=kind,
                at=at,
                detail=dict(detail),
            )
        )
        event = MessageEvent(kind, row["id"], row["campaign_id"], row["customer_id"], row["channel"], at, dict(detail))
        self._crm.hooks.call(hookspecs.crmkit_message_event, event=event, session=session)
