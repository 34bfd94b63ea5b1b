"""Customer-to-customer links in customer files: memberships and reference attributes, carried by external id.

An export writes, for every link, the external id of the customer it names (``crmkit-<id>`` for a customer
without one: :func:`export_external_id`), so the file means the same in any database. An import takes the link
cells out of each row (:meth:`LinkColumns.take`), writes the rows' own data batch by batch, and then sets every
link in one transaction (:func:`apply_links`): a row may name a customer further down the file, and a link that
names no customer is listed in the reject file with its row and column.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from marshmallow import fields

from crmkit.core.schemas import CustomerReference
from crmkit.core.transfer.columns import ATTRIBUTE_PREFIX
from crmkit.core.transfer.pipeline import RejectedRow
from crmkit.core.transfer.writing import _targets
from crmkit.core.upsert import lock_keys
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: The column of a person's organization memberships: ``[{"organization": EXTERNAL_ID, "role": ROLE}, …]``
#: (JSON in a CSV cell too: a role may hold any character).
ORGANIZATIONS = "organizations"
#: The external id an export gives a customer that has none: stable for the database, so every link to it
#: resolves and a second import of the same file updates instead of adding.
EXPORT_ID_PREFIX = "crmkit-"


def export_external_id(customer_id: int, external_id: str | None) -> str:
    """The external id an export writes for a customer: its own, else ``crmkit-<id>``."""
    return external_id if external_id else f"{EXPORT_ID_PREFIX}{customer_id}"


class Membership(NamedTuple):
    """A membership as a file gives it: the organization's external id and the person's role."""

    organization: str
    role: str | None


class PendingLink(NamedTuple):
    """The links of one imported row, set after every row of the file is written."""

    row: int
    line: int
    original: list[str]
    external_id: str
    organizations: tuple[Membership, ...] | None  # None: not mentioned
    references: dict[str, str]  # attribute → external id of the customer it names


def attribute_fields(crm: CRM) -> Mapping[str, fields.Field[Any]]:
    """The declared customer attributes (custom fields and plugins' fields) by name."""
    return crm.customers._attribute_fields()


class LinkColumns:
    """How a customer file's link cells and typed attribute cells are read, from the declared attribute fields."""

    def __init__(self, declared: Mapping[str, fields.Field[Any]]) -> None:
        self.references = frozenset(k for k, f in declared.items() if isinstance(f, CustomerReference))
        #: Attributes whose CSV cells are read as JSON when they parse (``12``, ``true``, ``["a"]``): an export
        #: writes their values so; text as typed (``có``, ``02/09/2025``) still goes to the field as it is.
        self.typed = frozenset(
            k for k, f in declared.items() if not isinstance(f, fields.String) and k not in self.references
        )

    def take(self, cells: dict[str, Any], *, csv: bool, row: int, line: int, original: list[str]) -> PendingLink | None:
        """Take the link cells out of ``cells`` (the row's links, or None) and type its typed attribute cells.

        Raises ``ValidationError`` naming the column for a link cell that is not one.
        """
        if csv:
            for key in self.typed:
                column = ATTRIBUTE_PREFIX + key
                value = cells.get(column)
                if type(value) is str and value.strip():
                    cells[column] = _json_or_text(value)
        organizations = _memberships(cells.pop(ORGANIZATIONS, None))
        references: dict[str, str] = {}
        for key in self.references:
            value = cells.pop(ATTRIBUTE_PREFIX + key, None)
            if value is None or (type(value) is str and not value.strip()):
                continue
            if type(value) is not str:
                raise ValidationError(
                    "must be the external id of a customer (text), not an id of the database it came from",
                    field=ATTRIBUTE_PREFIX + key,
                )
            references[key] = value.strip()
        external_id = cells.get("external_id")
        if (organizations is None and not references) or type(external_id) is not str:
            return None
        return PendingLink(row, line, original, external_id.strip(), organizations, references)


def _json_or_text(value: str) -> Any:
    try:
        parsed = json.loads(value, parse_float=Decimal)
    except ValueError:
        return value
    return value if type(parsed) is str else parsed


def _memberships(value: Any) -> tuple[Membership, ...] | None:
    if value is None or (type(value) is str and not value.strip()):
        return None
    if type(value) is str:
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError(_MEMBERSHIPS, field=ORGANIZATIONS) from None
    if type(value) is not list:
        raise ValidationError(_MEMBERSHIPS, field=ORGANIZATIONS)
    found: list[Membership] = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"organization", "role"}:
            raise ValidationError(_MEMBERSHIPS, field=ORGANIZATIONS)
        organization, role = item.get("organization"), item.get("role")
        if type(organization) is not str or not organization.strip() or not (role is None or type(role) is str):
            raise ValidationError(_MEMBERSHIPS, field=ORGANIZATIONS)
        found.append(Membership(organization.strip(), role or None))
    return tuple(found)


_MEMBERSHIPS = 'must be a JSON list like [{"organization": "ORG-1", "role": "Kế toán"}]'


def apply_links(crm: CRM, links: Sequence[PendingLink], refused: Iterable[int]) -> list[RejectedRow]:
    """Set the links of the imported rows (not those ``refused``) in one transaction; the rows whose links name
    no customer, for the reject file (their own data stays imported, their links unchanged)."""
    skip = set(refused)
    pending = [link for link in links if link.row not in skip]
    if not pending:
        return []
    unresolved: list[RejectedRow] = []
    with crm.transaction() as session:
        conn = session.connection()
        lock_keys(conn, "customers.import", [0])  # as each batch: no import's batch waits on these rows crosswise
        named = {link.external_id for link in pending}
        for link in pending:
            named.update(m.organization for m in link.organizations or ())
            named.update(link.references.values())
        found = {k: v.customer_id for k, v in _targets(conn, sorted(named)).items() if v.customer_id is not None}
        for link in pending:
            customer_id = found.get(link.external_id)
            if customer_id is None:
                continue  # the row was not written (its reason is in the reject file already)
            missing = [
                f"{ORGANIZATIONS}: no customer with external_id {m.organization!r}"
                for m in link.organizations or ()
                if m.organization not in found
            ]
            missing += [
                f"{ATTRIBUTE_PREFIX}{key}: no customer with external_id {ext!r}"
                for key, ext in link.references.items()
                if ext not in found
            ]
            if missing:
                unresolved.append(_unlinked(link, "; ".join(missing)))
                continue
            current = crm.customers._load(conn, customer_id)
            changes: dict[str, Any] = {}
            if link.organizations is not None:
                wanted = [{"organization_id": found[m.organization], "role": m.role} for m in link.organizations]
                if [(m["organization_id"], m["role"]) for m in wanted] != [
                    (m.organization_id, m.role) for m in current.organizations
                ]:
                    changes["organizations"] = wanted
            references = {key: found[ext] for key, ext in link.references.items()}
            if any(current.attributes.get(key) != value for key, value in references.items()):
                changes["attributes"] = references
            if not changes:
                continue
            try:
                with session.begin_nested():
                    values = crm.customers.validate(changes, partial=True, row=link.row)
                    crm.customers.update_validated(session, customer_id, values, source="import")
            except ValidationError as exc:
                unresolved.append(_unlinked(link, str(exc).removeprefix(f"row {link.row}: ")))
    return unresolved


def _unlinked(link: PendingLink, reason: str) -> RejectedRow:
    return RejectedRow(
        link.row,
        link.line,
        f"{reason} (the rest of the row is imported: correct the link and import the row again)",
        link.original,
    )
