"""Orders (``crm.sales.orders``) and payments (``crm.sales.payments``).

Placing an order is a hot path: Core statements only — the customer check, the products, the
applicable prices, one INSERT for the order, one executemany for its lines, the audit row — and
``crmkit_order_placed`` runs in the same transaction, so a plugin that fails rolls the order back.

Money position of an order: ``paid_minor`` is what was received, ``refunded_minor`` what was given
back (never more than was received); outstanding = total − paid (a refund returns goods *and*
money, so it does not change what is still owed). Status: placed → shipped → delivered;
cancelled (only while nothing paid is kept); refunded (once the whole total has been refunded).

A user sees the orders (and payments, refunds) of the customers in their ``sales.orders.read``
scope; shipping phones and addresses are masked where they may not see the customer's contact details.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.plugin_api import MASK, check_limit, mask_phone, to_jsonable
from crmkit_sales import hookspecs
from crmkit_sales import models as m
from crmkit_sales.base import Part, check_period, older_than, one
from crmkit_sales.discounts import Discount, apply_vouchers, voucher_codes
from crmkit_sales.documents import insert_lines, read_lines, total_values
from crmkit_sales.history import import_orders
from crmkit_sales.objects import Line, Order, Payment, Refund, from_row, order_number
from crmkit_sales.permissions import DEALS_READ, ORDERS_PLACE, ORDERS_READ, ORDERS_REFUND, PAYMENTS_RECORD
from crmkit_sales.pricing import build_lines, margin
from crmkit_sales.schemas import OrderSchema, PaymentSchema, RefundSchema, load

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.core.transfer import ImportSummary

OPEN_STATUSES = ("placed", "shipped", "delivered")
ORDER_FIELDS = ("owner", "deal_id", "quote_id", "shipping_name", "shipping_phone", "shipping_address", "notes")
_INSERT_ORDER = m.orders.insert().returning(m.orders.c.id)


class Orders(Part):
    """Orders placed directly or from an accepted quote, their fulfilment, cancellation and refunds."""

    _schema = OrderSchema()
    _refund_schema = RefundSchema()

    def place(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Order:
        """Place an order: ``customer_id``, ``lines`` (``sku`` or ``product_id``, ``quantity``, discount, ``tax_rate``).

        Prices follow the price rule on the day it is placed (business time zone); ``currency``
        defaults to the CRM's; ``owner`` (a user) to the acting user; ``placed_at`` to now (refused more than
        a few minutes in the future: ``schemas.CLOCK_SKEW``). Needs ``sales.orders.place`` on the customer; a lead
        or prospect becomes a customer. ``vouchers`` (codes, e.g. of loyalty rewards) become discounts through
        ``crmkit_order_discounts`` (see :mod:`crmkit_sales.discounts`). Fires ``crmkit_order_placed`` in the same
        transaction.
        """
        self.require(ORDERS_PLACE)
        given = {**(data or {}), **fields}
        codes = voucher_codes(given.pop("vouchers", None))
        values = load(self._schema, given, now=self.crm.now())
        values["owner"] = values.get("owner") or self.default_owner()
        currency = values.pop("currency", None) or self.currency
        placed_at = values.pop("placed_at", None) or self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            customer_id = self.require_customer(conn, values.pop("customer_id"), ORDERS_PLACE)
            self.crm.access.check_owner(conn, values["owner"], ORDERS_PLACE)
            if values.get("deal_id") is not None:
                self.load(conn, m.deals, values["deal_id"], "deal", read=DEALS_READ)
            lines = build_lines(
                conn,
                self.crm,
                customer_id=customer_id,
                currency=currency,
                on=placed_at.astimezone(self.timezone).date(),
                items=values.pop("lines"),
                price_list_id=values.pop("price_list_id", None),
            )
            discounts: tuple[Discount, ...] = ()
            if codes:
                lines, discounts = apply_vouchers(
                    self.crm,
                    session,
                    customer_id=customer_id,
                    currency=currency,
                    placed_at=placed_at,
                    lines=lines,
                    codes=codes,
                )
            return self.insert(
                session,
                customer_id=customer_id,
                currency=currency,
                placed_at=placed_at,
                lines=lines,
                discounts=discounts,
                **values,
            )

    def insert(
        self,
        session: Session,
        *,
        customer_id: int,
        currency: str,
        placed_at: datetime,
        lines: Sequence[Line],
        discounts: Sequence[Discount] = (),
        **extra: Any,
    ) -> Order:
        """Write an order with already-priced lines in the caller's transaction and fire ``crmkit_order_placed``
        (the caller has checked the customer and the owner); a lead or prospect becomes a customer
        (:meth:`~crmkit_sales.base.Part.becomes_customer`)."""
        self.require(ORDERS_PLACE)
        conn = session.connection()
        row = {
            **dict.fromkeys(ORDER_FIELDS),
            **extra,
            "customer_id": customer_id,
            "currency": currency,
            "status": "placed",
            "placed_at": placed_at,
            **total_values(lines),
            "margin_minor": margin(lines, currency),
            "paid_minor": 0,
            "refunded_minor": 0,
            "updated_at": self.crm.now(),
        }
        order_id = conn.execute(_INSERT_ORDER, row).scalar_one()
        insert_lines(conn, m.order_lines, "order_id", order_id, lines)
        order = from_row(Order, row, id=order_id, lines=tuple(lines), discounts=tuple(discounts))
        changes: dict[str, Any] = {"currency": currency, "total_minor": order.total_minor, "lines": len(lines)}
        if discounts:
            changes["vouchers"] = {d.code: d.amount_minor for d in discounts}
        self.audit(session, "place", "order", order_id, customer_id=customer_id, changes=changes)
        self.becomes_customer(conn, customer_id)
        self.crm.hooks.call(hookspecs.crmkit_order_placed, order=order, session=session)
        self.crm.events.emit(session, "order.placed", lambda: {"order": to_jsonable(order)}, customer_id=customer_id)
        return order

    def import_history(
        self,
        source: str | os.PathLike[str] | IO[Any],
        *,
        format: str | None = None,
        mapping: Mapping[str, str] | None = None,
        reject_path: str | os.PathLike[str] | None = None,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
        with_hooks: bool = False,
        reject_bom: bool = True,
    ) -> ImportSummary:
        """Load past orders from a CSV or JSON Lines file, idempotent by ``reference`` (:mod:`crmkit_sales.history`).

        Rows are checked, rejected to ``reject_path`` (default ``FILE.rejects.csv``) with row, field and
        reason, and written in batches of one transaction each. ``with_hooks`` fires ``crmkit_order_placed``
        and ``order.placed`` for each order (earning, campaigns, webhooks); without it history stays quiet.
        Needs ``sales.orders.place`` on every row's customer.
        """
        return import_orders(
            self,
            source,
            format=format,
            mapping=mapping,
            reject_path=reject_path,
            batch_size=batch_size,
            progress=progress,
            with_hooks=with_hooks,
            reject_bom=reject_bom,
        )

    def ship(self, order_id: int, *, at: datetime | None = None) -> Order:
        """Mark a placed order shipped."""
        return self._advance(order_id, "shipped", ("placed",), at)

    def deliver(self, order_id: int, *, at: datetime | None = None) -> Order:
        """Mark an order delivered (from placed, e.g. picked up in store, or shipped)."""
        return self._advance(order_id, "delivered", ("placed", "shipped"), at)

    def cancel(self, order_id: int, *, reason: str | None = None) -> Order:
        """Cancel an order before delivery; refused while money paid on it is kept (refund it instead).

        Fires ``crmkit_order_cancelled`` in the same transaction.
        """
        self.require(ORDERS_PLACE)
        with self.crm.transaction() as session:
            conn = session.connection()
            row = self.load(conn, m.orders, order_id, "order", read=ORDERS_READ, write=ORDERS_PLACE, lock=True)
            _require_status(row, ("placed", "shipped"), "cancel")
            held = row["paid_minor"] - row["refunded_minor"]
            if held:
                raise ValidationError(
                    f"{Money(row['currency'], held)} paid on {order_number(order_id)} is not refunded: "
                    "refund it instead of cancelling",
                    field="status",
                )
            now = self.crm.now()
            conn.execute(
                m.orders.update()
                .where(m.orders.c.id == order_id)
                .values(status="cancelled", cancelled_at=now, cancel_reason=reason, updated_at=now)
            )
            order = self.fetch(conn, order_id)
            self.audit(session, "cancel", "order", order_id, customer_id=order.customer_id, changes={"reason": reason})
            self.crm.hooks.call(hookspecs.crmkit_order_cancelled, order=order, session=session)
            return self._shown(conn, [order])[0]

    def refund(
        self, order_id: int, amount_minor: int, *, reason: str | None = None, at: datetime | None = None
    ) -> Refund:
        """Give back money paid on an order (partial or full); at the full total the order becomes ``refunded``.

        Refused above what was paid and not yet refunded. Needs ``sales.orders.refund``. Fires
        ``crmkit_order_refunded``.
        """
        self.require(ORDERS_REFUND)
        values = load(self._refund_schema, {"amount_minor": amount_minor, "reason": reason, "at": at})
        with self.crm.transaction() as session:
            conn = session.connection()
            row = self.load(conn, m.orders, order_id, "order", read=ORDERS_READ, write=ORDERS_REFUND, lock=True)
            _require_status(row, OPEN_STATUSES, "refund")
            held = row["paid_minor"] - row["refunded_minor"]
            amount = values["amount_minor"]
            if amount > held:
                raise ValidationError(
                    f"{Money(row['currency'], amount)} is more than the {Money(row['currency'], held)} "
                    f"paid and not yet refunded on {order_number(order_id)}",
                    field="amount_minor",
                )
            when = values.get("at") or self.crm.now()
            refunded = row["refunded_minor"] + amount
            conn.execute(
                m.orders.update()
                .where(m.orders.c.id == order_id)
                .values(
                    refunded_minor=refunded,
                    updated_at=self.crm.now(),
                    status="refunded" if refunded == row["total_minor"] else row["status"],
                )
            )
            refund_row = {
                "order_id": order_id,
                "amount_minor": amount,
                "currency": row["currency"],
                "reason": values.get("reason"),
                "at": when,
                "recorded_by": self.crm.actor,
            }
            refund_id = conn.execute(m.refunds.insert().values(refund_row).returning(m.refunds.c.id)).scalar_one()
            refund = from_row(Refund, refund_row, id=refund_id, customer_id=row["customer_id"])
            order = self.fetch(conn, order_id)
            self.audit(
                session,
                "refund",
                "order",
                order_id,
                customer_id=order.customer_id,
                changes={"amount_minor": amount, "reason": refund.reason},
            )
            self.crm.hooks.call(hookspecs.crmkit_order_refunded, order=order, refund=refund, session=session)
            self.crm.events.emit(
                session,
                "order.refunded",
                lambda: {"order": to_jsonable(order), "refund": to_jsonable(refund)},
                customer_id=order.customer_id,
            )
            return refund

    def get(self, order_id: int) -> Order:
        """One order with its lines (``NotFound`` when its customer is outside the ``sales.orders.read`` scope)."""
        with self.crm.reading() as conn:
            row = self.load(conn, m.orders, order_id, "order", read=ORDERS_READ)
            order = from_row(Order, row, lines=read_lines(conn, m.order_lines, "order_id", [order_id])[order_id])
            return self._shown(conn, [order])[0]

    def list(
        self,
        *,
        customer_id: int | None = None,
        status: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> list[Order]:
        """Orders newest first, filtered by customer, status, owner and placement time [since, until): those of
        the customers in the ``sales.orders.read`` scope. ``after`` (the last shown order's ``placed_at`` and id)
        pages on by keyset."""
        check_limit(limit)
        check_period(since, until)
        o = m.orders.c
        query = self.scoped(
            sa.select(m.orders).order_by(o.placed_at.desc(), o.id.desc()).limit(limit), o.customer_id, ORDERS_READ
        )
        for column, value in ((o.customer_id, customer_id), (o.status, status), (o.owner, owner)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(o.placed_at >= since)
        if until is not None:
            query = query.where(o.placed_at < until)
        if after is not None:
            query = query.where(older_than(o.placed_at, o.id, after))
        with self.crm.reading() as conn:
            rows = conn.execute(query).mappings().all()
            lines = read_lines(conn, m.order_lines, "order_id", (r["id"] for r in rows))
            return [*self._shown(conn, [from_row(Order, r, lines=lines[r["id"]]) for r in rows])]

    def refunds(self, order_id: int) -> list[Refund]:
        """The refunds of an order, oldest first."""
        r = m.refunds.c
        with self.crm.reading() as conn:
            order = self.load(conn, m.orders, order_id, "order", read=ORDERS_READ)
            rows = conn.execute(sa.select(m.refunds).where(r.order_id == order_id).order_by(r.at, r.id)).mappings()
            return [from_row(Refund, row, customer_id=order["customer_id"]) for row in rows]

    # -- internals ----------------------------------------------------------------------------------------

    def fetch(self, conn: sa.Connection, order_id: int) -> Order:
        """An order with its lines, read on the caller's connection (unchecked and unmasked: what hooks receive)."""
        row = one(conn, m.orders, order_id, "order")
        return from_row(Order, row, lines=read_lines(conn, m.order_lines, "order_id", [order_id])[order_id])

    def _shown(self, conn: sa.Connection, orders: Sequence[Order]) -> Sequence[Order]:
        """The orders as the acting user may see them: shipping phone and address masked for customers whose
        contact details they may not see."""
        hidden = self.crm.access.hidden_contacts(
            conn, {o.customer_id for o in orders if o.shipping_phone or o.shipping_address}
        )
        if not hidden:
            return orders
        return [
            attrs.evolve(
                o,
                shipping_phone=mask_phone(o.shipping_phone) if o.shipping_phone else None,
                shipping_address=MASK * 3 if o.shipping_address else None,
            )
            if o.customer_id in hidden
            else o
            for o in orders
        ]

    def _advance(self, order_id: int, status: str, allowed: tuple[str, ...], at: datetime | None) -> Order:
        self.require(ORDERS_PLACE)
        with self.crm.transaction() as session:
            conn = session.connection()
            row = self.load(conn, m.orders, order_id, "order", read=ORDERS_READ, write=ORDERS_PLACE, lock=True)
            _require_status(row, allowed, f"mark {status}")
            when = at or self.crm.now()
            if when.tzinfo is None:
                raise ValidationError("give a timezone-aware time", field="at")
            conn.execute(
                m.orders.update()
                .where(m.orders.c.id == order_id)
                .values({"status": status, f"{status}_at": when, "updated_at": self.crm.now()})
            )
            self.audit(session, status, "order", order_id, customer_id=row["customer_id"])
            return self._shown(conn, [self.fetch(conn, order_id)])[0]


class Payments(Part):
    """Payments against orders: partial payments, methods, paid-in-full detection, outstanding balances."""

    _schema = PaymentSchema()

    def record(
        self,
        order_id: int,
        amount_minor: int,
        *,
        method: str = "bank_transfer",
        paid_at: datetime | None = None,
        reference: str | None = None,
        note: str | None = None,
    ) -> Payment:
        """Record money received on an order; more than the outstanding balance is refused.

        Needs ``sales.payments.record``. Fires ``crmkit_payment_recorded`` with the order's new ``paid_minor`` /
        ``outstanding_minor``.
        """
        self.require(PAYMENTS_RECORD)
        values = load(
            self._schema,
            {"amount_minor": amount_minor, "method": method, "paid_at": paid_at, "reference": reference, "note": note},
        )
        with self.crm.transaction() as session:
            conn = session.connection()
            row = self.load(conn, m.orders, order_id, "order", read=ORDERS_READ, write=PAYMENTS_RECORD, lock=True)
            _require_status(row, OPEN_STATUSES, "take a payment on")
            outstanding = row["total_minor"] - row["paid_minor"]
            amount = values["amount_minor"]
            if amount > outstanding:
                raise ValidationError(
                    f"{Money(row['currency'], amount)} is more than the outstanding balance "
                    f"{Money(row['currency'], outstanding)} of {order_number(order_id)}",
                    field="amount_minor",
                )
            conn.execute(
                m.orders.update()
                .where(m.orders.c.id == order_id)
                .values(paid_minor=row["paid_minor"] + amount, updated_at=self.crm.now())
            )
            payment_row = {
                **values,
                "order_id": order_id,
                "currency": row["currency"],
                "paid_at": values.get("paid_at") or self.crm.now(),
                "recorded_by": self.crm.actor,
            }
            payment_id = conn.execute(m.payments.insert().values(payment_row).returning(m.payments.c.id)).scalar_one()
            payment = from_row(Payment, payment_row, id=payment_id, customer_id=row["customer_id"])
            order = self.sales.orders.fetch(conn, order_id)
            self.audit(
                session,
                "payment",
                "order",
                order_id,
                customer_id=order.customer_id,
                changes={"amount_minor": amount, "method": payment.method},
            )
            self.crm.hooks.call(hookspecs.crmkit_payment_recorded, order=order, payment=payment, session=session)
            return payment

    def list(self, *, order_id: int | None = None, customer_id: int | None = None, limit: int = 200) -> list[Payment]:
        """Payments newest first, for one order or all of a customer's orders: those on orders of the customers in
        the ``sales.orders.read`` scope."""
        check_limit(limit)
        p, o = m.payments.c, m.orders.c
        query = (
            sa.select(m.payments, o.customer_id)
            .join(m.orders, o.id == p.order_id)
            .order_by(p.paid_at.desc(), p.id.desc())
            .limit(limit)
        )
        query = self.scoped(query, o.customer_id, ORDERS_READ)
        if order_id is not None:
            query = query.where(p.order_id == order_id)
        if customer_id is not None:
            query = query.where(o.customer_id == customer_id)
        with self.crm.reading() as conn:
            return [from_row(Payment, r) for r in conn.execute(query).mappings()]

    def outstanding(self, customer_id: int) -> dict[str, int]:
        """What the customer still owes, per currency, over orders that are not cancelled (``NotFound`` outside
        the ``sales.orders.read`` scope)."""
        o = m.orders.c
        self.require(ORDERS_READ)
        with self.crm.reading() as conn:
            self.crm.access.require_customer(conn, customer_id, ORDERS_READ)
            rows = conn.execute(
                sa.select(o.currency, sa.func.sum(o.total_minor - o.paid_minor))
                .where(o.customer_id == customer_id, o.status.in_(OPEN_STATUSES))
                .group_by(o.currency)
            ).all()
        return {currency: int(amount) for currency, amount in rows if amount}


def _require_status(row: Mapping[str, Any], allowed: Sequence[str], action: str) -> None:
    if row["status"] not in allowed:
        raise ValidationError(
            f"cannot {action} {order_number(row['id'])}: it is {row['status']} (only when {' or '.join(allowed)})",
            field="status",
        )
