"""Customer types over purchase history (every currency) and interactions, computed in SQL.

Every active customer gets exactly one type; the first rule that matches wins:

1. **prospect** — has never purchased (not yet a buyer);
2. **new** — first purchase within ``new_days`` (90) of the as-of date;
3. **loyal** — at least ``loyal_purchases`` (4) purchases and one within ``at_risk_days`` (180);
4. **potential** — a purchase within ``at_risk_days``, but not (yet) loyal;
5. **at_risk** — last purchase within ``lost_days`` (365), or an *inbound* interaction (the customer
   contacted us) within ``at_risk_days`` — still engaged, so not written off;
6. **lost** — none of the above: no purchase for ``lost_days`` and no recent inbound contact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.plugin_api import core_tables as core
from crmkit_analytics import aggregates, runs
from crmkit_analytics.models import customer_types, customer_value

if TYPE_CHECKING:
    from crmkit import CRM

TYPES: dict[str, str] = {
    "loyal": "buy often and recently: keep them, reward them",
    "potential": "recent buyers who could become loyal: a second and third purchase",
    "new": "first purchase in the last weeks: welcome and onboard",
    "prospect": "not yet a buyer: convert",
    "at_risk": "have not bought for a while (or only talk to us): win back",
    "lost": "long gone with no contact: low-cost reactivation at most",
}


def compute(
    crm: CRM,
    conn: sa.Connection,
    *,
    as_of: datetime,
    new_days: int,
    loyal_purchases: int,
    at_risk_days: int,
    lost_days: int,
) -> runs.Run:
    """Classify every active customer and store the snapshot; returns the run."""
    if not new_days <= at_risk_days <= lost_days:
        raise ValidationError(
            f"need new_days ≤ at_risk_days ≤ lost_days, got {new_days}, {at_risk_days}, {lost_days}",
            field="at_risk_days",
        )
    parameters = {
        "new_days": new_days,
        "loyal_purchases": loyal_purchases,
        "at_risk_days": at_risk_days,
        "lost_days": lost_days,
    }
    run_id = runs.start(crm, conn, "types", None, as_of, parameters)
    history = _history(crm, conn, as_of)
    i = core.interactions.c
    contact = (
        sa.select(i.customer_id, sa.func.max(i.occurred_at).label("last_inbound"))
        .where(i.direction == "inbound", i.occurred_at <= as_of)
        .group_by(i.customer_id)
        .subquery("contact")
    )
    h, k, c = history.c, contact.c, core.customers.c
    recent = h.last_at > as_of - timedelta(days=at_risk_days)
    kind = sa.case(
        (h.customer_id.is_(None), "prospect"),
        (h.first_at > as_of - timedelta(days=new_days), "new"),
        (sa.and_(h.purchases >= loyal_purchases, recent), "loyal"),
        (recent, "potential"),
        (
            sa.or_(
                h.last_at > as_of - timedelta(days=lost_days), k.last_inbound > as_of - timedelta(days=at_risk_days)
            ),
            "at_risk",
        ),
        else_="lost",
    )
    query = (
        sa.select(c.id, sa.literal(run_id, sa.Integer), kind)
        .select_from(core.customers.outerjoin(history, h.customer_id == c.id).outerjoin(contact, k.customer_id == c.id))
        .where(c.status == "active")
    )
    with runs.bulk_write(conn, customer_types):
        conn.execute(customer_types.insert().from_select(["customer_id", "run_id", "customer_type"], query))
    return runs.finish(conn, run_id, summary(conn, run_id))


def summary(conn: sa.Connection, run_id: int, where: sa.ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Customers per type (``where`` limits it to some customers: a user's scope)."""
    t = customer_types.c
    counts = dict(
        conn.execute(
            sa.select(t.customer_type, sa.func.count())
            .where(t.run_id == run_id, sa.true() if where is None else where)
            .group_by(t.customer_type)
        ).all()
    )
    return {"types": {name: int(counts.get(name, 0)) for name in TYPES}, "customers": int(sum(counts.values()))}


def _history(crm: CRM, conn: sa.Connection, as_of: datetime) -> sa.Subquery:
    """First and last purchase and purchase count per customer over every currency, up to ``as_of``:
    from the aggregates, or from the transactions when there are purchases after ``as_of``."""
    cv = customer_value.c
    newest = conn.execute(sa.select(sa.func.max(cv.last_purchase_at))).scalar()
    if newest is None or newest <= as_of:
        return (
            sa.select(
                cv.customer_id,
                sa.func.min(cv.first_purchase_at).label("first_at"),
                sa.func.max(cv.last_purchase_at).label("last_at"),
                sa.func.sum(cv.purchase_count).label("purchases"),
            )
            .group_by(cv.customer_id)
            .subquery("history")
        )
    vt = aggregates.transactions(crm)
    return (
        sa.select(
            vt.c.customer_id,
            sa.func.min(vt.c.occurred_at).label("first_at"),
            sa.func.max(vt.c.occurred_at).label("last_at"),
            sa.func.count().label("purchases"),
        )
        .where(vt.c.amount_minor > 0, vt.c.occurred_at <= as_of)
        .group_by(vt.c.customer_id)
        .subquery("history")
    )
