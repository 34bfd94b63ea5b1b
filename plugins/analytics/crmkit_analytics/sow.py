"""Share of wallet: our part of what a customer spends in the category, per customer and per segment.

* A customer's **category spend** is the ``category_spend`` customer attribute (yearly spend in the
  category, minor units of the analytics currency — set it by hand, through an import, or from a survey);
  when missing, the user's estimate for the customer's RFM segment (``category_spend_estimates``) is used;
  customers with neither are left out (their share is unknown, not zero).
* **Our spend** is the customer's net spend in the currency over the last ``window_days`` (365); the
  yearly category spend is pro-rated to the same window.
* **Individual SOW** = our spend / category spend, clamped to 0–1 (more than 100% means the category
  figure is out of date).
* **Aggregate SOW** of a segment = Σ our spend / Σ category spend over its customers with a known
  category spend (the classic definition: our sales over the segment's total category purchases).
* **Growth opportunities**: customers whose share is below ``low_share`` (30%) while their category
  spend is in the top fifth — the most money left on the table, listed by headroom (category − ours).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.plugin_api import core_tables as core
from crmkit_analytics import aggregates, runs
from crmkit_analytics.models import rfm as rfm_table
from crmkit_analytics.models import runs as runs_table
from crmkit_analytics.models import sow as sow_table

if TYPE_CHECKING:
    from crmkit import CRM

ATTRIBUTE = "category_spend"
UNSCORED = "(no RFM score)"


def compute(
    crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, window_days: int, estimates: dict[str, int]
) -> runs.Run:
    """Compute every customer's share of wallet in ``currency`` and store the snapshot; returns the run."""
    rfm_run = conn.execute(
        sa.select(sa.func.max(runs_table.c.id)).where(runs_table.c.measure == "rfm", runs_table.c.currency == currency)
    ).scalar()
    parameters = {"window_days": window_days, "category_spend_estimates": estimates, "rfm_run": rfm_run}
    run_id = runs.start(crm, conn, "sow", currency, as_of, parameters)
    vt = aggregates.transactions(crm)
    spend = (
        sa.select(vt.c.customer_id, sa.func.sum(vt.c.amount_minor).label("spend"))
        .where(
            vt.c.currency == currency, vt.c.occurred_at <= as_of, vt.c.occurred_at > as_of - timedelta(days=window_days)
        )
        .group_by(vt.c.currency, vt.c.customer_id)
        .subquery("spend")  # currency first: a table scan
    )
    c, s, r = core.customers.c, spend.c, rfm_table.c
    attribute = sa.cast(c.attributes[ATTRIBUTE].as_string(), sa.BigInteger)
    estimate = sa.case(estimates, value=r.segment, else_=sa.null()) if estimates else sa.null()
    yearly = sa.func.coalesce(attribute, estimate)
    category = (yearly * window_days) // 365
    ours = sa.func.coalesce(s.spend, 0)
    share = sa.case((ours <= 0, 0.0), (ours >= category, 1.0), else_=sa.cast(ours, sa.Float) / category)
    source = sa.case((attribute.is_not(None), "attribute"), else_="estimate")
    query = (
        sa.select(c.id, sa.literal(run_id, sa.Integer), ours, category, share, source)
        .select_from(
            core.customers.outerjoin(spend, s.customer_id == c.id).outerjoin(
                rfm_table, sa.and_(r.customer_id == c.id, r.run_id == rfm_run)
            )
        )
        .where(c.status == "active", yearly > 0)
    )
    with runs.bulk_write(conn, sow_table):
        conn.execute(
            sow_table.insert().from_select(
                ["customer_id", "run_id", "spend_minor", "category_spend_minor", "share", "source"], query
            )
        )
    return runs.finish(conn, run_id, summary(conn, run_id, rfm_run))


def summary(
    conn: sa.Connection, run_id: int, rfm_run: int | None, where: sa.ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """Aggregate share of wallet per RFM segment (of run ``rfm_run``) and overall; ``where`` limits it to
    some customers (a user's scope)."""
    t, r = sow_table.c, rfm_table.c
    segment = sa.func.coalesce(r.segment, UNSCORED)
    rows = conn.execute(
        sa.select(segment, sa.func.count(), sa.func.sum(t.spend_minor), sa.func.sum(t.category_spend_minor))
        .select_from(sow_table.outerjoin(rfm_table, sa.and_(r.customer_id == t.customer_id, r.run_id == rfm_run)))
        .where(t.run_id == run_id, sa.true() if where is None else where)
        .group_by(segment)
    ).all()
    segments = {
        name: {
            "customers": int(n),
            "spend_minor": int(ours),
            "category_spend_minor": int(cat),
            "share": _ratio(ours, cat),
        }
        for name, n, ours, cat in rows
    }
    customers = sum(v["customers"] for v in segments.values())
    ours = sum(v["spend_minor"] for v in segments.values())
    cat = sum(v["category_spend_minor"] for v in segments.values())
    return {
        "customers": customers,
        "spend_minor": ours,
        "category_spend_minor": cat,
        "share": _ratio(ours, cat),
        "segments": segments,
    }


def _ratio(ours: int, category: int) -> float | None:
    """Aggregate share Σ ours / Σ category, clamped to 0–1 (None when no category spend is known)."""
    return None if not category else max(0.0, min(1.0, int(ours) / int(category)))


def opportunities(
    conn: sa.Connection,
    run_id: int,
    *,
    low_share: float,
    min_category_spend: int | None,
    limit: int,
    where: sa.ColumnElement[bool] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(category-spend threshold, customers below ``low_share`` with category spend ≥ threshold, by headroom).

    The threshold (the top fifth) is the whole base's, like RFM's cut points: whether a customer is an
    opportunity does not depend on who asks. ``where`` limits the list to some customers (a user's scope).
    """
    t, c = sow_table.c, core.customers.c
    if min_category_spend is None:
        n = conn.execute(sa.select(sa.func.count()).where(t.run_id == run_id)).scalar_one()
        if not n:
            return 0, []
        rank = -(-4 * n // 5) - 1  # the top fifth starts at the 80th percentile
        min_category_spend = conn.execute(
            sa.select(t.category_spend_minor)
            .where(t.run_id == run_id)
            .order_by(t.category_spend_minor)
            .limit(1)
            .offset(rank)
        ).scalar_one()
    headroom = t.category_spend_minor - t.spend_minor
    rows = (
        conn.execute(
            sa.select(
                t.customer_id,
                c.name,
                t.spend_minor,
                t.category_spend_minor,
                t.share,
                t.source,
                headroom.label("headroom_minor"),
            )
            .join(core.customers, c.id == t.customer_id)
            .where(
                t.run_id == run_id,
                t.share < low_share,
                t.category_spend_minor >= min_category_spend,
                sa.true() if where is None else where,
            )
            .order_by(headroom.desc(), t.customer_id)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    return int(min_category_spend), [dict(row) for row in rows]
