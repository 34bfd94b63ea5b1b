"""RFM: recency, frequency and monetary value, quintile scores 1–5 and named segments, computed in SQL.

* **Recency** — whole days from the last purchase to the as-of instant.
* **Frequency** — number of purchases (net amount > 0) in the window: the whole history by default,
  or the last ``window_days``.
* **Monetary** — by default the *total* net spend in the window, in minor units (what the customer is
  worth to us; frequency already carries the "how often"). ``monetary="average"`` scores the average
  spend per purchase instead (total ÷ purchases, rounded half up to a minor unit), as Kumar & Reinartz
  define monetary value; the run records which (``parameters["monetary"]``).

Scores: the quintile cut points ``c1…c4`` are the values at ranks ⌈k·n/5⌉ (k = 1…4) of each measure,
read from an index with ``ORDER BY … LIMIT 1 OFFSET k`` on SQLite (no window function over a million
rows) and with one ``percentile_disc`` sort per measure on PostgreSQL.
A customer's score is 1 + the number of cut points it beats (fewer days for recency, more for the
others), so equal values always get equal scores; heavy ties (most customers bought once) make the
quintiles uneven rather than splitting identical customers arbitrarily.

Segments come from R and FM = round-half-up((F + M) / 2) on this grid (rows R, columns FM 1…5):

====  ==============  ===================  ===================  =========  =========
R     FM 1            FM 2                 FM 3                 FM 4       FM 5
====  ==============  ===================  ===================  =========  =========
5     new             potential_loyalists  potential_loyalists  champions  champions
4     promising       potential_loyalists  potential_loyalists  loyal      loyal
3     need_attention  need_attention       need_attention       loyal      loyal
2     hibernating     hibernating          at_risk              at_risk    cant_lose
1     lost            lost                 at_risk              at_risk    cant_lose
====  ==============  ===================  ===================  =========  =========
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.plugin_api import whole_days_since
from crmkit_analytics import runs
from crmkit_analytics.aggregates import large_cache
from crmkit_analytics.models import rfm as rfm_table
from crmkit_analytics.values import customer_values

if TYPE_CHECKING:
    from crmkit import CRM

GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),
    3: ("need_attention", "need_attention", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "lost", "at_risk", "at_risk", "cant_lose"),
}

#: Segment → (display name, the rule, what to do), in the order reports list them.
SEGMENTS: dict[str, tuple[str, str, str]] = {
    "champions": ("Champions", "R 5, FM 4–5", "bought recently, often and for a lot: reward, ask for referrals"),
    "loyal": ("Loyal", "R 3–4, FM 4–5", "buy regularly and spend well: upsell, loyalty programme"),
    "potential_loyalists": (
        "Potential loyalists",
        "R 4–5, FM 2–3",
        "recent with average value: membership, recommendations",
    ),
    "new": ("New", "R 5, FM 1", "first purchase just now: onboard them well"),
    "promising": ("Promising", "R 4, FM 1", "recent but little so far: build awareness, free trials"),
    "need_attention": ("Need attention", "R 3, FM 1–3", "middling on everything: limited-time offers, reactivate"),
    "at_risk": ("At risk", "R 1–2, FM 3–4", "were good customers, not seen for a while: personal win-back"),
    "cant_lose": ("Can't lose them", "R 1–2, FM 5", "the best customers are slipping away: call them"),
    "hibernating": ("Hibernating", "R 2, FM 1–2", "low value and long gone: cheap reminders only"),
    "lost": ("Lost", "R 1, FM 1–2", "lowest on every count: do not spend on them"),
}


def segment_of(r: int, fm: int) -> str:
    """The segment of a customer with recency score ``r`` and combined FM score ``fm``."""
    return GRID[r][fm - 1]


def fm_score(f: int, m: int) -> int:
    """FM = (F + M) / 2 rounded half up."""
    return (f + m + 1) // 2


#: The definitions of monetary value ``compute`` accepts: total spend, or average spend per purchase.
MONETARY = ("total", "average")


def monetary_value(values: sa.FromClause, monetary: str) -> sa.ColumnElement[int]:
    """The monetary measure over ``customer_values``: the total, or total ÷ purchases rounded half up (integers only)."""
    v = values.c
    if monetary == "total":
        return v.total_minor
    # (2·total + n) div (2·n) = round-half-up(total / n) for total, n > 0, in integer arithmetic on both databases
    average = (sa.cast(v.total_minor, sa.BigInteger) * 2 + v.purchase_count) // (v.purchase_count * 2)
    return sa.type_coerce(average, sa.BigInteger)


def compute(
    crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, window_days: int | None, monetary: str = "total"
) -> runs.Run:
    """Score every customer with purchases in ``currency`` and store the snapshot; returns the run.

    ``monetary``: ``total`` (net spend in the window) or ``average`` (spend per purchase)."""
    if monetary not in MONETARY:
        raise ValueError(f"monetary must be one of {', '.join(MONETARY)}, not {monetary!r}")
    with large_cache(conn), runs.bulk_write(conn, rfm_table):
        parameters: dict[str, Any] = {"window_days": window_days, "monetary": monetary}
        run_id = runs.start(crm, conn, "rfm", currency, as_of, parameters)
        as_of_epoch = int(as_of.timestamp())
        with customer_values(crm, conn, currency, as_of, window_days) as values:
            n = conn.execute(sa.select(sa.func.count()).select_from(values)).scalar_one()
            cuts: dict[str, list[Any]] = {"recency_days": [], "frequency": [], "monetary_minor": []}
            if n:
                money = monetary_value(values, monetary)
                for name, column in (
                    ("recency_days", values.c.last_purchase_at),
                    ("frequency", values.c.purchase_count),
                    ("monetary_minor", money),
                ):
                    cuts[name] = _cut_points(conn, column, n)
                cuts["recency_days"] = [(as_of_epoch - int(v.timestamp())) // 86400 for v in cuts["recency_days"]]
                cuts["monetary_minor"] = [int(v) for v in cuts["monetary_minor"]]
                _insert(conn, values, run_id, as_of_epoch, cuts, money)
        return runs.finish(conn, run_id, summary(conn, run_id), parameters={**parameters, "cut_points": cuts})


def _cut_points(conn: sa.Connection, column: sa.ColumnElement[Any], n: int) -> list[Any]:
    """The values at ranks ⌈k·n/5⌉, k = 1…4, in ascending order of ``column``.

    SQLite walks the column's index (``ORDER BY … LIMIT 1 OFFSET rank − 1``); PostgreSQL, whose index
    walks must visit the table for row visibility, sorts once with ``percentile_disc``, which picks
    exactly the same ranks (the first value whose cumulative share reaches k/5).
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY, array

        fractions = array([k / 5 for k in (1, 2, 3, 4)])
        cuts = sa.func.percentile_disc(fractions).within_group(column)
        return list(conn.execute(sa.select(sa.type_coerce(cuts, ARRAY(column.type)))).scalar_one())
    return [
        conn.execute(sa.select(column).order_by(column).limit(1).offset(-(-k * n // 5) - 1)).scalar_one()
        for k in (1, 2, 3, 4)
    ]


def _insert(
    conn: sa.Connection,
    values: sa.FromClause,
    run_id: int,
    as_of_epoch: int,
    cuts: dict[str, list[Any]],
    money: sa.ColumnElement[int],
) -> None:
    v = values.c
    recency = whole_days_since(v.last_purchase_at, as_of_epoch)
    # recency_days < d  ⇔  last_purchase_at ≥ as_of − d days + 1 s (whole seconds): compare the column itself
    r = _score(
        [
            v.last_purchase_at >= datetime.fromtimestamp(as_of_epoch - d * 86400 + 1, tz=UTC)
            for d in cuts["recency_days"]
        ]
    )
    f = _score([v.purchase_count > c for c in cuts["frequency"]])
    m = _score([money > c for c in cuts["monetary_minor"]])
    scored = sa.select(
        v.customer_id,
        recency.label("recency_days"),
        v.purchase_count,
        money.label("monetary_minor"),
        r.label("r"),
        f.label("f"),
        m.label("m"),
    ).cte("scored")
    if conn.dialect.name == "sqlite":  # a flattened subquery would evaluate r, f and m again in score and segment
        scored = scored.prefix_with("MATERIALIZED")
    s = scored.c
    fm = fm_score(s.f, s.m)
    segment = sa.case(
        *((s.r == r_score, sa.case(dict(enumerate(row, start=1)), value=fm)) for r_score, row in GRID.items())
    )
    score = sa.cast(s.r, sa.String) + sa.cast(s.f, sa.String) + sa.cast(s.m, sa.String)
    conn.execute(
        rfm_table.insert().from_select(
            ["customer_id", "run_id", "recency_days", "frequency", "monetary_minor", "r", "f", "m", "score", "segment"],
            sa.select(
                s.customer_id,
                sa.literal(run_id, sa.Integer),
                s.recency_days,
                s.purchase_count,
                s.monetary_minor,
                s.r,
                s.f,
                s.m,
                score,
                segment,
            ),
        )
    )


def _score(beats: list[sa.ColumnElement[bool]]) -> sa.ColumnElement[int]:
    total: sa.ColumnElement[int] = sa.literal(1, sa.Integer)
    for condition in beats:
        total = total + sa.case((condition, 1), else_=0)
    return total


def summary(conn: sa.Connection, run_id: int, where: sa.ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Customers per cell of the R × FM grid and per segment, with their recency, purchases and spend;
    ``where`` limits it to some customers (a user's scope)."""
    t = rfm_table.c
    fm = fm_score(t.f, t.m)
    rows = conn.execute(
        sa.select(
            t.r,
            fm.label("fm"),
            sa.func.count(),
            sa.func.sum(t.recency_days),
            sa.func.sum(t.frequency),
            sa.func.sum(t.monetary_minor),
        )
        .where(t.run_id == run_id, sa.true() if where is None else where)
        .group_by(t.r, fm)
    ).all()
    grid = [[0] * 5 for _ in range(5)]
    segments = {name: {"customers": 0, "recency_days": 0, "purchases": 0, "monetary_minor": 0} for name in SEGMENTS}
    for r, fm_value, count, recency, frequency, monetary in rows:
        grid[r - 1][fm_value - 1] = count
        seg = segments[segment_of(r, fm_value)]
        seg["customers"] += count
        seg["recency_days"] += int(recency)
        seg["purchases"] += int(frequency)
        seg["monetary_minor"] += int(monetary)
    return {"customers": sum(seg["customers"] for seg in segments.values()), "grid": grid, "segments": segments}
