"""Webhook event types, declared by code (the core's here, plugins' through ``crmkit_webhook_events``), and the outbox.

``crm.events.emit(session, "order.placed", {...}, customer_id=…)`` writes, inside the caller's
transaction, the event and one pending delivery per active subscription listening to its type
(nothing at all when none listens), so an event exists exactly when its change was committed.
``crmkit worker`` delivers them after commit (:mod:`crmkit.worker`).
"""

from __future__ import annotations

import difflib
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.errors import PluginError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: Where a transaction keeps the active subscriptions it read once (``session.info`` lives as long as the transaction).
_LISTENERS = "crmkit.webhook_listeners"


@attrs.frozen
class EventType:
    """A kind of event subscribers may listen to, e.g. ``order.placed``; ``plugin`` is filled in by crmkit."""

    name: str = attrs.field()
    description: str
    plugin: str | None = None

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not _NAME.match(value):
            raise ValueError(f"event type must be dotted lower-case words like 'order.placed', got {value!r}")


def _core(name: str, description: str) -> EventType:
    return EventType(name, description, "core")


#: The core's event types (each event's ``data`` names its record: ``{"customer": {...}}``).
CORE_EVENT_TYPES: tuple[EventType, ...] = (
    _core("customer.created", "a customer was added (data: customer)"),
    _core("customer.updated", "a customer was changed (data: customer, changed: the field names)"),
    _core("customer.merged", "a customer was merged into another (data: customer = the kept one, merged_id)"),
    _core("customer.erased", "a customer was erased (data: customer = {id}); earlier events about them are redacted"),
    _core("interaction.logged", "a call, visit or message was logged (data: interaction)"),
    _core("consent.changed", "a customer gave or withdrew consent for a channel (data: customer_id, consent)"),
)


def new_event_id() -> str:
    """``evt_`` + 12 hex digits of milliseconds + 16 random hex digits: unique, and sorted by time."""
    return f"evt_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


class Events:
    """``crm.events``: the declared event types and the outbox every change writes its events to."""

    def __init__(self, crm: CRM) -> None:
        self._now = crm.now  # the CRM's clock stamps each event
        self.types: dict[str, EventType] = {event.name: event for event in CORE_EVENT_TYPES}
        for plugin, declared in crm.hooks.webhook_events():
            for event in declared:
                if not isinstance(event, EventType):
                    raise PluginError(
                        plugin,
                        f"crmkit_webhook_events returned {event!r}, not a crmkit.EventType",
                        hook="crmkit_webhook_events",
                    )
                if event.name in self.types:
                    raise PluginError(
                        plugin,
                        f"event type {event.name} is declared twice (also by {self.types[event.name].plugin})",
                        hook="crmkit_webhook_events",
                    )
                self.types[event.name] = attrs.evolve(event, plugin=plugin)

    def require_known(self, names: Iterable[str], *, field: str = "events") -> list[str]:
        """``names`` without duplicates; ``ValidationError`` naming ``field`` for an undeclared one, with the closest."""
        result = list(dict.fromkeys(names))
        if not result:
            raise ValidationError("name at least one event type (crmkit webhooks events lists them)", field=field)
        for name in result:
            if name not in self.types:
                close = difflib.get_close_matches(name, list(self.types), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else " (crmkit webhooks events lists them)"
                raise ValidationError(f"unknown event type {name!r}{hint}", field=field)
        return result

    def emit(
        self,
        session: Session,
        type: str,
        data: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        *,
        customer_id: int | None = None,
    ) -> str | None:
        """Record one event in the caller's transaction for every subscription listening to ``type``; its id, or None
        when none listens. ``data`` may be a function making it, called only then (so silence costs one cached read)."""
        ids = self.emit_many(session, type, [(data, customer_id)])
        return ids[0] if ids else None

    def emit_many(
        self,
        session: Session,
        type: str,
        items: Iterable[tuple[Mapping[str, Any] | Callable[[], Mapping[str, Any]], int | None]],
    ) -> list[str]:
        """:meth:`emit` for many ``(data, customer_id)`` pairs at once (two inserts); ``items`` is read only when a
        subscription listens, so pass a generator to build the payloads lazily."""
        if type not in self.types:
            raise ValueError(f"event type {type!r} is not declared by the core or any enabled plugin")
        listeners = self._listeners(session, type)
        if not listeners:
            return []
        now = self._now()
        events = [
            {
                "id": new_event_id(),
                "type": type,
                "occurred_at": now,
                "customer_id": customer_id,
                "data": data() if callable(data) else data,
            }
            for data, customer_id in items
        ]
        if not events:
            return []
        conn = session.connection()
        conn.execute(t.webhook_events.insert(), events)
        conn.execute(
            t.webhook_deliveries.insert(),
            [
                {
                    "event_id": event["id"],
                    "subscription_id": subscription,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
                for subscription in listeners
            ],
        )
        return [event["id"] for event in events]

    def redact(self, session: Session, customer_ids: Sequence[int]) -> None:
        """Replace the payload of every stored event about these customers (erasure): pending and dead deliveries,
        and replays, then carry ``{"redacted": true}`` only."""
        session.connection().execute(
            t.webhook_events.update()
            .where(t.webhook_events.c.customer_id.in_(customer_ids))
            .values(data={"redacted": True})
        )

    @staticmethod
    def forget_listeners(session: Session) -> None:
        """Drop the transaction's cached subscriptions (after a subscription changed inside it)."""
        session.info.pop(_LISTENERS, None)

    @staticmethod
    def _listeners(session: Session, type: str) -> list[int]:
        """Ids of the active subscriptions listening to ``type`` (the table is read once per transaction)."""
        active = session.info.get(_LISTENERS)
        if active is None:
            s = t.webhook_subscriptions.c
            active = session.info[_LISTENERS] = (
                session.connection().execute(sa.select(s.id, s.events).where(s.active.is_(True)).order_by(s.id)).all()
            )
        return [subscription for subscription, events in active if type in events]
