"""Who is acting and what they may do: the principal of a call, permission checks and record scopes in SQL.

Every service asks ``crm.access`` the same question the same way — *may this user do this
action on this record?* — so the CLI, the HTTP API and the web console cannot disagree.
A call runs as the **system** (embedding code's plain ``crm``: unrestricted) or as a **user**
(``crm.as_user("lan")``, a token, a web session). The principal travels in a context
variable, never as an argument.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager, _GeneratorContextManager, contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.permissions import CORE_PERMISSIONS, Permission
from crmkit.errors import NotFound, PermissionDenied, PluginError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.sql import Select

    from crmkit.crm import CRM

CONTACT_DETAILS = "customers.contact_details"
#: The core's services on a CRM (plugins' are ``crm.<name>`` through ``crmkit_services``): a handle wraps them.
CORE_SERVICES = frozenset(
    {
        "customers",
        "interactions",
        "audit",
        "users",
        "teams",
        "roles",
        "plugins",
        "access",
        "fields",
        "events",
        "webhooks",
    }
)


@attrs.frozen
class Principal:
    """The one a call acts for: a user with their granted permissions, or the system (``user_id`` None).

    ``grants`` maps each permission the user holds to its widest scope; ``team_owners`` are the
    usernames of everyone in the user's teams and their sub-teams (the user included), resolved
    once when the principal is made so a scoped query is one ``IN`` list.
    """

    user_id: int | None
    username: str
    grants: Mapping[str, str] = attrs.field(factory=dict)
    team_owners: frozenset[str] = frozenset()
    token_id: int | None = None

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def scope(self, permission: str) -> str | None:
        """The scope the principal holds ``permission`` with (``all`` for the system), or None."""
        return "all" if self.is_system else self.grants.get(permission)

    def owners(self, permission: str) -> frozenset[str] | None:
        """Usernames whose records ``permission`` reaches (None: every record, owned or not)."""
        scope = self.scope(permission)
        if scope == "all":
            return None
        if scope == "team":
            return self.team_owners
        if scope == "own":
            return frozenset({self.username})
        return frozenset()


SYSTEM = Principal(None, "system")

#: The principal of each CRM (by ``id``) in the running context: a thread or an asyncio task sees its own.
_ACTING: contextvars.ContextVar[Mapping[int, Principal]] = contextvars.ContextVar(
    "crmkit_acting", default=MappingProxyType({})
)  # read-only: every change sets a new mapping


class Access:
    """``crm.access``: the declared permissions, the current principal, and the checks services call."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self.permissions: dict[str, Permission] = {}
        for permission in CORE_PERMISSIONS:
            self.permissions[permission.name] = permission
        for plugin, declared in crm.hooks.permissions():
            for permission in declared:
                if not isinstance(permission, Permission):
                    raise PluginError(
                        plugin,
                        f"crmkit_permissions returned {permission!r}, not a crmkit.Permission",
                        hook="crmkit_permissions",
                    )
                if not permission.name.startswith(plugin + "."):
                    raise PluginError(
                        plugin, f"permission {permission.name} must start with '{plugin}.'", hook="crmkit_permissions"
                    )
                if permission.name in self.permissions:
                    raise PluginError(
                        plugin, f"permission {permission.name} is declared twice", hook="crmkit_permissions"
                    )
                self.permissions[permission.name] = attrs.evolve(permission, plugin=plugin)

    # -- the principal ---------------------------------------------------------------------------------

    @property
    def principal(self) -> Principal:
        """The principal of the running call: a user inside ``crm.as_user(...)``, else the system."""
        return _ACTING.get().get(id(self._crm), SYSTEM)

    @contextmanager
    def acting(self, principal: Principal) -> Iterator[Principal]:
        """Run the block as ``principal`` (the doors use it per request; ``crm.as_user`` wraps it)."""
        token = _ACTING.set({**_ACTING.get(), id(self._crm): principal})
        try:
            yield principal
        finally:
            _ACTING.reset(token)

    # -- checks -----------------------------------------------------------------------------------------

    def require(self, permission: str) -> str:
        """The scope the principal holds ``permission`` with; ``PermissionDenied`` (audited) when it lacks it."""
        if permission not in self.permissions:
            raise ValueError(f"permission {permission!r} is not declared by the core or any enabled plugin")
        principal = self.principal
        scope = principal.scope(permission)
        if scope is None:
            self._crm.audit.denied(principal, permission)
            raise PermissionDenied(permission, principal.username)
        return scope

    def allowed(self, permission: str) -> bool:
        """Whether the principal holds ``permission`` at all (for showing or hiding a door; nothing is audited)."""
        return self.principal.scope(permission) is not None

    def owner_filter(self, owner: sa.ColumnElement[Any], permission: str) -> sa.ColumnElement[bool]:
        """A predicate on an owner (username) column: the rows ``permission``'s scope reaches.

        Requires the permission. ``all`` (and the system) gives a predicate that is always true.
        """
        self.require(permission)
        owners = self.principal.owners(permission)
        if owners is None:
            return sa.true()
        return owner.in_(sorted(owners)) if owners else sa.false()

    def customers(self, customer_id: sa.ColumnElement[Any], permission: str) -> sa.ColumnElement[bool]:
        """A predicate on a ``customer_id`` column of any table: rows about customers ``permission``'s scope reaches.

        The one helper plugins scope their customer-owned tables with: ``query.where(crm.access.customers(
        orders.c.customer_id, "sales.orders.read"))`` — still one indexed query, keyset paging intact.
        """
        self.require(permission)
        owners = self.principal.owners(permission)
        if owners is None:
            return sa.true()
        if not owners:
            return sa.false()
        return customer_id.in_(sa.select(t.customers.c.id).where(t.customers.c.owner.in_(sorted(owners))))

    def scoped(self, query: Select, customer_id: sa.ColumnElement[Any], permission: str) -> Select:
        """``query`` narrowed, in SQL, to rows whose customer ``permission``'s scope reaches (requires it);
        nothing is added for the system or a scope of ``all``, so their queries stay exactly as fast."""
        self.require(permission)
        if self.principal.owners(permission) is None:
            return query
        return query.where(self.customers(customer_id, permission))

    def require_owned(self, owner: str | None, permission: str, what: str) -> None:
        """``PermissionDenied`` (audited) unless ``permission``'s scope reaches a record owned by ``owner`` —
        for records owned by users rather than about a customer (a campaign, a segment); ``what`` names it."""
        self.require(permission)
        if self.covers(owner, permission):
            return
        principal = self.principal
        whose = f"owned by {owner}" if owner else "without an owner"
        self._crm.audit.denied(principal, permission, f"{what} is {whose}, outside its scope")
        raise PermissionDenied(permission, principal.username, f"{what} is {whose}, outside your scope")

    def check_owner(
        self, conn: sa.Connection, owner: str | None, permission: str, *, field: str = "owner", row: int | None = None
    ) -> None:
        """A record's owner (a customer's, a deal's, a task's assignee) must be an active user, and one the
        acting user may give records to — within ``permission``'s scope; ``ValidationError`` naming ``field``."""
        principal = self.principal
        if owner is None:
            if self.principal.owners(permission) is not None:  # an unowned record would leave the user's own scope
                raise ValidationError(f"name an owner within your scope of {permission}", field=field, row=row)
            return
        if principal.is_system or owner != principal.username:  # the acting user is known to be active
            self._crm.users.require_assignable(conn, [owner], field=field, row=row)
        if not self.covers(owner, permission):
            raise ValidationError(f"{owner!r} is outside your scope of {permission}", field=field, row=row)

    def hidden_contacts(self, conn: sa.Connection, customer_ids: Collection[int]) -> set[int]:
        """Those of these customers whose contact details the acting user may not see (to mask them):
        one query, and none at all for a user who sees every customer's."""
        owners = self.contact_owners()
        if owners is None or not customer_ids:
            return set()
        c = t.customers.c
        seen = c.owner.in_(sorted(owners)) if owners else sa.false()
        return set(
            conn.execute(
                sa.select(c.id).where(c.id.in_(sorted(set(customer_ids))), sa.or_(c.owner.is_(None), ~seen))
            ).scalars()
        )

    def require_customer(self, conn: sa.Connection, customer_id: int, permission: str) -> None:
        """Require ``permission`` on this customer: ``NotFound`` when it is outside the scope (or absent).

        When the customer is within the principal's ``customers.read`` scope (so its existence is
        known to them) but not ``permission``'s, ``PermissionDenied`` says so instead.
        """
        self.require(permission)
        self.require_customers(conn, [customer_id], permission)

    def require_customers(self, conn: sa.Connection, customer_ids: Collection[int], permission: str) -> None:
        """:meth:`require_customer` for many ids at once (one query)."""
        owners = self.principal.owners(permission)
        if owners is None or not customer_ids:
            return
        c = t.customers.c
        found = dict(conn.execute(sa.select(c.id, c.owner).where(c.id.in_(sorted(set(customer_ids))))).all())
        for customer_id in customer_ids:
            if customer_id in found and found[customer_id] in owners:
                continue
            readable = self.principal.owners("customers.read")
            if customer_id in found and (readable is None or found[customer_id] in readable):
                self._crm.audit.denied(self.principal, permission, f"customer {customer_id} is outside its scope")
                raise PermissionDenied(
                    permission, self.principal.username, f"customer {customer_id} is outside your scope"
                )
            raise NotFound("customer", customer_id)

    def covers(self, owner: str | None, permission: str) -> bool:
        """Whether ``permission``'s scope reaches records owned by ``owner`` (unowned ones: only with ``all``)."""
        owners = self.principal.owners(permission)
        return owners is None or owner in owners

    def contact_owners(self) -> frozenset[str] | None:
        """Owners whose customers' contact details the principal sees in clear (None: all)."""
        return self.principal.owners(CONTACT_DETAILS)

    def sees_contacts_of(self, owner: str | None) -> bool:
        """Whether contact details of a customer owned by ``owner`` are shown in clear (else masked)."""
        owners = self.contact_owners()
        return owners is None or owner in owners


# --- a CRM handle that acts as one user ------------------------------------------------------------------


#: Modules whose objects are tools, not services: a handle hands them out as they are.
_TOOLS = (
    "builtins",
    "sqlalchemy",
    "pathlib",
    "datetime",
    "decimal",
    "zoneinfo",
    "collections",
    "marshmallow",
    "pluggy",
)


def _is_service(value: Any) -> bool:
    """Objects a service hands out that a handle wraps too (``crm.qci.assessments``): anything but values
    (attrs and dataclass instances, builtins, paths, times), tools (SQLAlchemy, marshmallow), classes and modules."""
    kind = type(value)
    module = (kind.__module__ or "").split(".")[0]
    return not (
        module in _TOOLS
        or attrs.has(kind)
        or dataclasses.is_dataclass(value)
        or inspect.isclass(value)
        or inspect.ismodule(value)
        or isinstance(value, BaseException)
        or callable(value)
    )


class UserHandle:
    """What ``crm.as_user(...)`` returns: the CRM, with every service call made as that user.

    ``lan = crm.as_user("lan"); lan.customers.find()`` checks ``customers.read`` and sees only
    Lan's scope; ``lan.sales.orders(...)`` likewise. ``with crm.as_user("lan"):`` runs a whole
    block as Lan on the plain ``crm`` (what the doors do per request).
    """

    def __init__(self, crm: CRM, principal: Principal) -> None:
        self._crm = crm
        self.principal = principal
        self._stack: list[AbstractContextManager[Any]] = []

    def __getattr__(self, name: str) -> Any:
        with self._crm.access.acting(self.principal):  # a property (``crm.actor``) reads as the user too
            value = getattr(self._crm, name)
        if name in CORE_SERVICES or self._crm.has_service(name):
            return _BoundService(value, self._crm, self.principal)
        return _bind(value, self._crm, self.principal)

    def __enter__(self) -> UserHandle:
        manager = self._crm.access.acting(self.principal)
        manager.__enter__()
        self._stack.append(manager)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.pop().__exit__(*exc)

    def __repr__(self) -> str:
        return f"<CRM handle acting as {self.principal.username!r}>"


class _BoundService:
    """A service reached through a :class:`UserHandle`: its methods run as the handle's user."""

    def __init__(self, service: Any, crm: CRM, principal: Principal) -> None:
        self._service = service
        self._crm = crm
        self._principal = principal

    def __getattr__(self, name: str) -> Any:
        with self._crm.access.acting(self._principal):  # a property (``access.principal``) reads as the user
            value = getattr(self._service, name)
        return _bind(value, self._crm, self._principal, nested=True)

    def __repr__(self) -> str:
        return f"<{self._service!r} as {self._principal.username!r}>"


def _bind(value: Any, crm: CRM, principal: Principal, *, nested: bool = False) -> Any:
    """A callable made to run as ``principal``; inside a service (``nested``), a sub-service wrapped likewise."""
    if inspect.ismethod(value) or inspect.isfunction(value):

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            with crm.access.acting(principal):
                result = value(*args, **kwargs)
            return _bind_result(result, crm, principal)

        return call
    if nested and _is_service(value):
        return _BoundService(value, crm, principal)
    return value


def _bind_result(result: Any, crm: CRM, principal: Principal) -> Any:
    """Generators keep running as the user; context managers' blocks run as the user."""
    if inspect.isgenerator(result):
        return _iterate_as(result, crm, principal)
    if isinstance(result, _GeneratorContextManager):  # crm.transaction(), crm.reading(), a service's own blocks
        return _enter_as(result, crm, principal)
    return result


def _iterate_as(generator: Iterator[Any], crm: CRM, principal: Principal) -> Iterator[Any]:
    while True:
        with crm.access.acting(principal):
            try:
                item = next(generator)
            except StopIteration:
                return
        yield item


@contextmanager
def _enter_as(manager: AbstractContextManager[Any], crm: CRM, principal: Principal) -> Iterator[Any]:
    with crm.access.acting(principal), manager as value:
        yield value
