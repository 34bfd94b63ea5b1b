"""What every part of the sales service shares: the CRM, settings, the acting user, customer checks, scopes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.plugin_api import SYSTEM
from crmkit.plugin_api import core_tables as core

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit_sales.service import Sales

DEFAULT_CURRENCY = "VND"
#: Setting: an order or a won deal makes a lead or prospect a ``customer`` (on unless set to false).
LIFECYCLE_SETTING = "sales.lifecycle_on_order"
#: The lifecycle stages a first order or a won deal moves to ``customer``; the others (churned, partner,
#: distributor, retailer) are the business's own call and stay.
BECOME_CUSTOMERS = ("lead", "prospect")
Query = TypeVar("Query", bound="sa.Select[Any] | sa.Update")
#: The largest id a table holds (64-bit): a larger one names no record, and is never sent to the database.
MAX_ID = 2**63 - 1


class Part:
    """One area of the sales service (``crm.sales.orders``, ``crm.sales.deals`` …)."""

    def __init__(self, sales: Sales) -> None:
        self.sales = sales
        self.crm: CRM = sales.crm

    @property
    def currency(self) -> str:
        """The CRM's main currency (setting ``currency``, VND by default): documents use it unless told otherwise."""
        return str(self.crm.settings.get("currency") or DEFAULT_CURRENCY).upper()

    @property
    def timezone(self) -> ZoneInfo:
        """The business's time zone (``crm.timezone``): days and agendas use it."""
        return self.crm.timezone

    def audit(
        self,
        session: Session,
        action: str,
        entity: str,
        entity_id: Any,
        *,
        customer_id: int | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record the change in the core's audit log, in the caller's transaction."""
        self.crm.audit.record(session, action, entity, entity_id, customer_id=customer_id, changes=changes)

    # -- who acts, and what they may reach ------------------------------------------------------------

    def require(self, permission: str) -> None:
        """``PermissionDenied`` (audited) unless the acting user holds ``permission`` (the system always does)."""
        self.crm.access.require(permission)

    def scoped(self, query: Query, customer_id: sa.ColumnElement[Any], permission: str) -> Query:
        """``query`` narrowed, in SQL, to rows whose customer is within ``permission``'s scope (requires it).

        Nothing is added for a scope of ``all`` (the system's), so unscoped queries keep their plans.
        """
        return self.crm.access.scoped(query, customer_id, permission)

    def is_scoped(self, permission: str) -> bool:
        """Whether ``permission`` reaches only some customers for the acting user (a report then says so)."""
        return self.crm.access.principal.owners(permission) is not None

    def load(
        self,
        conn: sa.Connection,
        table: sa.Table,
        row_id: Any,
        kind: str,
        *,
        read: str,
        write: str | None = None,
        lock: bool = False,
    ) -> Mapping[str, Any]:
        """The row of a customer-owned ``table`` with this id, for the acting user.

        ``NotFound`` when it is absent or its customer is outside ``read``'s scope (never reveal that it
        exists); with ``write``, ``PermissionDenied`` when the user may see the customer but not do this.
        """
        query = self.scoped(sa.select(table).where(table.c.id == row_id), table.c.customer_id, read)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(kind, row_id)
        if write is not None:
            self.crm.access.require_customer(conn, row["customer_id"], write)
        return row

    def require_customer(self, conn: sa.Connection, customer_id: int, permission: str) -> int:
        """Require ``permission`` on the customer (``NotFound`` outside its scope), then the id to file sales under
        (see :func:`active_customer`)."""
        self.crm.access.require_customer(conn, customer_id, permission)
        return active_customer(conn, customer_id)

    def becomes_customer(self, conn: sa.Connection, customer_id: int) -> bool:
        """After an order or a won deal, in its transaction: a lead or prospect becomes a ``customer`` (unless the
        ``sales.lifecycle_on_order`` setting is off); True when it did.

        The move is the business's consequence, not the acting user's edit of the customer, so it runs as the
        system (a salesperson needs no ``customers.update``); it goes through ``crm.customers.update``, so the
        customer hooks fire and the audit log records it under the acting user's name.
        """
        if not self.sales.lifecycle_on_order():
            return False
        c = core.customers.c
        stage = conn.execute(
            sa.select(c.lifecycle_stage).where(c.id == customer_id, c.status == "active")
        ).scalar_one_or_none()
        if stage not in BECOME_CUSTOMERS:
            return False
        actor = self.crm.actor
        with self.crm.access.acting(SYSTEM), self.crm.acting_as(actor):
            self.crm.customers.update(customer_id, lifecycle_stage="customer")
        return True

    def default_owner(self) -> str | None:
        """Who owns what is created without naming an owner: the acting user (``crm.as_user``); nobody when the
        system creates it (even inside ``crm.acting_as``, which only names who the audit records)."""
        principal = self.crm.access.principal
        return None if principal.is_system else principal.username

    def employee(self, employee: str | None) -> str:
        """The employee named for a task or appointment, else the acting user (``ValidationError`` when the
        system names none)."""
        chosen = employee or self.default_owner()
        if chosen is None:
            raise ValidationError("say which employee (a user)", field="employee")
        return chosen


_CUSTOMER_STATUS = sa.select(core.customers.c.status, core.customers.c.merged_into_id).where(
    core.customers.c.id == sa.bindparam("customer_id")
)


def active_customer(conn: sa.Connection, customer_id: int) -> int:
    """The id to file sales under: a merged-away customer resolves to the one it was merged into.

    Raises ``NotFound`` for an unknown id and ``Conflict`` for an erased customer.
    """
    seen: set[int] = set()
    while True:
        row = conn.execute(_CUSTOMER_STATUS, {"customer_id": customer_id}).first()
        if row is None:
            raise NotFound("customer", customer_id)
        if row.status == "active":
            return customer_id
        if row.status != "merged" or row.merged_into_id is None or customer_id in seen:
            raise Conflict(f"customer {customer_id} is {row.status}")
        seen.add(customer_id)
        customer_id = row.merged_into_id


def older_than(
    time_column: sa.ColumnElement[Any], id_column: sa.ColumnElement[Any], last: tuple[datetime, int]
) -> sa.ColumnElement[bool]:
    """The keyset predicate of a newest-first list: rows after ``last`` (the time and id of the last row shown)."""
    at, last_id = last
    return sa.or_(time_column < at, sa.and_(time_column == at, id_column < last_id))


def one(conn: sa.Connection, table: sa.Table, row_id: Any, kind: str, *, lock: bool = False) -> Mapping[str, Any]:
    """The row of ``table`` with this id (locked for update when asked), or ``NotFound``."""
    query = sa.select(table).where(table.c.id == row_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(kind, row_id)
    return row


def check_period(start: Any, end: Any, *, start_field: str = "since", end_field: str = "until") -> None:
    """Refuse a period that ends before it starts (``ValidationError`` naming the end field); open ends pass."""
    if start is not None and end is not None and end < start:
        raise ValidationError(f"ends before it starts ({start_field} {start.isoformat()})", field=end_field)


def by_ref(conn: sa.Connection, table: sa.Table, ref: int | str, text_column: str) -> Mapping[str, Any] | None:
    """The row named by ``ref``: an int is an id; a text is the ``text_column`` value (an SKU may be all digits,
    e.g. a barcode), or else an id written as digits."""
    if isinstance(ref, int):
        return conn.execute(sa.select(table).where(table.c.id == ref)).mappings().first()
    row = conn.execute(sa.select(table).where(table.c[text_column] == ref)).mappings().first()
    if row is None and is_id(ref):
        row = conn.execute(sa.select(table).where(table.c.id == int(ref))).mappings().first()
    return row


def is_id(text: str) -> bool:
    """Whether ``text`` is an id written in ASCII digits (``"42"``; not ``"²"``, nor one too large to be an id)."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_ID
