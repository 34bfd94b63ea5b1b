"""Named permissions, declared by code (the core here, plugins through ``crmkit_permissions``), and default roles.

A role is a set of ``(permission, scope)`` pairs stored in the database; this module only
says which permissions exist and what the shipped roles give by default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

#: Record scopes, narrowest first: records the user owns; owned by anyone in the user's teams and
#: their sub-teams; every record.
SCOPES = ("own", "team", "all")
ADMINISTRATOR = "administrator"
#: The roles a new database starts with (administrators may change them; they are never changed back).
DEFAULT_ROLES: Mapping[str, str] = {
    ADMINISTRATOR: "everything, on every record",
    "manager": "runs a branch or team: everything on the team's records, no user or system administration",
    "sales": "works their own customers, deals and orders",
    "marketing": "segments and campaigns on every customer, without contact details",
    "support": "answers any customer: reads them with contact details and logs interactions",
    "read-only": "reads every record without contact details; changes nothing",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _check_roles(instance: Permission, attribute: attrs.Attribute[Mapping[str, str]], value: Mapping[str, str]) -> None:
    for role, scope in value.items():
        if scope not in SCOPES:
            raise ValueError(
                f"permission {instance.name}: role {role!r} gets unknown scope {scope!r} (one of {', '.join(SCOPES)})"
            )
        if not instance.scoped and scope != "all":
            raise ValueError(
                f"permission {instance.name} is not about records: role {role!r} must get it with scope 'all'"
            )


@attrs.frozen
class Permission:
    """One thing a user may be allowed to do, e.g. ``sales.orders.refund``.

    ``scoped`` permissions apply to customer-owned records, so a role grants them with a scope
    (own / team / all); others (``users.admin``) are all or nothing. ``roles`` gives the default
    roles that get it and with which scope (administrator gets every permission with ``all``).
    ``plugin`` is filled in by crmkit with the declaring plugin's name (``core`` for the core's).
    """

    name: str = attrs.field()
    description: str
    scoped: bool = True
    roles: Mapping[str, str] = attrs.field(factory=dict, validator=_check_roles)
    plugin: str = ""

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not _NAME.match(value):
            raise ValueError(
                f"permission name must be dotted lower-case words like 'sales.orders.refund', got {value!r}"
            )


def _p(name: str, description: str, scoped: bool = True, **roles: str) -> Permission:
    return Permission(name, description, scoped, {k.replace("_", "-"): v for k, v in roles.items()}, "core")


#: The core's permissions (plugins declare theirs through the ``crmkit_permissions`` hook).
CORE_PERMISSIONS: tuple[Permission, ...] = (
    _p(
        "customers.read",
        "see customers, their profile and duplicates",
        manager="team",
        sales="own",
        marketing="all",
        support="all",
        read_only="all",
    ),
    _p(
        "customers.create",
        "add customers (and import them); with own scope only for oneself as owner",
        manager="team",
        sales="own",
        support="all",
    ),
    _p("customers.update", "change customers, their tags and consent", manager="team", sales="own", support="all"),
    _p("customers.merge", "merge duplicate customers", manager="team"),
    _p("customers.export", "export customers in bulk and a customer's data (right of access)", manager="team"),
    _p("customers.erase", "erase a customer (right to erasure)", manager="team"),
    _p(
        "customers.contact_details",
        "see phones, e-mails and street addresses (masked otherwise)",
        manager="team",
        sales="own",
        support="all",
    ),
    _p(
        "interactions.read",
        "see interactions and timelines",
        manager="team",
        sales="own",
        marketing="all",
        support="all",
        read_only="all",
    ),
    _p("interactions.log", "log calls, visits and messages", manager="team", sales="own", support="all"),
    _p("audit.read", "read the audit log (of the customers in scope; with all, the whole log)", manager="team"),
    _p("users.admin", "manage users, teams, roles and tokens", scoped=False),
    _p("settings.admin", "change CRM settings and enable or disable plugins", scoped=False),
    _p("webhooks.admin", "manage webhook subscriptions, see their deliveries and replay events", scoped=False),
)
