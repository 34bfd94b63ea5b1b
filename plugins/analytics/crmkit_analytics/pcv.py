"""Past customer value: every past contribution brought to today's money, per customer and in total.

``PCV = Σ margin_i × (1 + d) ^ (days_i / 365)`` over the customer's transactions in one currency up
to the as-of date, where ``days_i`` is the number of whole days from the transaction's (UTC) day to
the as-of day and ``d`` the annual discount rate (0 ≤ d < 1). ``margin_i`` is the transaction's own
``margin_minor`` when its source gives one (sales with product costs), otherwise
``amount_minor × gross_margin_rate``. Refunds are already netted into the amounts. The sum is done in
the database (one factor per calendar day, joined in); each customer's result is rounded to whole
minor units, and the total is the sum of those integers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.plugin_api import day_of
from crmkit_analytics import aggregates, runs
from crmkit_analytics.models import pcv as pcv_table

if TYPE_CHECKING:
    from crmkit import CRM


def factor(discount_rate: Decimal, days: int) -> float:
    """The compounding factor (1 + d) ^ (days / 365) for money received ``days`` ago."""
    return float((1 + discount_rate) ** (Decimal(days) / 365))


def compute(
    crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, discount_rate: Decimal, margin_rate: Decimal
) -> runs.Run:
    """Compute every customer's PCV in ``currency`` and store the snapshot; returns the run."""
    parameters = {"discount_rate": str(discount_rate), "gross_margin_rate": str(margin_rate)}
    run_id = runs.start(crm, conn, "pcv", currency, as_of, parameters)
    vt = aggregates.transactions(crm)
    mine = sa.and_(vt.c.currency == currency, vt.c.occurred_at <= as_of)
    first = conn.execute(sa.select(sa.func.min(vt.c.occurred_at)).where(mine)).scalar()
    if first is not None:
        factors = sa.Table(
            "analytics_pcv_factors",
            sa.MetaData(),
            sa.Column("day", sa.String(10), primary_key=True),
            sa.Column("factor", sa.Float, nullable=False),
            prefixes=["TEMPORARY"],
        )
        factors.drop(conn, checkfirst=True)
        factors.create(conn)
        try:
            last_day = as_of.date()
            span = (last_day - first.date()).days
            conn.execute(
                factors.insert(),
                [
                    {"day": (last_day - timedelta(days=n)).isoformat(), "factor": factor(discount_rate, n)}
                    for n in range(span + 1)
                ],
            )
            margin = sa.func.coalesce(vt.c.margin_minor, vt.c.amount_minor * float(margin_rate))
            query = (
                sa.select(
                    vt.c.customer_id,
                    sa.literal(run_id, sa.Integer),
                    sa.func.sum(sa.case((vt.c.amount_minor > 0, 1), else_=0)),
                    sa.cast(sa.func.round(sa.func.sum(margin * factors.c.factor)), sa.BigInteger),
                )
                .select_from(vt.join(factors, factors.c.day == day_of(vt.c.occurred_at)))
                .where(mine)
                .group_by(vt.c.currency, vt.c.customer_id)  # currency first: a table scan, not index walks
            )
            with runs.bulk_write(conn, pcv_table):
                conn.execute(
                    pcv_table.insert().from_select(
                        ["customer_id", "run_id", "purchases", "pcv_minor"], aggregates.only_active(query)
                    )
                )
        finally:
            factors.drop(conn)
    return runs.finish(conn, run_id, summary(conn, run_id))


def summary(conn: sa.Connection, run_id: int, where: sa.ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Customers valued and their total PCV (``where`` limits it to some customers: a user's scope)."""
    t = pcv_table.c
    customers, total = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.pcv_minor), 0)).where(
            t.run_id == run_id, sa.true() if where is None else where
        )
    ).one()
    return {"customers": int(customers), "total_minor": int(total)}
