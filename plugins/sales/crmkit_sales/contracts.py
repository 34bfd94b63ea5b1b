"""Contracts (``crm.sales.contracts``): a customer's contracts, their value, dates and renewals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from crmkit.core.types import utcnow
from crmkit.errors import Conflict, ValidationError
from crmkit_sales import models as m
from crmkit_sales.base import Part, active_customer, one
from crmkit_sales.objects import Contract, from_row
from crmkit_sales.schemas import ContractSchema, load


class Contracts(Part):
    """Contracts with number, start/end, value, renewal date and status (draft, active, expired, terminated, renewed)."""

    _schema = ContractSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Contract:
        """Record a contract: ``customer_id``, ``number`` (unique), ``title``, ``start_date``, ``value_minor``,
        ``currency``; optional ``order_id`` (the customer's), ``end_date``, ``renewal_date``, ``status``."""
        values = load(self._schema, {**(data or {}), **fields})
        now = utcnow()
        with self.crm.transaction() as session:
            conn = session.connection()
            values["customer_id"] = active_customer(conn, values["customer_id"])
            self._check(conn, values, None)
            contract_id = conn.execute(m.contracts.insert().values(**values, created_at=now, updated_at=now)
                                       .returning(m.contracts.c.id)).scalar_one()
            self.audit(session, "create", "contract", contract_id, customer_id=values["customer_id"], changes=values)
            return self._get(conn, contract_id)

    def update(self, contract_id: int, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Contract:
        """Change fields of a contract (status included: e.g. ``terminated``, ``renewed``)."""
        values = load(self._schema, {**(data or {}), **fields}, partial=True)
        if "customer_id" in values:
            raise ValidationError("a contract stays with its customer", field="customer_id")
        with self.crm.transaction() as session:
            conn = session.connection()
            current = one(conn, m.contracts, contract_id, "contract", lock=True)
            merged = {**current, **values}
            for start, end in (("start_date", "end_date"), ("start_date", "renewal_date")):
                if merged[end] is not None and merged[end] < merged[start]:
                    raise ValidationError(f"ends before it starts ({start} {merged[start]})", field=end)
            self._check(conn, merged, contract_id)
            conn.execute(m.contracts.update().where(m.contracts.c.id == contract_id).values(**values, updated_at=utcnow()))
            self.audit(session, "update", "contract", contract_id, customer_id=current["customer_id"], changes=values)
            return self._get(conn, contract_id)

    def get(self, contract_id: int) -> Contract:
        """One contract."""
        with self.crm.reading() as conn:
            return self._get(conn, contract_id)

    def list(self, *, customer_id: int | None = None, status: str | None = None, limit: int = 200) -> list[Contract]:
        """Contracts by start date, newest first."""
        c = m.contracts.c
        query = sa.select(m.contracts).order_by(c.start_date.desc(), c.id.desc()).limit(limit)
        if customer_id is not None:
            query = query.where(c.customer_id == customer_id)
        if status is not None:
            query = query.where(c.status == status)
        with self.crm.reading() as conn:
            return [from_row(Contract, r) for r in conn.execute(query).mappings()]

    def up_for_renewal(self, days: int = 30, *, today: date | None = None) -> list[Contract]:
        """Active contracts whose renewal date (else end date) falls in the next ``days`` days, soonest first."""
        if days < 0:
            raise ValidationError("must be 0 or more", field="days")
        start = today or self.crm.today()
        c = m.contracts.c
        due = sa.func.coalesce(c.renewal_date, c.end_date)
        query = (sa.select(m.contracts).where(c.status == "active", due >= start, due <= start + timedelta(days=days))
                 .order_by(due, c.id))
        with self.crm.reading() as conn:
            return [from_row(Contract, r) for r in conn.execute(query).mappings()]

    def expire_due(self, *, today: date | None = None) -> int:
        """Mark active contracts whose end date has passed as expired (a daily job); returns how many."""
        day = today or self.crm.today()
        c = m.contracts.c
        with self.crm.transaction() as session:
            now = utcnow()
            result = session.connection().execute(m.contracts.update().where(
                c.status == "active", c.end_date < day).values(status="expired", updated_at=now))
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
            order = one(conn, m.orders, values["order_id"], "order")
            if order["customer_id"] != values["customer_id"]:
                raise ValidationError(f"order {values['order_id']} belongs to another customer", field="order_id")
