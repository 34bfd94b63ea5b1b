"""Model checks against a hold-out (``crmkit analytics clv-check``): the papers' tests of a purchase model.

The models are fitted on the occasions up to the calibration end; for the customers whose first purchase falls
in it, the repeat occasions they were expected to make until the hold-out end are compared with what they made:
grouped by calibration frequency (0, 1, …, 6, 7+: the conditional expectations of Fader, Hardie & Lee 2005,
fig. 4), in total, as mean absolute error per customer, and week by week as cumulative repeat occasions from
the first customer's first purchase (the tracking plot, fig. 3: the model's line is the cohort's unconditional
expectation, Σ E[X(t − first purchase)]).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit_analytics import aggregates, btyd, clv

if TYPE_CHECKING:
    from crmkit import CRM

#: Calibration frequencies shown one by one; higher ones are grouped as "7+".
GROUPS = 7


def compare(
    crm: CRM,
    conn: sa.Connection,
    *,
    currency: str,
    calibration_end: date,
    holdout_end: date,
    model: str,
    by_day: bool = True,
) -> dict[str, Any]:
    """Predicted against actual repeat occasions in the hold-out; see the module docstring for what each part is."""
    data = clv.summary_arrays(crm, conn, currency, calibration_end, by_day=by_day)
    x, t_x, T = clv.occasion_summary(data, calibration_end)
    fitted = clv.fit_models(x, t_x, T)
    chosen = fitted[model]
    if isinstance(chosen, str):
        raise ValidationError(f"the {model} model cannot be fitted: {chosen}", field="model")
    weeks = (holdout_end - calibration_end).days / 7
    predicted = btyd.conditional_expected_purchases(chosen, weeks, x, t_x, T)
    if not np.isfinite(predicted).all():
        raise ValidationError("the fitted model gives non-finite predictions for this history", field="history")
    days = _occasion_days(crm, conn, currency, holdout_end, by_day)
    cohort = set(data["customer_id"].tolist())
    cut = (calibration_end - clv.EPOCH).days
    actual_by_id: dict[int, int] = {}
    for customer_id, day in days:
        if customer_id in cohort and day > cut:
            actual_by_id[customer_id] = actual_by_id.get(customer_id, 0) + 1
    actual = np.array([actual_by_id.get(int(c), 0) for c in data["customer_id"]], dtype=np.float64)
    group = np.minimum(x, GROUPS).astype(np.int64)
    by_frequency = []
    for k in range(GROUPS + 1):
        members = group == k
        count = int(members.sum())
        by_frequency.append(
            {
                "frequency": f"{k}+" if k == GROUPS else str(k),
                "customers": count,
                "actual": float(actual[members].mean()) if count else None,
                "predicted": float(predicted[members].mean()) if count else None,
            }
        )
    return {
        "currency": currency,
        "model": model,
        "calibration_end": calibration_end.isoformat(),
        "holdout_end": holdout_end.isoformat(),
        "holdout_weeks": weeks,
        "customers": int(len(x)),
        "parameters": clv.describe_models(fitted, weeks),
        "by_frequency": by_frequency,
        "total": {"actual": int(actual.sum()), "predicted": float(predicted.sum())},
        "mean_absolute_error": float(np.abs(predicted - actual).mean()),
        "weekly": _tracking(chosen, data, days, cohort, holdout_end),
    }


def _occasion_days(crm: CRM, conn: sa.Connection, currency: str, until: date, by_day: bool) -> list[tuple[int, int]]:
    """Every (customer, local day) occasion in ``currency`` up to the end of ``until`` (one per transaction
    unless ``by_day``), ordered by day."""
    vt = aggregates.transactions(crm)
    day = aggregates.local_day(crm, vt.c.occurred_at)
    query = sa.select(vt.c.customer_id, day).where(
        vt.c.currency == currency, vt.c.occurred_at <= clv.end_of_day(crm, until)
    )
    if by_day:
        query = query.group_by(vt.c.customer_id, day)
    rows = conn.execute(query)
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64).reshape(-1, 2)
    flat = flat[np.argsort(flat[:, 1], kind="stable")]
    return [(int(c), int(d)) for c, d in flat]


def _tracking(
    model: btyd.BGNBD | btyd.ParetoNBD,
    data: dict[str, np.ndarray],
    days: list[tuple[int, int]],
    cohort: set[int],
    end: date,
) -> list[dict[str, Any]]:
    """Week by week from the cohort's first purchase to ``end``: cumulative repeat occasions, actual and expected."""
    start = int(data["first_day"].min())
    last = (end - clv.EPOCH).days
    first_days, counts = np.unique(data["first_day"], return_counts=True)
    firsts = dict(zip(data["customer_id"].tolist(), data["first_day"].tolist()))
    repeat_days = np.array(sorted(d for c, d in days if c in cohort and d > firsts[c]), dtype=np.int64)
    rows = []
    for week_end in range(start + 7, last + 7, 7):
        until = min(week_end, last)
        elapsed = np.maximum(until - first_days, 0) / 7.0
        expected = float(counts @ btyd.unconditional_expected_purchases(model, elapsed))
        rows.append(
            {
                "week": len(rows) + 1,
                "ending": (clv.EPOCH + timedelta(days=until)).isoformat(),
                "actual": int(np.searchsorted(repeat_days, until, side="right")),
                "predicted": expected,
            }
        )
    return rows
