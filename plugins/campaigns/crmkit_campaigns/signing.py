"""Signed tracking tokens: open pixels, click redirects, unsubscribe links and the provider-webhook secret.

A token is ``<key id>.<message id, hex>.<HMAC-SHA256, 128 bits>``; the MAC covers what the token is
for (``open``, ``click`` + the target URL, ``unsubscribe``), so a pixel token cannot unsubscribe
anyone and a click token cannot redirect elsewhere. Keys live in ``campaign_signing_keys`` (made on
first use, random 256-bit secrets wrapped with the CRM secret key, which is kept outside the database);
the key id lets :func:`rotate` add a new key while older ones verify until their grace period ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa

from crmkit.errors import Conflict, ValidationError
from crmkit.plugin_api import unwrap_secret, wrap_secret
from crmkit_campaigns import models as m

if TYPE_CHECKING:
    from crmkit.crm import CRM


#: The one spelling of a token this CRM issues: key id in decimal, message id in lower-case hex, neither with a
#: sign or a leading zero, and 22 URL-safe base64 characters of MAC — ASCII only, bounded lengths (a 5,000-digit
#: id is refused here, before ``int()`` could).
_TOKEN = re.compile(r"([1-9][0-9]{0,8})\.([1-9a-f][0-9a-f]{0,15})\.([A-Za-z0-9_-]{22})")
#: Message ids are 64-bit signed integers in the database.
MAX_ID = 2**63 - 1


class InvalidToken(ValueError):
    """A tracking token that was not issued by this CRM (or was altered)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Signer:
    """Signs and checks tracking tokens with the CRM's keys (the newest signs, any verifies)."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys:
            raise ValueError("no signing key")
        self.keys = dict(keys)
        self.current = max(self.keys)

    def _mac(self, key_id: int, purpose: str, message_id: int, extra: str) -> str:
        signed = f"{purpose}|{message_id}|{extra}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self.keys[key_id], signed, hashlib.sha256).digest()
        return _b64(digest[:16])

    def sign(self, purpose: str, message_id: int, extra: str = "") -> str:
        """A token for ``purpose`` about message ``message_id`` (``extra``: the URL of a click)."""
        return f"{self.current}.{message_id:x}.{self._mac(self.current, purpose, message_id, extra)}"

    def verify(self, purpose: str, token: str, extra: str = "") -> int:
        """The message id a valid token is about; ``InvalidToken`` otherwise (also for any text not spelled
        exactly as :meth:`sign` spells tokens: other characters, signs, leading zeros, ``0x``, over-long ids)."""
        found = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if found is None:
            raise InvalidToken("malformed token")
        key_id, message_id, mac = int(found[1]), int(found[2], 16), found[3]
        if message_id > MAX_ID or key_id not in self.keys:
            raise InvalidToken("bad signature")
        if not hmac.compare_digest(mac.encode(), self._mac(key_id, purpose, message_id, extra).encode()):
            raise InvalidToken("bad signature")
        return message_id

    def webhook_token(self) -> str:
        """The bearer token providers send with delivery / bounce / reply webhooks."""
        return _b64(hmac.new(self.keys[self.current], b"webhook", hashlib.sha256).digest())

    def check_webhook(self, token: str) -> bool:
        """True when ``token`` is the webhook token of any of the keys (any other text, non-ASCII too: False)."""
        given = token.encode("utf-8", "surrogatepass")  # compare_digest refuses non-ASCII str, never bytes
        return any(
            hmac.compare_digest(given, _b64(hmac.new(key, b"webhook", hashlib.sha256).digest()).encode())
            for key in self.keys.values()
        )


#: How long an old key still verifies after ``crmkit campaigns keys rotate`` (links already sent, the old webhook token).
DEFAULT_GRACE = timedelta(days=90)
_KEYS = sa.select(
    m.signing_keys.c.id,
    m.signing_keys.c.secret,
    m.signing_keys.c.nonce,
    m.signing_keys.c.key_check,
    m.signing_keys.c.expires_at,
).order_by(m.signing_keys.c.id)


def _key_row(key_id: int, created_at: datetime, secret: bytes | None = None) -> dict[str, object]:
    """A ``campaign_signing_keys`` row: a new random key (or ``secret``) wrapped with the CRM secret key."""
    nonce = secrets.token_bytes(16)
    wrapped, check = wrap_secret(secret or secrets.token_bytes(32), nonce)
    return {
        "id": key_id,
        "secret": wrapped.hex(),
        "nonce": nonce.hex(),
        "key_check": check.hex(),
        "created_at": created_at,
    }


def load_signer(crm: CRM) -> Signer:
    """The CRM's signer with its unexpired keys; the first call creates a key, and a key an older version stored
    in clear is wrapped (each in its own transaction — call it outside one)."""
    with crm.reading() as conn:
        rows = conn.execute(_KEYS).all()
    if not rows:
        try:
            with crm.transaction() as session:
                session.connection().execute(m.signing_keys.insert().values(_key_row(1, crm.now())))
        except sa.exc.IntegrityError:
            pass  # another process made it first: use theirs
    elif any(row.nonce is None for row in rows):
        with crm.transaction() as session:
            for row in rows:
                if row.nonce is None:
                    values = _key_row(row.id, crm.now(), bytes.fromhex(row.secret))
                    session.connection().execute(
                        m.signing_keys.update()
                        .where(m.signing_keys.c.id == row.id, m.signing_keys.c.nonce.is_(None))
                        .values(secret=values["secret"], nonce=values["nonce"], key_check=values["key_check"])
                    )
    else:
        return _signer(rows, crm.now())
    with crm.reading() as conn:
        return _signer(conn.execute(_KEYS).all(), crm.now())


def _signer(rows: Sequence[sa.Row[Any]], now: datetime) -> Signer:
    return Signer(
        {
            row.id: unwrap_secret(bytes.fromhex(row.secret), bytes.fromhex(row.nonce), bytes.fromhex(row.key_check))
            for row in rows
            if row.expires_at is None or row.expires_at > now
        }
    )


def rotate(crm: CRM, grace: timedelta = DEFAULT_GRACE) -> int:
    """Add a new signing key (new links and the webhook token use it) and let the older ones verify until
    ``grace`` from now; audited without key material. Returns the new key's id."""
    if grace < timedelta(0):
        raise ValidationError("must not be negative", field="grace_days")
    load_signer(crm)  # the first key exists and every key is wrapped
    for _ in range(5):  # two rotations at once: the second takes the next id
        try:
            with crm.transaction() as session:
                conn = session.connection()
                new_id = conn.execute(sa.select(sa.func.max(m.signing_keys.c.id))).scalar_one() + 1
                conn.execute(m.signing_keys.insert().values(_key_row(new_id, crm.now())))
                ends = crm.now() + grace
                conn.execute(
                    m.signing_keys.update()
                    .where(m.signing_keys.c.id < new_id, m.signing_keys.c.expires_at.is_(None))
                    .values(expires_at=ends)
                )
                conn.execute(
                    m.signing_keys.update()
                    .where(m.signing_keys.c.id < new_id, m.signing_keys.c.expires_at > ends)
                    .values(expires_at=ends)
                )
                crm.audit.record(
                    session,
                    "rotate",
                    "campaign_signing_key",
                    new_id,
                    changes={"older_keys_verify_until": ends.isoformat()},
                )
            return int(new_id)
        except sa.exc.IntegrityError:
            continue
    raise Conflict("signing keys are being rotated by another process: run the rotation again")


def key_list(crm: CRM) -> list[dict[str, Any]]:
    """Every signing key: id, created, expires, state (``signing``, ``verifying``, ``expired``) — never key material."""
    now = crm.now()
    with crm.reading() as conn:
        rows = conn.execute(
            sa.select(m.signing_keys.c.id, m.signing_keys.c.created_at, m.signing_keys.c.expires_at).order_by(
                m.signing_keys.c.id
            )
        ).all()
    newest = max((row.id for row in rows), default=None)
    return [
        {
            "id": row.id,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "state": "signing"
            if row.id == newest
            else "expired"
            if row.expires_at and row.expires_at <= now
            else "verifying",
        }
        for row in rows
    ]


def links(signer: Signer, base_url: str, message_id: int) -> dict[str, str]:
    """The open-pixel and unsubscribe URLs of a message."""
    return {
        "open": f"{base_url}/o/{signer.sign('open', message_id)}.gif",
        "unsubscribe": f"{base_url}/u/{signer.sign('unsubscribe', message_id)}",
    }


def click_url(signer: Signer, base_url: str, message_id: int, target: str) -> str:
    """The tracked redirect to ``target`` for a message."""
    return f"{base_url}/c/{signer.sign('click', message_id, target)}?u={quote(target, safe='')}"
