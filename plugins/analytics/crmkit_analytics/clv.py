"""Customer lifetime value: BG/NBD for future purchases and P(alive), Gamma-Gamma for spend per purchase.

For each customer with purchases in the currency (from the aggregates, one row each):

* ``x`` = purchases − 1 (repeat purchases; two orders on one day count as two), ``t_x`` = weeks from
  the first to the last purchase, ``T`` = weeks from the first purchase to the as-of date;
* BG/NBD is fitted by maximum likelihood on all of them; Gamma-Gamma on the repeat buyers, with the
  mean spend over *all* their purchases (``total / purchases``: the aggregates keep no first-order
  amount, unlike Fader & Hardie's repeat-only mean) and ``x`` = purchases. When the spend model cannot
  be fitted (fewer than two repeat buyers, or everyone spending exactly the same), each customer's own
  mean spend is used and the run records why;
* expected purchases in each month of the horizon are discounted at the annual rate to the end of the
  month they fall in, and CLV = gross-margin rate × expected spend per purchase × discounted purchases,
  rounded to whole minor units. Customers whose mean spend is not positive get the population mean.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.sqlfunctions import epoch_seconds
from crmkit_analytics import btyd, runs
from crmkit_analytics.aggregates import large_cache
from crmkit_analytics.bulk import insert_rows
from crmkit_analytics.models import clv as clv_table
from crmkit_analytics.values import customer_values

if TYPE_CHECKING:
    from crmkit import CRM

WEEK = 7 * 86400
MONTH_WEEKS = 365.0 / 12 / 7


def summary_arrays(crm: CRM, conn: sa.Connection, currency: str, as_of: datetime) -> dict[str, np.ndarray]:
    """The per-customer summary as NumPy arrays: ids, purchases, first/last purchase (epoch s) and total."""
    with customer_values(crm, conn, currency, as_of) as values:
        v = values.c
        rows = conn.execute(sa.select(v.customer_id, v.purchase_count, epoch_seconds(v.first_purchase_at),
                                      epoch_seconds(v.last_purchase_at), v.total_minor)
                            .order_by(v.customer_id))
        # flattened to plain ints: np.array() over Row objects probes each one for names, 20× slower
        data = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64).reshape(-1, 5)
    return {"customer_id": data[:, 0], "purchases": data[:, 1], "first": data[:, 2], "last": data[:, 3],
            "total": data[:, 4]}


def compute(crm: CRM, conn: sa.Connection, *, currency: str, as_of: datetime, horizon_days: int,
            discount_rate: Decimal, margin_rate: Decimal) -> runs.Run:
    """Fit both models on the currency's customers, predict, and store the snapshot; returns the run.

    Raises ``ValidationError`` (naming why) when the history cannot support the models:
    no or one customer, nobody who bought twice, every purchase on one day, identical spend.
    """
    data = summary_arrays(crm, conn, currency, as_of)
    as_of_epoch = int(as_of.timestamp())
    x = (data["purchases"] - 1).astype(np.float64)
    t_x = (data["last"] - data["first"]) / WEEK
    T = (as_of_epoch - data["first"]) / WEEK
    model = btyd.fit_bgnbd(x, t_x, T)
    mean = data["total"] / data["purchases"]
    spend, spend_parameters = _spend(data["purchases"], mean)
    alive = btyd.p_alive(model, x, t_x, T)
    weekly_rate = float((1 + discount_rate) ** (Decimal(7) / 365)) - 1.0
    horizon = horizon_days / 7
    purchases, discounted = btyd.discounted_expected_purchases(
        model, x, t_x, T, horizon=horizon, step=MONTH_WEEKS, rate_per_unit=weekly_rate)
    value = np.rint(float(margin_rate) * spend * discounted).astype(np.int64)
    if not (np.isfinite(alive).all() and np.isfinite(purchases).all() and np.isfinite(spend).all()):
        raise ValidationError("the fitted models give non-finite predictions for this history", field="history")
    parameters = {"horizon_days": horizon_days, "discount_rate": str(discount_rate),
                  "gross_margin_rate": str(margin_rate), "time_unit": "week",
                  "bgnbd": {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b,
                            "log_likelihood": model.log_likelihood, "at_bound": list(model.at_bound)},
                  "gamma_gamma": spend_parameters}
    with large_cache(conn), runs.bulk_write(conn, clv_table):
        run_id = runs.start(crm, conn, "clv", currency, as_of, parameters)
        insert_rows(conn, clv_table, ("customer_id", "run_id", "p_alive", "expected_purchases", "expected_spend_minor",
                                  "clv_minor"),
                    zip(data["customer_id"].tolist(), [run_id] * len(x), alive.tolist(), purchases.tolist(),
                        np.rint(spend).astype(np.int64).tolist(), value.tolist()))
    return runs.finish(conn, run_id, _summary(value, alive, purchases))


def _spend(purchases: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Expected spend per purchase for every customer, and what the run records about the spend model.

    Gamma-Gamma is fitted on the repeat buyers with a positive mean spend. When it cannot be (fewer
    than two of them, or all spending exactly the same), each customer's own mean is used as is (and
    the buyers' average for those whose mean is not positive); the run says so.
    """
    repeat = (purchases >= 2) & (mean > 0)
    try:
        model = btyd.fit_gamma_gamma(purchases[repeat], mean[repeat])
        spend = btyd.expected_spend(model, np.where(mean > 0, purchases, 0), mean)
    except ValidationError as exc:
        fallback = float(mean[mean > 0].mean()) if (mean > 0).any() else 0.0
        return np.where(mean > 0, mean, fallback), {"fitted": False, "reason": str(exc).removeprefix("history: ")}
    return spend, {"fitted": True, "p": model.p, "q": model.q, "gamma": model.gamma,
                   "log_likelihood": model.log_likelihood, "customers": model.customers,
                   "at_bound": list(model.at_bound)}


def summary(conn: sa.Connection, run_id: int, where: sa.ColumnElement[bool]) -> dict[str, Any]:
    """The run's summary figures over the customers ``where`` selects (a user's scope), from its snapshot."""
    t = clv_table.c
    rows = conn.execute(sa.select(t.clv_minor, t.p_alive, t.expected_purchases).where(t.run_id == run_id, where)).all()
    n = len(rows)
    return _summary(np.fromiter((r[0] for r in rows), np.int64, n), np.fromiter((r[1] for r in rows), np.float64, n),
                    np.fromiter((r[2] for r in rows), np.float64, n))


def _summary(value: np.ndarray, alive: np.ndarray, purchases: np.ndarray) -> dict[str, Any]:
    if not len(value):
        return {"customers": 0, "total_minor": 0, "mean_minor": 0,
                "quantiles_minor": dict.fromkeys(("p10", "p50", "p90", "p99"), 0), "expected_purchases": 0.0,
                "mean_p_alive": None, "likely_inactive": 0}
    quantiles = np.percentile(value, [10, 50, 90, 99]).round().astype(np.int64).tolist()
    return {
        "customers": int(len(value)),
        "total_minor": int(value.sum()),
        "mean_minor": int(round(float(value.mean()))),
        "quantiles_minor": dict(zip(("p10", "p50", "p90", "p99"), quantiles)),
        "expected_purchases": float(purchases.sum()),
        "mean_p_alive": float(alive.mean()),
        "likely_inactive": int((alive < 0.5).sum()),
    }
