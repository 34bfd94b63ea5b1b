"""``crm.webhooks``: subscriptions to event types, their deliveries, dead letters and replays (``webhooks.admin``).

Events are written by ``crm.events`` in the business transaction and delivered by ``crmkit worker``
(:mod:`crmkit.worker`), signed per Standard Webhooks (:func:`sign`), at least once: receivers dedupe
on the ``webhook-id`` header. A subscription's URL must not point at the CRM's own machine or a
private network (SSRF) unless the setting ``webhooks.allow_private_urls`` is true.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.events import Events
from crmkit.core.schemas import aware_utc
from crmkit.core.secrets import unwrap_secret, wrap_secret
from crmkit.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

ADMIN = "webhooks.admin"
ALLOW_PRIVATE = "webhooks.allow_private_urls"
STATUSES = ("pending", "delivered", "dead")
#: How long a delivery is retried, counted from when it was created (the event, or its replay).
RETRY_FOR = timedelta(days=3)
_SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of every secret
#: How a stored secret starts once wrapped with the CRM secret key (rows from before hold ``whsec_…`` in clear).
_WRAPPED_PREFIX = "wrapped:"
_EDITABLE = ("url", "events", "description", "active")


@attrs.frozen
class Subscription:
    """Where events of the listed types are POSTed; ``secret`` is given only by :meth:`Webhooks.subscribe`."""

    id: int
    url: str
    events: tuple[str, ...]
    description: str
    active: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = None


@attrs.frozen
class Delivery:
    """One event to one subscription: ``pending`` (waiting, retrying or claimed by a worker), ``delivered`` or ``dead``."""

    id: int
    event_id: str
    event_type: str
    subscription_id: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@attrs.frozen
class Attempt:
    """One try at a delivery: the HTTP status (None when there was no answer), the error, how long it took."""

    at: datetime
    worker: str
    status_code: int | None
    error: str | None
    duration_ms: int


# -- Standard Webhooks signing, and the SSRF guard -------------------------------------------------------------


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` + base64 of 24 random bytes."""
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_…`` secret stands for; ``ValidationError`` (field ``secret``) for a malformed one."""
    try:
        key = base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith(_SECRET_PREFIX) or not 24 <= len(key) <= 64:
        raise ValidationError("must be 'whsec_' followed by the base64 of 24 to 64 random bytes", field="secret")
    return key


def seal(secret: str) -> str:
    """A ``whsec_…`` secret as stored: its key wrapped with the CRM secret key, which lives outside the database,
    so the table, its dumps and backups hold no secret in clear."""
    nonce = secrets.token_bytes(16)
    wrapped, check = wrap_secret(secret_key(secret), nonce)
    return _WRAPPED_PREFIX + base64.b64encode(nonce + check + wrapped).decode()


def is_sealed(stored: str) -> bool:
    """Whether a stored secret is wrapped (False for a row written in clear before secrets were wrapped)."""
    return stored.startswith(_WRAPPED_PREFIX)


def stored_key(stored: str) -> bytes:
    """The HMAC key of a stored secret, wrapped or (an older row) in clear; ``SecretUnavailable`` when the CRM
    secret key is not the one it was wrapped with."""
    if not is_sealed(stored):
        return secret_key(stored)
    raw = base64.b64decode(stored.removeprefix(_WRAPPED_PREFIX))
    return unwrap_secret(raw[24:], raw[:16], raw[16:24])


def seal_clear(crm: CRM, found: Mapping[int, str]) -> None:
    """Wrap secrets still stored in clear (``{subscription id: stored value}``, read on first use), each only if
    no one changed it meanwhile; one transaction, in id order so that concurrent workers never deadlock."""
    s = t.webhook_subscriptions.c
    with crm.transaction() as session:
        conn = session.connection()
        for subscription_id, clear in sorted(found.items()):
            if not is_sealed(clear):
                conn.execute(
                    t.webhook_subscriptions.update()
                    .where(s.id == subscription_id, s.secret == clear)
                    .values(secret=seal(clear))
                )


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL whose host resolves only to public addresses (unless
    ``allow_private``); ``ValidationError`` naming ``url`` otherwise. Called on subscribing and before each connection."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("must be an http:// or https:// URL with a host", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError("has an invalid port", field="url") from None
    if not allow_private:
        try:
            found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
        except (OSError, UnicodeError) as exc:
            raise ValidationError(f"host {parts.hostname!r} does not resolve ({exc})", field="url") from None
        for address in sorted(found):
            ip = ipaddress.ip_address(address.split("%")[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            ip = mapped or ip
            if (
                ip.is_loopback
                or ip.is_private
                or ip.is_link_local
                or ip.is_multicast
                or ip.is_reserved
                or ip.is_unspecified
            ):
                raise ValidationError(
                    f"host {parts.hostname!r} is a local or private address ({ip}); webhooks go to "
                    f"public addresses unless the setting {ALLOW_PRIVATE} is true",
                    field="url",
                )
    return parts.scheme, parts.hostname, port


class Webhooks:
    """The webhook subscriptions of one CRM and what happened to their deliveries (``webhooks.admin``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def allow_private_urls(self) -> bool:
        """Whether subscriptions may point at loopback or private addresses (setting ``webhooks.allow_private_urls``)."""
        return bool(self._crm.settings.get(ALLOW_PRIVATE, False))

    # -- subscriptions --------------------------------------------------------------------------------------

    def subscribe(
        self, url: str, events: Sequence[str], *, secret: str | None = None, description: str = "", active: bool = True
    ) -> Subscription:
        """Send events of the types listed to ``url``; the returned subscription carries its signing secret (generated
        unless given) — the only time it is shown."""
        self._crm.access.require(ADMIN)
        values = self._checked({"url": url, "events": events, "description": description, "active": active})
        secret = new_secret() if secret is None else secret
        stored = seal(secret)  # checks its form too
        now = self._crm.now()
        with self._crm.transaction() as session:
            new_id = (
                session.connection()
                .execute(
                    t.webhook_subscriptions.insert()
                    .values(**values, secret=stored, created_at=now, updated_at=now)
                    .returning(t.webhook_subscriptions.c.id)
                )
                .scalar_one()
            )
            Events.forget_listeners(session)
            self._crm.audit.record(session, "create", "webhook", new_id, changes=values)
            return attrs.evolve(self._load(session.connection(), new_id), secret=secret)

    def list(self) -> list[Subscription]:
        """Every subscription, oldest first (without secrets)."""
        self._crm.access.require(ADMIN)
        with self._crm.reading() as conn:
            rows = conn.execute(sa.select(t.webhook_subscriptions).order_by(t.webhook_subscriptions.c.id)).mappings()
            return [_subscription(row) for row in rows]

    def get(self, subscription_id: int) -> Subscription:
        """One subscription (without its secret); ``NotFound`` when there is none with that id."""
        self._crm.access.require(ADMIN)
        with self._crm.reading() as conn:
            return self._load(conn, subscription_id)

    def update(self, subscription_id: int, **fields: Any) -> Subscription:
        """Change ``url``, ``events``, ``description`` or ``active`` (pausing keeps pending deliveries waiting)."""
        self._crm.access.require(ADMIN)
        unknown = sorted(fields.keys() - set(_EDITABLE))
        if unknown:
            raise ValidationError(f"cannot be changed (only {', '.join(_EDITABLE)})", field=unknown[0])
        values = self._checked(fields)
        with self._crm.transaction() as session:
            conn = session.connection()
            self._load(conn, subscription_id)
            conn.execute(
                t.webhook_subscriptions.update()
                .where(t.webhook_subscriptions.c.id == subscription_id)
                .values(**values, updated_at=self._crm.now())
            )
            Events.forget_listeners(session)
            self._crm.audit.record(session, "update", "webhook", subscription_id, changes=values)
            return self._load(conn, subscription_id)

    def delete(self, subscription_id: int) -> None:
        """Remove a subscription with its deliveries and their log (the events stay for other subscriptions)."""
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            self._load(conn, subscription_id)
            d = t.webhook_deliveries.c
            mine = sa.select(d.id).where(d.subscription_id == subscription_id)
            conn.execute(t.webhook_attempts.delete().where(t.webhook_attempts.c.delivery_id.in_(mine)))
            conn.execute(t.webhook_deliveries.delete().where(d.subscription_id == subscription_id))
            conn.execute(t.webhook_subscriptions.delete().where(t.webhook_subscriptions.c.id == subscription_id))
            Events.forget_listeners(session)
            self._crm.audit.record(session, "delete", "webhook", subscription_id)

    # -- deliveries -----------------------------------------------------------------------------------------

    def deliveries(
        self, subscription_id: int | None = None, status: str | None = None, *, limit: int = 100
    ) -> list[Delivery]:
        """The latest deliveries, newest first, of one subscription and/or in one status."""
        self._crm.access.require(ADMIN)
        if status is not None and status not in STATUSES:
            raise ValidationError(f"must be one of {', '.join(STATUSES)}", field="status")
        if not 1 <= limit <= 10_000:
            raise ValidationError("must be between 1 and 10000", field="limit")
        d, e = t.webhook_deliveries.c, t.webhook_events.c
        query = (
            sa.select(t.webhook_deliveries, e.type.label("event_type"))
            .join(t.webhook_events, e.id == d.event_id)
            .order_by(d.id.desc())
            .limit(limit)
        )
        if subscription_id is not None:
            query = query.where(d.subscription_id == subscription_id)
        if status is not None:
            query = query.where(d.status == status)
        with self._crm.reading() as conn:
            return [_delivery(row) for row in conn.execute(query).mappings()]

    def dead(self, *, limit: int = 100) -> list[Delivery]:
        """Dead-lettered deliveries (retried for 3 days without a 2xx), newest first: :meth:`replay` sends them again."""
        return self.deliveries(status="dead", limit=limit)

    def attempts(self, delivery_id: int) -> list[Attempt]:
        """The log of a delivery's attempts, oldest first."""
        self._crm.access.require(ADMIN)
        a = t.webhook_attempts.c
        with self._crm.reading() as conn:
            rows = conn.execute(
                sa.select(a.at, a.worker, a.status_code, a.error, a.duration_ms)
                .where(a.delivery_id == delivery_id)
                .order_by(a.id)
            ).all()
        return [Attempt(*row) for row in rows]

    def replay(
        self,
        event_id: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        subscription_id: int | None = None,
    ) -> int:
        """Deliver again one event, or every event in [since, until), to the active subscriptions listening to it (or
        only ``subscription_id``): new pending deliveries with the same ``webhook-id``; returns how many."""
        self._crm.access.require(ADMIN)
        if (event_id is None) == (since is None and until is None):
            raise ValidationError("name one event, or a time range with since/until", field="event_id")
        e, s = t.webhook_events.c, t.webhook_subscriptions.c
        query = (
            sa.select(e.id, e.type, s.id, s.events)
            .select_from(t.webhook_events)
            .join(t.webhook_subscriptions, s.active.is_(True))
            .order_by(e.occurred_at, e.id, s.id)
        )
        if event_id is not None:
            query = query.where(e.id == event_id)
        if since is not None:
            query = query.where(e.occurred_at >= aware_utc(since, "since"))
        if until is not None:
            query = query.where(e.occurred_at < aware_utc(until, "until"))
        if subscription_id is not None:
            query = query.where(s.id == subscription_id)
        now = self._crm.now()
        with self._crm.transaction() as session:
            conn = session.connection()
            if subscription_id is not None:
                self._load(conn, subscription_id)
            if event_id is not None and conn.execute(sa.select(e.id).where(e.id == event_id)).first() is None:
                raise NotFound("webhook event", event_id)
            rows = [
                {
                    "event_id": event,
                    "subscription_id": subscription,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event, type, subscription, listened in conn.execute(query)
                if type in listened
            ]
            if rows:
                conn.execute(t.webhook_deliveries.insert(), rows)
            self._crm.audit.record(
                session,
                "replay",
                "webhook",
                subscription_id or "all",
                changes={"event_id": event_id, "since": since, "until": until, "deliveries": len(rows)},
            )
        return len(rows)

    # -- internals ------------------------------------------------------------------------------------------

    def _checked(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validated subscription fields (those given), each error naming its field."""
        checked = dict(values)
        if "url" in values:
            url = values["url"]
            if not isinstance(url, str) or len(url) > 2000:
                raise ValidationError("must be a URL of at most 2000 characters", field="url")
            check_url(url, allow_private=self.allow_private_urls)
        if "events" in values:
            if isinstance(values["events"], str):
                raise ValidationError("must be a list of event types", field="events")
            checked["events"] = self._crm.events.require_known(values["events"])
        if "description" in values and (not isinstance(values["description"], str) or len(values["description"]) > 300):
            raise ValidationError("must be text of at most 300 characters", field="description")
        if "active" in values and not isinstance(values["active"], bool):
            raise ValidationError("must be true or false", field="active")
        return checked

    @staticmethod
    def _load(conn: sa.Connection, subscription_id: int) -> Subscription:
        row = (
            conn.execute(sa.select(t.webhook_subscriptions).where(t.webhook_subscriptions.c.id == subscription_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("webhook subscription", subscription_id)
        return _subscription(row)


def _subscription(row: Any) -> Subscription:
    return Subscription(
        row["id"],
        row["url"],
        tuple(row["events"]),
        row["description"],
        row["active"],
        row["created_at"],
        row["updated_at"],
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(**{f.name: row[f.name] for f in attrs.fields(Delivery)})
