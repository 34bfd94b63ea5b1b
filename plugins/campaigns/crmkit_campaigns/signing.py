"""Signed tracking tokens: open pixels, click redirects, unsubscribe links and the provider-webhook secret.

A token is ``<key id>.<message id, hex>.<HMAC-SHA256, 128 bits>``; the MAC covers what the token is
for (``open``, ``click`` + the target URL, ``unsubscribe``), so a pixel token cannot unsubscribe
anyone and a click token cannot redirect elsewhere. Keys live in ``campaign_signing_keys`` (made on
first use, one random 256-bit secret); the key id lets a new key be added without breaking old links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

import sqlalchemy as sa

from crmkit.core.types import utcnow
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
        return any(hmac.compare_digest(given, _b64(hmac.new(key, b"webhook", hashlib.sha256).digest()).encode())
                   for key in self.keys.values())


def load_signer(crm: CRM) -> Signer:
    """The CRM's signer; the first call creates its key (in its own transaction — call it outside one)."""
    with crm.reading() as conn:
        keys = dict(conn.execute(sa.select(m.signing_keys.c.id, m.signing_keys.c.secret)).all())
    if not keys:
        try:
            with crm.transaction() as session:
                session.connection().execute(m.signing_keys.insert().values(
                    id=1, secret=secrets.token_hex(32), created_at=utcnow()))
        except sa.exc.IntegrityError:
            pass  # another process made it first: use theirs
        with crm.reading() as conn:
            keys = dict(conn.execute(sa.select(m.signing_keys.c.id, m.signing_keys.c.secret)).all())
    return Signer({key_id: bytes.fromhex(secret) for key_id, secret in keys.items()})


def links(signer: Signer, base_url: str, message_id: int) -> dict[str, str]:
    """The open-pixel and unsubscribe URLs of a message."""
    return {
        "open": f"{base_url}/o/{signer.sign('open', message_id)}.gif",
        "unsubscribe": f"{base_url}/u/{signer.sign('unsubscribe', message_id)}",
    }


def click_url(signer: Signer, base_url: str, message_id: int, target: str) -> str:
    """The tracked redirect to ``target`` for a message."""
    return f"{base_url}/c/{signer.sign('click', message_id, target)}?u={quote(target, safe='')}"
