"""A customer's privacy rights: the collaborator ``crm.customers`` hands ``export_data`` (right of access) and
``erase`` (right to erasure) to.

Both follow a merged-away id to the customer that holds its data now and take in every record merged into
it. The export gathers the core's rows and each enabled plugin's (``crmkit_customer_export``); the erasure
runs each plugin's ``crmkit_customer_erase`` first, then removes or anonymizes the core's rows in the same
transaction, and after the commit wipes the erased values from the database files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.jsonable import to_jsonable
from crmkit.core.stored_answers import forget_person
from crmkit.core.text import fold
from crmkit.privacy import wipe_free_space

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.core.customers import Customers
    from crmkit.core.models import Customer
    from crmkit.crm import CRM

#: The customer fields an erasure keeps: the kind, the stage and a placeholder for the name.
KEPT_ON_ERASURE = ("kind", "name", "lifecycle_stage")


class CustomerPrivacy:
    """Right of access and right to erasure, for :class:`crmkit.core.customers.Customers`."""

    def __init__(self, crm: CRM, customers: Customers) -> None:
        self._crm = crm
        self._customers = customers

    def export_data(self, customer_id: int) -> dict[str, Any]:
        """Everything the core and every enabled plugin holds about this customer, as JSON data (see
        :meth:`crmkit.core.customers.Customers.export_data`)."""
        crm, customers = self._crm, self._customers
        crm.access.require("customers.export")
        with crm.transaction() as session:
            conn = session.connection()
            crm.access.require_customer(conn, customer_id, "customers.export")
            customer = customers._load(conn, _resolve_merged(conn, customer_id))
            customer_id = customer.id
            i, a, m = t.interactions.c, t.audit_log.c, t.merges.c
            interactions: Sequence[Mapping[Any, Any]] = (
                conn.execute(
                    sa.select(t.interactions).where(i.customer_id == customer_id).order_by(i.occurred_at, i.id)
                )
                .mappings()
                .all()
            )
            records = [customer_id, *_merged_into(conn, customer_id)]
            audit: Sequence[Mapping[Any, Any]] = (
                conn.execute(sa.select(t.audit_log).where(a.customer_id.in_(records)).order_by(a.id)).mappings().all()
            )
            merges: Sequence[Mapping[Any, Any]] = (
                conn.execute(sa.select(t.merges).where(m.kept_id == customer_id).order_by(m.id)).mappings().all()
            )
            sections = crm.hooks.customer_export(customer, session)
        shown = customers._shown(customer)
        if shown is not customer:
            from crmkit.core.masking import mask_changes, mask_sender

            interactions = [{**r, "sender": mask_sender(r["sender"])} for r in interactions]
            audit = [{**r, "changes": mask_changes(r["changes"])} for r in audit]
            merges = [{**r, "snapshot": mask_changes(r["snapshot"])} for r in merges]
        data = {
            "customer": to_jsonable(shown),
            "interactions": [to_jsonable(dict(r)) for r in interactions],
            "audit_log": [to_jsonable(dict(r)) for r in audit],
            "merged_records": [to_jsonable(dict(r)) for r in merges],
        }
        data.update({name: to_jsonable(value) for name, value in sections.items()})
        return data

    def erase(self, customer_id: int, *, reason: str, vacuum: bool) -> None:
        """Remove or anonymize the person in the core and every plugin, record it, then wipe the database files
        (see :meth:`crmkit.core.customers.Customers.erase`)."""
        crm, customers = self._crm, self._customers
        crm.access.require("customers.erase")
        customers._require_no_disabled_data("erase")
        with crm.transaction() as session:
            conn = session.connection()
            crm.access.require_customer(conn, customer_id, "customers.erase")
            customer = customers._load(conn, _resolve_merged(conn, customer_id), removing=True)
            if customer.status == "merged":  # merged while this erasure waited for its lock: erase where it went
                customer = customers._load(conn, _resolve_merged(conn, customer.id), removing=True)
            erased = customer.status != "erased"
            if erased:
                self._erase(session, customer, reason)
        if erased or vacuum:  # asking again with ``vacuum`` finishes the wipe an earlier erasure left to do
            wipe_free_space(
                crm.engine, [lin.metadata for lin in crm.lineages() if lin.metadata is not None], vacuum=vacuum
            )

    def _erase(self, session: Session, customer: Customer, reason: str) -> None:
        """The erasure's writes, in the caller's transaction (plugins' hooks first)."""
        from crmkit.core.customers import SCALARS  # the module that imports this one: read once it is loaded

        conn = session.connection()
        customer_id = customer.id
        self._crm.hooks.customer_erase(customer, session)
        records = [customer_id, *_merged_into(conn, customer_id)]
        forget_person(conn, records, _identifying_values(conn, records))
        for table in (t.contact_points, t.addresses, t.tags, t.consents, t.search_keys):
            conn.execute(table.delete().where(table.c.customer_id == customer_id))
        ms = t.memberships.c
        conn.execute(
            t.memberships.delete().where(sa.or_(ms.person_id == customer_id, ms.organization_id == customer_id))
        )
        conn.execute(
            t.interactions.update()
            .where(t.interactions.c.customer_id == customer_id)
            .values(subject=None, summary=None, outcome=None, sender=None)
        )
        conn.execute(t.audit_log.update().where(t.audit_log.c.customer_id.in_(records)).values(changes=None))
        merges = t.merges.c
        conn.execute(  # the journal's copies of either side of a merge
            t.merges.update()
            .where(sa.or_(merges.kept_id == customer_id, merges.merged_id.in_(records)))
            .values(snapshot={}, filled={})
        )
        for record in records:
            placeholder = f"Erased customer {record}"
            conn.execute(
                t.customers.update()
                .where(t.customers.c.id == record)
                .values(
                    **{f: None for f in SCALARS if f not in KEPT_ON_ERASURE},
                    name=placeholder,
                    name_key=fold(placeholder),
                    attributes={},
                    updated_at=self._crm.now(),
                    **({"status": "erased"} if record == customer_id else {}),
                )
            )
        self._crm.audit.record(
            session, "erase", "customer", customer_id, customer_id=customer_id, changes={"reason": reason}
        )
        self._crm.events.redact(session, records)
        self._crm.events.emit(session, "customer.erased", {"customer": {"id": customer_id}}, customer_id=customer_id)


def _resolve_merged(conn: sa.Connection, customer_id: int) -> int:
    """The id that holds this customer's data now: itself, or the customer it was merged into."""
    into = conn.execute(sa.select(t.customers.c.merged_into_id).where(t.customers.c.id == customer_id)).scalar()
    return into if into is not None else customer_id


def _merged_into(conn: sa.Connection, customer_id: int) -> list[int]:
    """Ids of the records merged into this customer (merges re-point chains, so one level)."""
    c = t.customers.c
    return list(conn.execute(sa.select(c.id).where(c.merged_into_id == customer_id).order_by(c.id)).scalars())


def _identifying_values(conn: sa.Connection, records: list[int]) -> list[str]:
    """What identifies these customer records in free data: names, external ids, contact values, street lines."""
    c, cp, a = t.customers.c, t.contact_points.c, t.addresses.c
    found = [
        *conn.execute(sa.select(c.name, c.external_id).where(c.id.in_(records))),
        *conn.execute(sa.select(cp.value).where(cp.customer_id.in_(records))),
        *conn.execute(sa.select(a.line1, a.line2).where(a.customer_id.in_(records))),
    ]
    return [value for row in found for value in row if value]
