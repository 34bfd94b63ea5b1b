"""The sales side of the core's cross-cutting duties: export, erasure, merge, customer 360, segment fields,
and the purchase history other plugins read (``crmkit_value_transactions``, through ``crmkit.purchases``).

Erasure keeps what the law requires a business to keep — orders with their lines, payments,
refunds and contracts (accounting records) — with identifying free text removed (shipping name,
phone and address, notes, payment references, refund reasons, contract notes and titles). Deals
with their history, quotes with their lines, appointments and tasks are deleted.

The export (``customers.export``, checked by the core) masks shipping phones and addresses for a user
who may not see the customer's contact details; each customer-360 section shows only with its read
permission on the customer (deals, orders, contracts, agenda), its queries scoped in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import privacy
from crmkit.money import Money
from crmkit.plugin_api import MASK, mask_phone, repoint, to_jsonable
from crmkit.plugin_api import core_tables as core
from crmkit_sales import models as m
from crmkit_sales.objects import order_number
from crmkit_sales.orders import OPEN_STATUSES
from crmkit_sales.permissions import AGENDA_READ, CONTRACTS_READ, DEALS_READ, ORDERS_READ

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit.plugin_api import Customer

#: Tables holding a ``customer_id``, and the child tables reached through them (child, parent key, parent).
CUSTOMER_TABLES = (m.deals, m.quotes, m.orders, m.contracts, m.appointments, m.tasks)
CHILD_TABLES = (
    (m.deal_history, "deal_id", m.deals),
    (m.quote_lines, "quote_id", m.quotes),
    (m.order_lines, "order_id", m.orders),
    (m.payments, "order_id", m.orders),
    (m.refunds, "order_id", m.orders),
)
PROFILE_ROWS = 5


def _parents(parent: sa.Table, customer_id: int) -> sa.Select[Any]:
    return sa.select(parent.c.id).where(parent.c.customer_id == customer_id)


def export(crm: CRM, session: Session, customer: Customer) -> dict[str, list[dict[str, Any]]]:
    """Every sales row about the customer, one list per table (child rows through their parent); shipping phones
    and addresses masked for a user who may not see the customer's contact details."""
    customer_id = customer.id
    data = privacy.export_rows(session, CUSTOMER_TABLES, customer_id)
    if not crm.access.sees_contacts_of(customer.owner):
        data[m.orders.name] = [
            {
                **row,
                "shipping_phone": mask_phone(row["shipping_phone"]) if row["shipping_phone"] else None,
                "shipping_address": MASK * 3 if row["shipping_address"] else None,
            }
            for row in data[m.orders.name]
        ]
    conn = session.connection()
    for child, key, parent in CHILD_TABLES:
        rows = conn.execute(
            sa.select(child).where(child.c[key].in_(_parents(parent, customer_id))).order_by(*child.primary_key.columns)
        ).mappings()
        data[child.name] = [to_jsonable(dict(row)) for row in rows]
    return data


def erase(session: Session, customer_id: int, now: datetime) -> None:
    """Delete the customer's pipeline, quotes and agenda; strip personal text from the financial records kept."""
    conn = session.connection()
    deals, quotes, orders = (_parents(t, customer_id) for t in (m.deals, m.quotes, m.orders))
    privacy.delete_rows(session, (m.tasks, m.appointments), customer_id)
    for table in (m.tasks, m.appointments, m.quotes, m.orders):  # rows of others pointing at what goes
        conn.execute(table.update().where(table.c.deal_id.in_(deals)).values(deal_id=None))
    conn.execute(m.orders.update().where(m.orders.c.quote_id.in_(quotes)).values(quote_id=None))
    conn.execute(m.quote_lines.delete().where(m.quote_lines.c.quote_id.in_(quotes)))
    conn.execute(m.quotes.update().where(m.quotes.c.customer_id == customer_id).values(root_id=None))
    conn.execute(m.deal_history.delete().where(m.deal_history.c.deal_id.in_(deals)))
    privacy.delete_rows(session, (m.quotes, m.deals), customer_id)
    privacy.anonymize_rows(
        session,
        m.orders,
        customer_id,
        {
            "shipping_name": None,
            "shipping_phone": None,
            "shipping_address": None,
            "notes": None,
            "cancel_reason": None,
            "updated_at": now,
        },
    )
    conn.execute(m.payments.update().where(m.payments.c.order_id.in_(orders)).values(reference=None, note=None))
    conn.execute(m.refunds.update().where(m.refunds.c.order_id.in_(orders)).values(reason=None))
    privacy.anonymize_rows(
        session,
        m.contracts,
        customer_id,
        {"title": sa.literal("Contract ") + m.contracts.c.number, "notes": None, "updated_at": now},
    )


def merge_many(session: Session, pairs: Mapping[int, int]) -> None:
    """Re-point every sales row of merged customers to the kept ones (``pairs``: merged id → kept id; child rows
    follow their parents), a few statements per table."""
    conn = session.connection()
    for table in CUSTOMER_TABLES:
        repoint(conn, table.c.customer_id, pairs)


def profile(crm: CRM, session: Session, customer: Customer) -> dict[str, Any]:
    """Customer 360: open deals, last orders, outstanding balance, active contracts, next appointment — each part
    only when the acting user may read it for this customer (``sales.deals.read``, ``sales.orders.read``,
    ``sales.contracts.read``, ``sales.agenda.read``)."""
    conn = session.connection()
    d, s, o, c, a = m.deals.c, m.stages.c, m.orders.c, m.contracts.c, m.appointments.c
    cid = customer.id
    access = crm.access

    def shown(permission: str) -> bool:
        return access.allowed(permission) and access.covers(customer.owner, permission)

    def rows(query: sa.Select[Any], customer_id: sa.ColumnElement[Any], permission: str) -> Any:
        return conn.execute(crm.access.scoped(query, customer_id, permission))

    section: dict[str, Any] = {}
    if shown(DEALS_READ):
        open_deals = (
            rows(
                sa.select(
                    d.id,
                    d.title,
                    s.name.label("stage"),
                    s.probability,
                    d.amount_minor,
                    d.currency,
                    d.expected_close,
                    d.owner,
                )
                .join(m.stages, s.id == d.stage_id)
                .where(d.customer_id == cid, d.status == "open")
                .order_by(d.expected_close, d.id)
                .limit(PROFILE_ROWS),
                d.customer_id,
                DEALS_READ,
            )
            .mappings()
            .all()
        )
        section["open_deals"] = [
            {**dict(r), "amount": str(Money(r["currency"], r["amount_minor"]))} for r in open_deals
        ]
    if shown(ORDERS_READ):
        orders = (
            rows(
                sa.select(o.id, o.placed_at, o.status, o.currency, o.total_minor, o.paid_minor, o.refunded_minor)
                .where(o.customer_id == cid)
                .order_by(o.placed_at.desc(), o.id.desc())
                .limit(PROFILE_ROWS),
                o.customer_id,
                ORDERS_READ,
            )
            .mappings()
            .all()
        )
        balances = rows(
            sa.select(
                o.currency,
                sa.func.count(),
                sa.func.sum(o.total_minor - o.refunded_minor),
                sa.func.sum(o.total_minor - o.paid_minor),
            )
            .where(o.customer_id == cid, o.status.in_((*OPEN_STATUSES, "refunded")))
            .group_by(o.currency),
            o.customer_id,
            ORDERS_READ,
        ).all()
        section["last_orders"] = [
            {
                "id": r["id"],
                "number": order_number(r["id"]),
                "placed_at": r["placed_at"],
                "status": r["status"],
                "total": str(Money(r["currency"], r["total_minor"])),
                "outstanding": str(
                    Money(r["currency"], 0 if r["status"] == "cancelled" else r["total_minor"] - r["paid_minor"])
                ),
            }
            for r in orders
        ]
        section["orders"] = {cur: count for cur, count, _, _ in balances}
        section["total_spend"] = {cur: str(Money(cur, int(spend or 0))) for cur, _, spend, _ in balances}
        section["outstanding"] = {cur: str(Money(cur, int(owed or 0))) for cur, _, _, owed in balances if owed}
    if shown(CONTRACTS_READ):
        contracts = (
            rows(
                sa.select(c.id, c.number, c.title, c.start_date, c.end_date, c.renewal_date, c.value_minor, c.currency)
                .where(c.customer_id == cid, c.status == "active")
                .order_by(c.end_date, c.id),
                c.customer_id,
                CONTRACTS_READ,
            )
            .mappings()
            .all()
        )
        section["active_contracts"] = [
            {**dict(r), "value": str(Money(r["currency"], r["value_minor"]))} for r in contracts
        ]
    if shown(AGENDA_READ):
        appointment = (
            rows(
                sa.select(a.id, a.subject, a.starts_at, a.employee, a.channel, a.place)
                .where(a.customer_id == cid, a.status == "scheduled", a.starts_at >= crm.now())
                .order_by(a.starts_at)
                .limit(1),
                a.customer_id,
                AGENDA_READ,
            )
            .mappings()
            .first()
        )
        section["next_appointment"] = dict(appointment) if appointment else None
    return section


def segment_fields(crm: CRM) -> dict[str, sa.ColumnElement[Any]]:
    """Per-customer sales figures for segments, as SQL correlated on ``customers.id``.

    Money fields are in the CRM's main currency (setting ``currency``, VND by default), minor units.
    """
    currency = str(crm.settings.get("currency") or "VND").upper()
    o, d = m.orders.c, m.deals.c
    cid = core.customers.c.id
    counted = (o.customer_id == cid, o.status.in_((*OPEN_STATUSES, "refunded")))
    money = (*counted, o.currency == currency)

    def scalar(expression: Any, *where: Any) -> sa.ColumnElement[Any]:
        return sa.select(expression).where(*where).scalar_subquery()

    return {
        "total_spend": sa.func.coalesce(scalar(sa.func.sum(o.total_minor - o.refunded_minor), *money), 0),
        "order_count": scalar(sa.func.count(), *counted),
        "last_order_at": scalar(sa.func.max(o.placed_at), *counted),
        "outstanding_balance": sa.func.coalesce(
            scalar(sa.func.sum(o.total_minor - o.paid_minor), *money, o.status != "refunded"), 0
        ),
        "open_deal_count": scalar(sa.func.count(), d.customer_id == cid, d.status == "open"),
    }


def value_transactions() -> sa.Select[Any]:
    """Purchases for analytics: one row per order not cancelled, net of refunds, with margin when costs are known.

    The margin is scaled down by the refunded share of the order (integer arithmetic).
    """
    o = m.orders.c
    net = o.total_minor - o.refunded_minor
    margin = sa.case(
        (o.total_minor == 0, o.margin_minor),
        else_=o.margin_minor - (o.margin_minor * o.refunded_minor) // o.total_minor,
    )
    return sa.select(
        o.customer_id.label("customer_id"),
        o.placed_at.label("occurred_at"),
        net.label("amount_minor"),
        o.currency.label("currency"),
        margin.label("margin_minor"),
    ).where(o.status != "cancelled")
