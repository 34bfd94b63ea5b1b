"""Console sign-in sessions: server-side rows keyed by the SHA-256 of a random cookie token, and CSRF tokens.

A session ends after ``IDLE`` without a request or ``ABSOLUTE`` after sign-in, whichever comes first;
signing out deletes its row. Every form carries an HMAC of the session's secret and the form's action,
so a page of another site cannot post as the user; the API accepts the cookie too (:class:`SessionAuthenticator`),
its changes then need the ``X-CSRF-Token`` header the console's pages send.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.errors import AuthenticationFailed

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from crmkit.core.access import Principal
    from crmkit.crm import CRM

COOKIE = "crmkit_session"
SIGN_IN_COOKIE = "crmkit_sign_in"  # the sign-in form's CSRF secret, before there is a session
IDLE = timedelta(hours=8)
ABSOLUTE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
API_ACTION = "api"  # the CSRF action of the API calls the console's pages make
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # need no CSRF token


@attrs.frozen
class ConsoleSession:
    """A live session: whose it is and its CSRF secret."""

    id: str
    user_id: int
    username: str
    csrf_secret: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """The ``console_sessions`` table: start, find (sliding the idle timeout) and end sessions."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def start(self, user_id: int) -> str:
        """A new session for the user; returns the cookie's token (only its hash is stored)."""
        token, now = secrets.token_urlsafe(32), self._crm.now()
        with self._crm.transaction() as session:
            conn = session.connection()
            s = t.console_sessions.c  # sessions ended meanwhile go with each sign-in
            conn.execute(t.console_sessions.delete().where(sa.or_(s.expires_at <= now, s.last_seen_at <= now - IDLE)))
            conn.execute(
                t.console_sessions.insert().values(
                    id=_digest(token),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + ABSOLUTE,
                    csrf_secret=secrets.token_hex(32),
                )
            )
        return token

    def find(self, token: str) -> ConsoleSession | None:
        """The live session of a cookie token, or None (unknown, idle too long, past its end, user disabled)."""
        s, u = t.console_sessions.c, t.users.c
        now = self._crm.now()
        with self._crm.reading() as conn:
            row = conn.execute(
                sa.select(s.id, s.user_id, s.last_seen_at, s.expires_at, s.csrf_secret, u.username, u.active)
                .join(t.users, u.id == s.user_id)
                .where(s.id == _digest(token))
            ).first()
        if row is None:
            return None
        if not row.active or row.expires_at <= now or now - row.last_seen_at >= IDLE:
            self.end(token)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            with self._crm.transaction() as session:
                session.connection().execute(t.console_sessions.update().where(s.id == row.id).values(last_seen_at=now))
        return ConsoleSession(row.id, row.user_id, row.username, row.csrf_secret)

    def end(self, token: str) -> None:
        """Sign out: the session's row is deleted, its cookie then signs no one in."""
        with self._crm.transaction() as session:
            session.connection().execute(t.console_sessions.delete().where(t.console_sessions.c.id == _digest(token)))

    def end_all(self, user_id: int, *, keep: str | None = None) -> int:
        """End every session of a user (their password changed, or they were disabled), except the session ``keep``
        (a :attr:`ConsoleSession.id`: the administrator's own stays open); returns how many ended."""
        s = t.console_sessions.c
        where = s.user_id == user_id if keep is None else sa.and_(s.user_id == user_id, s.id != keep)
        with self._crm.transaction() as session:
            return int(session.connection().execute(t.console_sessions.delete().where(where)).rowcount)


def csrf_token(secret: str, action: str) -> str:
    """The token a form posting to ``action`` carries: an HMAC of the session's secret and the action."""
    return hmac.new(secret.encode(), action.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, action: str, given: str | None) -> bool:
    """Whether ``given`` is the token of ``action`` (compared in constant time)."""
    return bool(given) and hmac.compare_digest(csrf_token(secret, action), given or "")


def same_origin(request: Request) -> bool:
    """False when ``Origin`` (else ``Referer``) names another site than the request's own; True when neither is sent."""
    given = request.headers.get("Origin") or request.headers.get("Referer")
    if not given:
        return True
    parts = urlsplit(given)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.scheme}://{request.host}"


class SessionAuthenticator:
    """The API's :class:`crmkit.web.app.Authenticator` for the console's cookie; changes need ``X-CSRF-Token``."""

    def __call__(self, crm: CRM, request: Request) -> Principal | None:
        """The session's user, None without the cookie; a stale cookie or a change without the CSRF header fails."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        found = Sessions(crm).find(token)
        if found is None:
            raise AuthenticationFailed("the console session ended: sign in again")
        if request.method not in SAFE_METHODS and not (
            same_origin(request) and csrf_valid(found.csrf_secret, API_ACTION, request.headers.get("X-CSRF-Token"))
        ):
            from crmkit.web.problems import HttpProblem

            raise HttpProblem(403, "a change made with the console's cookie needs its X-CSRF-Token header")
        return crm.users.principal(found.username)
