"""IDIC's permissions, the scope of a run, and contact details masked in what IDIC shows.

Every service call checks one of these permissions through ``crm.access``; lists and reports put
``crm.access.customers(...)`` in their SQL. Identifiers and match reasons carry e-mails and phones,
so they are masked for a user who may not see the customer's contact details.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import Permission
from crmkit.plugin_api import MASK, mask_email, mask_phone
from crmkit.plugin_api import core_tables as core

if TYPE_CHECKING:
    from crmkit import CRM

RUN = "idic.run"
REVIEW = "idic.review"
READ = "idic.read"
PLAN = "idic.plan"
#: What a run's automatic merges need besides ``idic.run`` (the core checks it on every merged customer).
MERGE = "customers.merge"

PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        RUN,
        "run and resume the IDIC workflow: every customer with scope all, else only the user's customers",
        roles={"manager": "team"},
    ),
    Permission(
        REVIEW,
        "decide the review queue of possible duplicates, see the merge log and undo merges "
        "(a pair shows only when both customers are in scope)",
        roles={"manager": "team"},
    ),
    Permission(
        READ,
        "see IDIC status, runs and their report, agendas, treatments and the customer-360 section",
        roles={"manager": "team", "sales": "own", "marketing": "all", "support": "all", "read-only": "all"},
    ),
    Permission(
        PLAN,
        "add, remove and hand off treatment rules (they are not customer records)",
        scoped=False,
        roles={"manager": "all", "marketing": "all"},
    ),
)


def run_scope(crm: CRM) -> sa.ColumnElement[bool] | None:
    """The customers a run made now covers, as a condition over core ``customers``: None for the whole base
    (the system, or ``idic.run`` with scope all), else the acting user's scope of ``idic.run``."""
    if crm.access.principal.owners(RUN) is None:
        return None
    return crm.access.owner_filter(core.customers.c.owner, RUN)


def both(crm: CRM, one: sa.ColumnElement[Any], two: sa.ColumnElement[Any], permission: str) -> sa.ColumnElement[bool]:
    """A pair of customers (review item, do-not-merge pair) in scope: both of them are."""
    return sa.and_(crm.access.customers(one, permission), crm.access.customers(two, permission))


# -- masking ------------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[^\s,;:()<>\"']+@[^\s,;()<>\"']+")
_PHONE = re.compile(r"\+\d{6,15}")
_SOCIAL = re.compile(r"(social:[a-z0-9_]+ )([^\s,;]+)")


def mask_handle(handle: str) -> str:
    """A social handle (often the phone number on Zalo) masked like an e-mail's local part: ``t***``."""
    return handle[:1] + MASK * 3


def mask_identifier(kind: str, value: str) -> str:
    """An identifier's value as a user without the customer's contact details sees it (ids and cards stay)."""
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    if kind.startswith("social:"):
        return mask_handle(value)
    return value


def mask_text(text: str | None) -> str | None:
    """A match reason or note with every e-mail, E.164 phone and social handle in it masked."""
    if not text:
        return text
    text = _EMAIL.sub(lambda found: mask_email(found.group()), text)
    text = _SOCIAL.sub(lambda found: found.group(1) + mask_handle(found.group(2)), text)
    return _PHONE.sub(lambda found: mask_phone(found.group()), text)


def mask_export(section: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """IDIC's rows of a customer's data export with contact details masked (identifiers, reasons, moved points)."""
    shown: dict[str, list[dict[str, Any]]] = {}
    for table, rows in section.items():
        shown[table] = [_mask_row(row) for row in rows]
    return shown


def _mask_row(row: Mapping[str, Any]) -> dict[str, Any]:
    masked = dict(row)
    if "kind" in masked and "value" in masked:
        masked["value"] = mask_identifier(masked["kind"], masked["value"])
    if "reason" in masked:
        masked["reason"] = mask_text(masked["reason"])
    moved = masked.get("moved")
    if isinstance(moved, Mapping) and moved.get("contact_points"):
        masked["moved"] = {
            **moved,
            "contact_points": [[kind, mask_identifier(kind, value)] for kind, value in moved["contact_points"]],
        }
    return masked


def shown_reasons(crm: CRM, rows: Iterable[Mapping[str, Any]], *owners: str) -> list[dict[str, Any]]:
    """Rows with their ``reason`` masked unless the user sees the contact details of every customer named by the
    ``owners`` keys of the row (which are dropped from what is returned)."""
    access = crm.access
    clear = access.contact_owners() is None
    shown = []
    for row in rows:
        values = {k: v for k, v in row.items() if k not in owners}
        if not clear and not all(access.sees_contacts_of(row[key]) for key in owners):
            values["reason"] = mask_text(values["reason"])
        shown.append(values)
    return shown
