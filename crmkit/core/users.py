"""``crm.users``: the business's employees — accounts, passwords, sign-in with lockout, API tokens, reassignment.

Passwords are hashed with argon2id; tokens are 256 random bits of which only a SHA-256 is
stored (a token is not a password: it cannot be guessed, so a fast hash is enough and keeps
every API request cheap). Secrets are compared in constant time, and an unknown username
costs the same as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.access import Principal, UserHandle
from crmkit.core.models import ApiToken, User
from crmkit.errors import AuthenticationFailed, Conflict, NotFound, ValidationError
from crmkit.locales import LOCALES
from crmkit.vncalendar import zone_named

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from crmkit.crm import CRM

ADMIN = "users.admin"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")
MIN_PASSWORD = 10
#: Failed sign-ins allowed in a row before the account locks; each further one doubles the lock, up to a day.
FREE_FAILURES = 5
MAX_LOCK = timedelta(days=1)
#: A token's last use is written at most this often (each request reads it; few need write it).
TOKEN_TOUCH = timedelta(minutes=1)
#: A token and its user by the token's lookup part: built once, as every API request runs it.
_TOKEN_LOOKUP = (
    sa.select(
        t.api_tokens.c.id,
        t.api_tokens.c.secret_hash,
        t.api_tokens.c.permissions,
        t.api_tokens.c.expires_at,
        t.api_tokens.c.revoked_at,
        t.api_tokens.c.last_used_at,
        t.users.c.id.label("user_id"),
        t.users.c.username,
        t.users.c.active,
    )
    .join(t.users, t.users.c.id == t.api_tokens.c.user_id)
    .where(t.api_tokens.c.lookup == sa.bindparam("lookup"))
)
#: Users with their teams and roles by id (``ids``), and a user's id by ``username``: built once, as every console
#: page reads its user.
_USERS = sa.select(t.users).where(t.users.c.id.in_(sa.bindparam("ids", expanding=True)))
_USERS_TEAMS = (
    sa.select(t.team_members.c.user_id, t.teams.c.name)
    .join(t.teams, t.teams.c.id == t.team_members.c.team_id)
    .where(t.team_members.c.user_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(t.teams.c.name)
)
_USERS_ROLES = (
    sa.select(t.user_roles.c.user_id, t.roles.c.name)
    .join(t.roles, t.roles.c.id == t.user_roles.c.role_id)
    .where(t.user_roles.c.user_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(t.roles.c.name)
)
_USER_ID = sa.select(t.users.c.id).where(t.users.c.username == sa.bindparam("username"))
#: How long a token's roles and teams, once read, serve its requests (the token itself is checked every time).
PRINCIPAL_TTL = 5.0
#: Arguments of argon2's ``PasswordHasher``: none, its recommended costs. ``crmkit.testing`` lowers them for a
#: test run (the cost protects stored passwords; in a test suite it only slows every sign-in down).
PASSWORD_HASHING: dict[str, int] = {}
TOKEN_PREFIX = "crmkit_"  # noqa: S105 - the public prefix of every token, not a secret
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password123",
        "123456789",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "iloveyou",
        "matkhau123",
        "matkhau1234",
        "admin12345",
        "abc123456",
        "11111111111",
        "0123456789",
        "abcdefghij",
    }
)
_FIELDS = ("display_name", "email", "phone", "locale", "timezone")


def check_password(password: str, username: str) -> None:
    """Refuse a weak password with the reason (length, variety, the username inside it, a common one)."""
    if not password:
        raise ValidationError("a password is required", field="password")
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"must be at least {MIN_PASSWORD} characters", field="password")
    if len(set(password)) < 4:
        raise ValidationError("is too repetitive (use at least 4 different characters)", field="password")
    if username.lower() in password.lower() or password.lower() in _COMMON:
        raise ValidationError("is too easy to guess (a common password, or the username in it)", field="password")


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Users:
    """The user service of one CRM (``crm.users``); changes need ``users.admin`` and are audited."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._hasher: PasswordHasher | None = None
        self._dummy_hash: str | None = None
        self._token_principals: dict[int, tuple[float, Principal]] = {}

    @property
    def hasher(self) -> PasswordHasher:
        """argon2id with the library's recommended parameters (made on first use: importing argon2 costs)."""
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher(**PASSWORD_HASHING)
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        return self._hasher

    # -- accounts ---------------------------------------------------------------------------------------

    def add(
        self,
        username: str,
        display_name: str | None = None,
        *,
        password: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        locale: str | None = None,
        timezone: str | None = None,
        teams: Sequence[str] = (),
        roles: Sequence[str] = (),
    ) -> User:
        """Create an active user (``password`` optional: without one they sign in once it is set)."""
        self._crm.access.require(ADMIN)
        if not USERNAME.match(username or ""):
            raise ValidationError(
                "must be 1–100 lower-case letters, digits or . _ @ - (starting with a letter or digit)",
                field="username",
            )
        values = self._validate(
            {
                "display_name": display_name or username,
                "email": email,
                "phone": phone,
                "locale": locale,
                "timezone": timezone,
            }
        )
        if password is not None:
            check_password(password, username)
        now = self._crm.now()
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).first():
                raise Conflict(f"user {username!r} already exists")
            user_id = conn.execute(
                t.users.insert()
                .values(
                    username=username,
                    active=True,
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                    password_hash=self.hasher.hash(password) if password is not None else None,
                    **values,
                )
                .returning(t.users.c.id)
            ).scalar_one()
            self._crm.audit.record(session, "create", "user", username, changes=values)
            for team in teams:
                self._crm.teams.add_member(team, username)
            for role in roles:
                self._crm.roles.assign(username, role)
            return self._load(conn, user_id)

    def update(self, username: str, **fields: Any) -> User:
        """Change display name, e-mail, phone, locale or time zone (the username never changes)."""
        self._crm.access.require(ADMIN)
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValidationError(f"cannot be changed (one of {', '.join(_FIELDS)})", field=sorted(unknown)[0])
        values = self._validate(fields)
        with self._crm.transaction() as session:
            conn = session.connection()
            user_id = self.id_of(conn, username)
            conn.execute(t.users.update().where(t.users.c.id == user_id).values(**values, updated_at=self._crm.now()))
            self._crm.audit.record(session, "update", "user", username, changes=values)
            return self._load(conn, user_id)

    def disable(self, username: str) -> User:
        """A disabled user can do nothing (no sign-in, no token, no record assigned to them); their records stay."""
        return self._set_active(username, False)

    def enable(self, username: str) -> User:
        """Let a disabled user back in (their failed sign-ins are forgotten)."""
        return self._set_active(username, True)

    def unlock(self, username: str) -> User:
        """Lift a lock from wrong passwords now (its failed sign-ins are forgotten), without changing the password."""
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            user_id = self.id_of(conn, username)
            conn.execute(
                t.users.update()
                .where(t.users.c.id == user_id)
                .values(failed_logins=0, locked_until=None, updated_at=self._crm.now())
            )
            self._crm.audit.record(session, "unlock", "user", username)
            return self._load(conn, user_id)

    def _set_active(self, username: str, active: bool) -> User:
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            user_id = self.id_of(conn, username)
            conn.execute(
                t.users.update()
                .where(t.users.c.id == user_id)
                .values(active=active, failed_logins=0, locked_until=None, updated_at=self._crm.now())
            )
            self._crm.audit.record(session, "enable" if active else "disable", "user", username)
            return self._load(conn, user_id)

    def set_password(self, username: str, password: str) -> None:
        """Set a user's password (hashed with argon2id); a weak or empty one is refused with the reason.

        Every console session of the user ends in the same transaction, whichever door changed it: a password
        is changed because someone else may know the old one.
        """
        self._crm.access.require(ADMIN)
        check_password(password, username)
        hashed = self.hasher.hash(password)
        with self._crm.transaction() as session:
            conn = session.connection()
            user_id = self.id_of(conn, username)
            conn.execute(
                t.users.update()
                .where(t.users.c.id == user_id)
                .values(password_hash=hashed, failed_logins=0, locked_until=None, updated_at=self._crm.now())
            )
            conn.execute(t.console_sessions.delete().where(t.console_sessions.c.user_id == user_id))
            self._crm.audit.record(session, "password", "user", username)

    def get(self, username: str) -> User:
        """The user with this username (``NotFound`` otherwise); anyone may see who their colleagues are."""
        with self._crm.reading() as conn:
            return self._load(conn, self.id_of(conn, username))

    def list(self, *, active: bool | None = None, team: str | None = None) -> list[User]:
        """Every user by username, optionally only active (or disabled) ones, or a team's members."""
        u = t.users.c
        query = sa.select(u.id).order_by(u.username)
        if active is not None:
            query = query.where(u.active.is_(active))
        with self._crm.reading() as conn:
            if team is not None:
                team_id = self._crm.teams.id_of(conn, team)
                query = query.where(
                    u.id.in_(sa.select(t.team_members.c.user_id).where(t.team_members.c.team_id == team_id))
                )
            return self._load_many(conn, list(conn.execute(query).scalars()))

    def reassign(self, from_user: str, to_user: str) -> int:
        """Give every customer owned by ``from_user`` to ``to_user`` (someone leaves): one audited change.

        Returns how many customers moved. ``to_user`` must be an active user.
        """
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            self.id_of(conn, from_user)
            self.require_assignable(conn, [to_user])
            c, k = t.customers.c, t.search_keys.c
            # the search keys carry their customer's owner (only active customers have keys)
            conn.execute(
                t.search_keys.update()
                .where(
                    k.owner == from_user,
                    k.customer_id.in_(sa.select(c.id).where(c.owner == from_user, c.status == "active")),
                )
                .values(owner=to_user)
            )
            moved = conn.execute(
                t.customers.update()
                .where(c.owner == from_user, c.status == "active")
                .values(owner=to_user, updated_at=self._crm.now())
            ).rowcount
            self._crm.audit.record(session, "reassign", "user", from_user, changes={"to": to_user, "customers": moved})
            return int(moved)

    # -- references from records ---------------------------------------------------------------------

    def id_of(self, conn: sa.Connection, username: str) -> int:
        """The id of ``username`` (``NotFound`` naming it otherwise)."""
        found = conn.execute(_USER_ID, {"username": username}).scalar()
        if found is None:
            raise NotFound("user", username)
        return int(found)

    def require_assignable(
        self, conn: sa.Connection, usernames: Iterable[str], *, field: str = "owner", row: int | None = None
    ) -> None:
        """Refuse records given to an unknown or disabled user (``ValidationError`` naming the field and user)."""
        wanted = sorted({u for u in usernames if u is not None})
        if not wanted:
            return
        u = t.users.c
        active = dict(conn.execute(sa.select(u.username, u.active).where(u.username.in_(wanted))).all())
        for username in wanted:
            if username not in active:
                raise ValidationError(f"no user {username!r}", field=field, row=row)
            if not active[username]:
                raise ValidationError(f"user {username!r} is disabled", field=field, row=row)

    def active_usernames(self, conn: sa.Connection) -> frozenset[str]:
        """Every active username (imports check owners against it once, not per row)."""
        u = t.users.c
        return frozenset(conn.execute(sa.select(u.username).where(u.active.is_(True))).scalars())

    # -- signing in ----------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> User:
        """Check a password: the user, or ``AuthenticationFailed`` (audited with its reason).

        After ``FREE_FAILURES`` wrong passwords in a row the account locks for a minute, then
        twice as long after each further failure (at most a day); a right password while locked
        is refused too. Unknown users cost the same time as known ones.
        """
        hasher = self.hasher
        from argon2.exceptions import InvalidHashError, VerificationError

        u = t.users.c
        with self._crm.reading() as conn:  # the hash is checked outside the write transaction: it takes ~50 ms
            row = conn.execute(
                sa.select(u.id, u.active, u.password_hash, u.locked_until).where(u.username == username)
            ).first()
        stored = row.password_hash if row is not None and row.password_hash else None
        try:
            hasher.verify(stored or self._dummy_hash or "", password)
            matches = stored is not None
        except (VerificationError, InvalidHashError):
            matches = False
        now = self._crm.now()
        reason = None
        if row is None:
            reason = "unknown user"
        elif not row.active:
            reason = "user disabled"
        elif row.locked_until is not None and row.locked_until > now:
            reason = f"locked until {row.locked_until.isoformat(timespec='seconds')}"
        elif not matches:
            reason = "wrong password" if stored else "no password set"
        with self._crm.transaction() as session:
            conn = session.connection()
            if reason is None:
                assert row is not None and stored is not None  # noqa: S101 - reason is None says so; for mypy
                values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
                if hasher.check_needs_rehash(stored):
                    values["password_hash"] = hasher.hash(password)
                conn.execute(t.users.update().where(u.id == row.id).values(**values))
                self._crm.audit.record(session, "login", "user", username, user_id=row.id)
                return self._load(conn, row.id)
            if row is not None and reason in ("wrong password", "no password set"):
                # one atomic increment: concurrent wrong guesses all count
                failures = conn.execute(
                    t.users.update()
                    .where(u.id == row.id)
                    .values(failed_logins=u.failed_logins + 1)
                    .returning(u.failed_logins)
                ).scalar_one()
                if failures >= FREE_FAILURES:
                    lock = now + min(timedelta(minutes=2 ** min(failures - FREE_FAILURES, 20)), MAX_LOCK)
                    conn.execute(t.users.update().where(u.id == row.id).values(locked_until=lock))
            self._crm.audit.record(
                session,
                "login_failed",
                "user",
                username,
                user_id=row.id if row is not None else None,
                changes={"reason": reason},
            )
        raise AuthenticationFailed("wrong username or password, or the account is disabled or locked")

    # -- principals ---------------------------------------------------------------------------------

    def principal(self, username: str) -> Principal:
        """The principal of an active user: their roles' permissions (widest scope of each) and team owners.

        ``AuthenticationFailed`` for a disabled user, ``NotFound`` for an unknown one (a token's principal,
        narrowed to its permissions, comes from :meth:`token_principal`).
        """
        self._crm.roles.apply_defaults()
        with self._crm.reading() as conn:
            u = t.users.c
            row = conn.execute(sa.select(u.id, u.active).where(u.username == username)).first()
            if row is None:
                raise NotFound("user", username)
            if not row.active:
                raise AuthenticationFailed(f"user {username!r} is disabled")
            return self._principal(conn, row.id, username, None, None)

    def _principal(
        self, conn: sa.Connection, user_id: int, username: str, only: Iterable[str] | None, token_id: int | None
    ) -> Principal:
        order = {scope: n for n, scope in enumerate(("own", "team", "all"))}
        grants: dict[str, str] = {}
        rp, ur = t.role_permissions.c, t.user_roles.c
        for permission, scope in conn.execute(
            sa.select(rp.permission, rp.scope).join(t.user_roles, ur.role_id == rp.role_id).where(ur.user_id == user_id)
        ):
            if permission in self._crm.access.permissions and order[scope] > order.get(grants.get(permission, ""), -1):
                grants[permission] = scope
        if only is not None:
            allowed = set(only)
            grants = {p: s for p, s in grants.items() if p in allowed}
        teams = self._crm.teams.reach(conn, user_id)
        owners = {username}
        if teams:
            tm = t.team_members.c
            owners.update(
                conn.execute(
                    sa.select(t.users.c.username)
                    .join(t.team_members, tm.user_id == t.users.c.id)
                    .where(tm.team_id.in_(sorted(teams)))
                ).scalars()
            )
        return Principal(user_id, username, grants, frozenset(owners), token_id)

    def handle(self, username: str) -> UserHandle:
        """``crm.as_user(username)``: a CRM handle acting as this user."""
        return UserHandle(self._crm, self.principal(username))

    # -- API tokens -----------------------------------------------------------------------------------

    def create_token(
        self, username: str, name: str, *, permissions: Sequence[str] | None = None, expires_at: datetime | None = None
    ) -> ApiToken:
        """A token for an integration acting as ``username``; its ``secret`` is shown this once.

        ``permissions`` narrows it to a subset of the user's permissions (names checked);
        ``expires_at`` (timezone-aware) ends it.
        """
        self._crm.access.require(ADMIN)
        if not name or len(name) > 100:
            raise ValidationError("give the token a name of 1–100 characters", field="name")
        if permissions is not None:
            for permission in permissions:
                if permission not in self._crm.access.permissions:
                    raise ValidationError(f"unknown permission {permission!r}", field="permissions")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ValidationError("must include a time zone", field="expires_at")
            if expires_at <= self._crm.now():
                raise ValidationError("is already past", field="expires_at")
        lookup, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._crm.transaction() as session:
            conn = session.connection()
            user_id = self.id_of(conn, username)
            token_id = conn.execute(
                t.api_tokens.insert()
                .values(
                    user_id=user_id,
                    name=name,
                    lookup=lookup,
                    secret_hash=token_hash(secret),
                    permissions=sorted(set(permissions)) if permissions is not None else None,
                    expires_at=expires_at,
                    created_at=self._crm.now(),
                )
                .returning(t.api_tokens.c.id)
            ).scalar_one()
            self._crm.audit.record(
                session,
                "create",
                "token",
                token_id,
                changes={"user": username, "name": name, "permissions": permissions},
            )
            token = self._tokens(conn, t.api_tokens.c.id == token_id)[0]
        from attrs import evolve

        return evolve(token, secret=f"{TOKEN_PREFIX}{lookup}_{secret}")

    def tokens(self, username: str | None = None) -> list[ApiToken]:
        """Tokens (all, or one user's), newest first; secrets are never shown again."""
        self._crm.access.require(ADMIN)
        with self._crm.reading() as conn:
            where = t.api_tokens.c.user_id == self.id_of(conn, username) if username else sa.true()
            return self._tokens(conn, where)

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token at once (its later use is refused and audited)."""
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            done = conn.execute(
                t.api_tokens.update()
                .where(t.api_tokens.c.id == token_id)
                .values(revoked_at=sa.func.coalesce(t.api_tokens.c.revoked_at, self._crm.now()))
            ).rowcount
            if not done:
                raise NotFound("token", token_id)
            self._crm.audit.record(session, "revoke", "token", token_id)

    def token_principal(self, token: str) -> Principal:
        """The principal a bearer token acts as (narrowed to its permissions); ``AuthenticationFailed``
        (audited) for a malformed, unknown, revoked or expired token, or a disabled user."""
        self._crm.roles.apply_defaults()
        lookup, secret = _split_token(token)
        k = t.api_tokens.c
        now = self._crm.now()
        with self._crm.reading() as conn:
            row = conn.execute(_TOKEN_LOOKUP, {"lookup": lookup}).first()
            stored = row.secret_hash if row is not None else token_hash("")
            matches = hmac.compare_digest(stored, token_hash(secret)) and row is not None
            reason = (
                "unknown token"
                if not matches
                else "revoked"
                if row.revoked_at is not None
                else "expired"
                if row.expires_at is not None and row.expires_at <= now
                else "user disabled"
                if not row.active
                else None
            )
            if reason is None:
                principal = self._cached_principal(conn, row)
        if reason is not None:
            with self._crm.transaction() as session:
                self._crm.audit.record(
                    session,
                    "token_refused",
                    "token",
                    row.id if matches else lookup,
                    user_id=row.user_id if matches else None,
                    changes={"reason": reason},
                )
            raise AuthenticationFailed("invalid, expired or revoked token")
        if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH:
            with self._crm.transaction() as session:
                session.connection().execute(t.api_tokens.update().where(k.id == row.id).values(last_used_at=now))
                self._crm.audit.record(session, "token_used", "token", row.id, user_id=row.user_id)
        return principal

    def _cached_principal(self, conn: sa.Connection, row: Any) -> Principal:
        """A valid token's principal, its grants and teams read at most every ``PRINCIPAL_TTL`` seconds.

        An API client sends many requests a second: re-reading roles and teams for each would cost
        more than the request. Revoking, expiring or disabling still stops the very next request (the
        token row is read every time); a changed role reaches a token within the TTL.
        """
        now = time.monotonic()
        cached = self._token_principals.get(row.id)
        if cached is not None and now - cached[0] < PRINCIPAL_TTL:
            return cached[1]
        principal = self._principal(conn, row.user_id, row.username, row.permissions, row.id)
        if len(self._token_principals) > 10_000:
            self._token_principals.clear()
        self._token_principals[row.id] = (now, principal)
        return principal

    # -- internals --------------------------------------------------------------------------------------

    def _validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Checked values; an empty e-mail, phone, locale or time zone clears it."""
        result = {k: (None if v == "" and k != "display_name" else v) for k, v in values.items()}
        if "display_name" in result and not (result["display_name"] or "").strip():
            raise ValidationError("must not be empty", field="display_name")
        if result.get("display_name") and len(result["display_name"]) > 200:
            raise ValidationError("must be at most 200 characters", field="display_name")
        if result.get("email") and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", result["email"]):
            raise ValidationError(f"not an e-mail address: {result['email']!r}", field="email")
        if result.get("locale") and result["locale"] not in LOCALES:
            raise ValidationError(f"must be one of {', '.join(LOCALES)}", field="locale")
        if result.get("timezone"):
            zone_named(result["timezone"])
        if result.get("phone"):
            from crmkit.core.phones import PhoneError, normalize_phone

            try:
                result["phone"] = normalize_phone(result["phone"], self._crm.default_country)
            except PhoneError as exc:
                raise ValidationError(str(exc), field="phone") from None
        return result

    def _load(self, conn: sa.Connection, user_id: int) -> User:
        found = self._load_many(conn, [user_id])
        if not found:
            raise NotFound("user", user_id)
        return found[0]

    def _load_many(self, conn: sa.Connection, ids: Sequence[int]) -> list[User]:
        if not ids:
            return []
        params = {"ids": list(ids)}
        teams: dict[int, list[str]] = {}
        for user_id, name in conn.execute(_USERS_TEAMS, params):
            teams.setdefault(user_id, []).append(name)
        roles: dict[int, list[str]] = {}
        for user_id, name in conn.execute(_USERS_ROLES, params):
            roles.setdefault(user_id, []).append(name)
        rows = {r.id: r for r in conn.execute(_USERS, params)}
        return [
            User(
                id=r.id,
                username=r.username,
                display_name=r.display_name,
                email=r.email,
                phone=r.phone,
                active=r.active,
                locale=r.locale,
                timezone=r.timezone,
                teams=tuple(teams.get(r.id, ())),
                roles=tuple(roles.get(r.id, ())),
                has_password=r.password_hash is not None,
                locked_until=r.locked_until,
                last_login_at=r.last_login_at,
                created_at=r.created_at,
            )
            for r in (rows[i] for i in ids if i in rows)
        ]

    def _tokens(self, conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[ApiToken]:
        k = t.api_tokens.c
        rows = conn.execute(
            sa.select(t.api_tokens, t.users.c.username)
            .join(t.users, t.users.c.id == k.user_id)
            .where(where)
            .order_by(k.id.desc())
        ).mappings()
        return [
            ApiToken(
                id=r["id"],
                user=r["username"],
                name=r["name"],
                permissions=tuple(r["permissions"]) if r["permissions"] is not None else None,
                expires_at=r["expires_at"],
                last_used_at=r["last_used_at"],
                revoked_at=r["revoked_at"],
                created_at=r["created_at"],
            )
            for r in rows
        ]


def _split_token(token: str) -> tuple[str, str]:
    """``crmkit_<lookup>_<secret>`` → (lookup, secret); a malformed token gives parts that match nothing."""
    body = token[len(TOKEN_PREFIX) :] if token.startswith(TOKEN_PREFIX) else ""
    lookup, _, secret = body.partition("_")
    return (lookup, secret) if lookup and secret else ("", "")
