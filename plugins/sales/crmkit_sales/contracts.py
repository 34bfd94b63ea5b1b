"""Contracts (``crm.sales.contracts``): a customer's contracts, their value, dates and renewals.

A user sees and changes the contracts of the customers in their ``sales.contracts.read`` /
``sales.contracts.manage`` scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from crmkit.errors import Conflict, ValidationError
from crmkit_sales import models as m
from crmkit_sales.base import Part, one
from crmkit_sales.objects import Contract, from_row
from crmkit_sales.permissions import CONTRACTS_MANAGE, CONTRACTS_READ, ORDERS_READ
from crmkit_sales.schemas import ContractSchema, load


class Contracts(Part):
    """Contracts with number, start/end, value, renewal date and status (draft, active, expired, terminated, renewed)."""

    _schema = ContractSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Contract:
        """Record a contract: ``customer_id``, ``number`` (unique), ``title``, ``start_date``, ``value_minor``,
        ``currency``; optional ``order_id`` (the customer's), ``end_date``, ``renewal_date``, ``status``,
        ``owner`` (a user; the acting user by default). Needs ``sales.contracts.manage`` on the customer."""
        self.require(CONTRACTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields})
        values["owner"] = values.get("owner") or self.default_owner()
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            values["customer_id"] = self.require_customer(conn, values["customer_id"], CONTRACTS_MANAGE)
            self.crm.access.check_owner(conn, values["owner"], CONTRACTS_MANAGE)
            self._check(conn, values, None)
            contract_id = conn.execute(
                m.contracts.insert().values(**values, created_at=now, updated_at=now).returning(m.contracts.c.id)
            ).scalar_one()
            self.audit(session, "create", "contract", contract_id, customer_id=values["customer_id"], changes=values)
            return self._get(conn, contract_id)

    def update(self, contract_id: int, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Contract:
        """Change fields of a contract (status included: e.g. ``terminated``, ``renewed``)."""
        self.require(CONTRACTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields}, partial=True)
        if "customer_id" in values:
            raise ValidationError("a contract stays with its customer", field="customer_id")
        with self.crm.transaction() as session:
            conn = session.connection()
            current = self.load(
                conn, m.contracts, contract_id, "contract", read=CONTRACTS_READ, write=CONTRACTS_MANAGE, lock=True
            )
            if "owner" in values:
                self.crm.access.check_owner(conn, values["owner"], CONTRACTS_MANAGE)
            merged = {**current, **values}
            for start, end in (("start_date", "end_date"), ("start_date", "renewal_date")):
                if merged[end] is not None and merged[end] < merged[start]:
                    raise ValidationError(f"ends before it starts ({start} {merged[start]})", field=end)
            self._check(conn, merged, contract_id)
            conn.execute(
                m.contracts.update().where(m.contracts.c.id == contract_id).values(**values, updated_at=self.crm.now())
            )
            self.audit(session, "update", "contract", contract_id, customer_id=current["customer_id"], changes=values)
            return self._get(conn, contract_id)

    def get(self, contract_id: int) -> Contract:
        """One contract (``NotFound`` when its customer is outside the ``sales.contracts.read`` scope)."""
        with self.crm.reading() as conn:
            return from_row(Contract, self.load(conn, m.contracts, contract_id, "contract", read=CONTRACTS_READ))

    def list(self, *, customer_id: int | None = None, status: str | None = None, limit: int = 200) -> list[Contract]:
        """Contracts by start date, newest first: those of the customers in the ``sales.contracts.read`` scope."""
        c = m.contracts.c
        query = self.scoped(
            sa.select(m.contracts).order_by(c.start_date.desc(), c.id.desc()).limit(limit),
            c.customer_id,
            CONTRACTS_READ,
        )
        if customer_id is not None:
            query = query.where(c.customer_id == customer_id)
        if status is not None:
            query = query.where(c.status == status)
        with self.crm.reading() as conn:
            return [from_row(Contract, r) for r in conn.execute(query).mappings()]

    def up_for_renewal(self, days: int = 30, *, today: date | None = None) -> list[Contract]:
        """Active contracts whose renewal date (else end date) falls in the next ``days`` days, soonest first
        (of the customers in the ``sales.contracts.read`` scope)."""
        if days < 0:
            raise ValidationError("must be 0 or more", field="days")
        start = today or self.crm.today()
        c = m.contracts.c
        due = sa.func.coalesce(c.renewal_date, c.end_date)
        query = (
            sa.select(m.contracts)
            .where(c.status == "active", due >= start, due <= start + timedelta(days=days))
            .order_by(due, c.id)
        )
        query = self.scoped(query, c.customer_id, CONTRACTS_READ)
        with self.crm.reading() as conn:
            return [from_row(Contract, r) for r in conn.execute(query).mappings()]

    def expire_due(self, *, today: date | None = None) -> int:
        """Mark active contracts whose end date has passed as expired (a daily job; a user: those in their
        ``sales.contracts.manage`` scope); returns how many."""
        day = today or self.crm.today()
        c = m.contracts.c
        due = self.scoped(
            m.contracts.update().where(c.status == "active", c.end_date < day), c.customer_id, CONTRACTS_MANAGE
        )
        with self.crm.transaction() as session:
            now = self.crm.now()
            result = session.connection().execute(due.values(status="expired", updated_at=now))
            if result.rowcount:
                self.audit(session, "expire_due", "contract", "*", changes={"count": result.rowcount, "before": day})
            return int(result.rowcount)

    def _get(self, conn: sa.Connection, contract_id: int) -> Contract:
        return from_row(Contract, one(conn, m.contracts, contract_id, "contract"))

    def _check(self, conn: sa.Connection, values: Mapping[str, Any], own_id: int | None) -> None:
        c = m.contracts.c
        other = conn.execute(sa.select(c.id).where(c.number == values["number"])).scalar()
        if other is not None and other != own_id:
            raise Conflict(f"contract number {values['number']!r} is already contract {other}")
        if values.get("order_id") is not None:
            order = self.load(conn, m.orders, values["order_id"], "order", read=ORDERS_READ)
            if order["customer_id"] != values["customer_id"]:
                raise ValidationError(f"order {values['order_id']} belongs to another customer", field="order_id")
