"""The analytics plugin's hook implementations: thin callers of ``crm.analytics`` and its modules.

The sales hooks are implemented with ``optionalhook=True``: analytics loads without sales, and
with it keeps each customer's value aggregates current inside the order's own transaction.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import Permission, ValidationError, hookimpl
from crmkit.money import Money
from crmkit.plugin_api import SegmentField, customers, delete_in
from crmkit.privacy import delete_rows, export_rows
from crmkit_analytics import aggregates, runs
from crmkit_analytics.customer_types import TYPES
from crmkit_analytics.models import SNAPSHOTS, clv, customer_types, customer_value, pcv, rfm, sow
from crmkit_analytics.rfm import SEGMENTS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from marshmallow import fields
    from sqlalchemy.orm import Session

    from crmkit import CRM, Customer

#: Every table holding rows about a customer, children before parents.
CUSTOMER_TABLES = (*SNAPSHOTS.values(), customer_value)


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    from crmkit_analytics.service import AnalyticsService

    return {"analytics": AnalyticsService(crm)}


@hookimpl
def crmkit_permissions() -> list[Permission]:
    from crmkit_analytics.service import PERMISSIONS

    return PERMISSIONS


@hookimpl
def crmkit_customer_fields() -> dict[str, fields.Field]:
    from marshmallow import fields, validate

    return {
        "category_spend": fields.Integer(
            strict=True,
            validate=validate.Range(min=0),
            allow_none=True,
            metadata={"description": "yearly spend in our category, minor units"},
        )
    }


# --- sales (optional) ------------------------------------------------------------------------


@hookimpl(optionalhook=True)
def crmkit_order_placed(crm: CRM, order: Any, session: Session) -> None:
    aggregates.refresh(crm, session.connection(), [order.customer_id])


@hookimpl(optionalhook=True)
def crmkit_order_refunded(crm: CRM, order: Any, refund: Any, session: Session) -> None:
    aggregates.refresh(crm, session.connection(), [order.customer_id])


@hookimpl(optionalhook=True)
def crmkit_order_cancelled(crm: CRM, order: Any, session: Session) -> None:
    aggregates.refresh(crm, session.connection(), [order.customer_id])


@hookimpl(optionalhook=True)
def crmkit_orders_imported(crm: CRM, customer_ids: list[int], session: Session) -> None:
    """A batch of imported order history (``crmkit sales orders import``): its customers' aggregates, in its transaction."""
    aggregates.refresh(crm, session.connection(), customer_ids)


# --- customers ---------------------------------------------------------------------------------


@hookimpl
def crmkit_customers_merged_many(crm: CRM, pairs: Mapping[int, int], session: Session) -> None:
    conn = session.connection()
    aggregates.merge_many(conn, pairs, crm.now())
    for table in SNAPSHOTS.values():  # the merged ids' scores are stale; the kept ones' stay until the next run
        delete_in(conn, table.c.customer_id, list(pairs))


@hookimpl
def crmkit_customer_unmerged(crm: CRM, kept: Customer, restored: Customer, session: Session) -> None:
    """Both customers' aggregates from their purchases as they are after the unmerge."""
    aggregates.refresh(crm, session.connection(), [kept.id, restored.id])


@hookimpl
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    return {"analytics": export_rows(session, CUSTOMER_TABLES, customer.id)}


@hookimpl
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    delete_rows(session, CUSTOMER_TABLES, customer.id)


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    from crmkit_analytics.service import READ

    if not (crm.access.allowed(READ) and crm.access.covers(customer.owner, READ)):
        return {}  # the section is left out, not shown empty; customer_summary limits its SQL to the scope too
    return {"analytics": crm.analytics.customer_summary(session.connection(), customer.id)}


@hookimpl
def crmkit_segment_fields(crm: CRM) -> dict[str, Any]:
    def latest(table: sa.Table, column: str) -> Any:
        return (
            sa.select(table.c[column])
            .where(table.c.customer_id == customers.c.id, table.c.run_id == runs.latest_id(_measure(table)))
            .scalar_subquery()
        )

    return {
        "rfm_score": latest(rfm, "score"),
        "rfm_segment": SegmentField(latest(rfm, "segment"), choices=tuple(SEGMENTS)),
        "customer_type": SegmentField(latest(customer_types, "customer_type"), choices=tuple(TYPES)),
        "pcv": latest(pcv, "pcv_minor"),
        "sow": latest(sow, "share"),
        "clv": latest(clv, "clv_minor"),
        "p_alive": latest(clv, "p_alive"),
    }


def _measure(table: sa.Table) -> str:
    return next(name for name, snapshot in SNAPSHOTS.items() if snapshot is table)


# --- the demo ------------------------------------------------------------------------------------


@hookimpl
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Give a third of the demo customers a yearly category spend (what a survey would tell), for share of wallet."""
    rng = random.Random(seed * 7919 + 6)  # noqa: S311 - demo data, repeatable by seed
    with crm.transaction():  # one commit for all of them
        for customer_id in customer_ids:
            if rng.random() < 1 / 3:
                crm.customers.update(customer_id, attributes={"category_spend": rng.randrange(5, 200) * 1_000_000})


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    service = crm.analytics
    try:
        run = service.rfm()
    except ValidationError as exc:
        return {"Analytics": [f"RFM not computed: {exc}"]}
    if not run.summary["customers"]:
        return {"Analytics": ["No purchases yet: RFM, PCV and CLV need purchase history (install crmkit-sales)."]}
    from crmkit_analytics.rfm import SEGMENTS

    sizes = run.summary["segments"]
    lines = [f"{SEGMENTS[name][0]}: {sizes[name]['customers']}" for name in SEGMENTS if sizes[name]["customers"]]
    sections = {f"RFM segments ({run.summary['customers']} buyers, {run.currency})": lines}
    try:
        value = service.clv(currency=run.currency)
    except ValidationError as exc:
        sections["Top customers by lifetime value"] = [f"CLV not available: {exc}"]
        return sections
    top = service.customers("clv", order="clv_minor", limit=5)
    sections["Top customers by lifetime value (next year)"] = [
        f"{row['name']}: {Money(value.currency, int(row['clv_minor'])).format()} (P(alive) {row['p_alive']:.0%})"
        for row in top
    ]
    return sections
