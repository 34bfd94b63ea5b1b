"""Customer lifetime value: BG/NBD or Pareto/NBD for future purchases and P(alive), Gamma-Gamma for spend.

The models count *purchase occasions*, as the papers do: every transaction of one local day of the
business's time zone (``crm.timezone``) is one occasion with the summed amount (the
``clv_occasions`` setting ``transaction`` makes each transaction its own). For each customer with a
purchase in the currency, up to and including the calibration day (the as-of date's local day):

* ``x`` = occasions − 1 (repeat occasions), ``t_x`` = days from the first occasion's day to the last
  one's / 7, ``T`` = days from the first occasion's day to the calibration day / 7 — whole local days,
  so neither a time zone nor daylight saving moves a count (CDNOW's published summaries are made so);
* BG/NBD and Pareto/NBD are both fitted by maximum likelihood on all of them and compared by BIC;
  the run's ``model`` (``bgnbd`` by default) predicts;
* Gamma-Gamma (Fader & Hardie 2013) is fitted on the repeat buyers with ``x`` repeat occasions and
  z̄ = the mean amount of the repeat occasions only (the first excluded), in money units of the
  currency; a customer's expected spend per occasion is E[M | x, z̄], the population mean pγ/(q−1)
  for one-time buyers. When it cannot be fitted (fewer than two repeat buyers, or everyone spending
  the same), each customer's own mean per occasion is used and the run records why;
* expected purchases in each month of the horizon are discounted at the annual rate to the end of the
  month they fall in, and CLV = gross-margin rate × expected spend × discounted purchases, rounded to
  whole minor units.

A negative occasion (a refund with no purchase that day) is refused, naming the customer.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.money import minor_units
from crmkit.plugin_api import customers
from crmkit.vncalendar import local_date, local_midnight
from crmkit_analytics import btyd, runs
from crmkit_analytics.aggregates import large_cache
from crmkit_analytics.bulk import insert_rows
from crmkit_analytics.models import clv as clv_table
from crmkit_analytics.values import customer_values

if TYPE_CHECKING:
    from crmkit import CRM

MONTH_WEEKS = 365.0 / 12 / 7
EPOCH = date(1970, 1, 1)
#: The purchase models a run can predict with (``model=``); both are always fitted and compared.
MODELS = ("bgnbd", "pareto_nbd")
#: P(X(t) = n) is reported for n = 0 … 6 and 7 or more, as the papers' histograms group them.
MOST = 7


def calibration_day(crm: CRM, as_of: datetime) -> date:
    """The local day (business time zone) a calibration period ending at ``as_of`` includes last."""
    return local_date(as_of, crm.timezone)


def end_of_day(crm: CRM, day: date) -> datetime:
    """The last instant of the local ``day`` (UTC): transactions up to it belong to that day or earlier."""
    return local_midnight(day + timedelta(days=1), crm.timezone) - timedelta(microseconds=1)


def summary_arrays(
    crm: CRM, conn: sa.Connection, currency: str, day: date, *, by_day: bool = True
) -> dict[str, np.ndarray]:
    """The per-customer occasion summary up to the end of local ``day``, as NumPy arrays: ids, occasions, first
    and last occasion day (days since 1970), first occasion's amount, lowest occasion and all occasions' sum."""
    with customer_values(crm, conn, currency, end_of_day(crm, day), by_day=by_day, free_buyers=True) as values:
        v = values.c
        rows = conn.execute(
            sa.select(
                v.customer_id,
                v.occasions,
                v.first_day,
                v.last_day,
                v.first_occasion_minor,
                v.lowest_occasion_minor,
                v.occasions_minor,
            ).order_by(v.customer_id)
        )
        # flattened to plain ints: np.array() over Row objects probes each one for names, 20× slower
        data = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64).reshape(-1, 7)
    names = ("customer_id", "occasions", "first_day", "last_day", "first_minor", "lowest_minor", "total_minor")
    result = {name: data[:, i] for i, name in enumerate(names)}
    if not len(data):
        raise ValidationError(
            f"no purchases in {currency} on or before {day.isoformat()}: the as-of date is before every purchase",
            field="as_of",
        )
    negative = np.flatnonzero(result["lowest_minor"] < 0)
    if len(negative):
        who = int(result["customer_id"][negative[0]])
        name = conn.execute(sa.select(customers.c.name).where(customers.c.id == who)).scalar()
        others = f", and {len(negative) - 1} other customers too" if len(negative) > 1 else ""
        raise ValidationError(
            f"customer {who} ({name}) has a day whose refunds exceed its purchases (a negative "
            f"purchase occasion{others}): record the refund against its order",
            field="history",
        )
    return result


def occasion_summary(data: dict[str, np.ndarray], day: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks from :func:`summary_arrays`: repeat occasions, and whole local days / 7."""
    end = (day - EPOCH).days
    x = (data["occasions"] - 1).astype(np.float64)
    return x, (data["last_day"] - data["first_day"]) / 7.0, (end - data["first_day"]) / 7.0


def fit_models(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> dict[str, Any]:
    """Both purchase models fitted: ``{"bgnbd": BGNBD, "pareto_nbd": ParetoNBD or the reason it failed}``."""
    fitted: dict[str, Any] = {"bgnbd": btyd.fit_bgnbd(x, t_x, T)}
    try:
        fitted["pareto_nbd"] = btyd.fit_pareto_nbd(x, t_x, T, start=fitted["bgnbd"])
    except ValidationError as exc:
        fitted["pareto_nbd"] = str(exc).removeprefix("history: ")
    return fitted


def finite(value: float) -> float | None:
    """``value``, or None where an extreme fit (a parameter at its bound) makes a figure undefined: never NaN."""
    return value if math.isfinite(value) else None


def describe_models(fitted: dict[str, Any], horizon: float) -> dict[str, dict[str, Any]]:
    """Each model's parameters at full precision, log-likelihood, BIC (k·ln n − 2·LL), standard errors, E[X(t)]
    over ``horizon`` for a new customer, and which is better (the lower BIC)."""
    described: dict[str, dict[str, Any]] = {}
    for name, model in fitted.items():
        if isinstance(model, str):
            described[name] = {"fitted": False, "reason": model}
            continue
        names = ("r", "alpha", "a", "b") if name == "bgnbd" else ("r", "alpha", "s", "beta")
        described[name] = {
            "fitted": True,
            **{k: getattr(model, k) for k in names},
            "log_likelihood": model.log_likelihood,
            "customers": model.customers,
            "bic": len(names) * math.log(model.customers) - 2 * model.log_likelihood,
            "standard_errors": dict(model.standard_errors),
            "at_bound": list(model.at_bound),
            "expected_purchases_new_customer": finite(float(btyd.unconditional_expected_purchases(model, horizon))),
        }
    scored = {name: d["bic"] for name, d in described.items() if d["fitted"]}
    best = min(scored, key=lambda n: scored[n])
    for name, d in described.items():
        d["better"] = name == best
    return described


def compute(
    crm: CRM,
    conn: sa.Connection,
    *,
    currency: str,
    as_of: datetime,
    horizon_days: int,
    discount_rate: Decimal,
    margin_rate: Decimal,
    model: str = "bgnbd",
    by_day: bool = True,
) -> runs.Run:
    """Fit the models on the currency's customers, predict with ``model``, and store the snapshot; returns the run.

    Raises ``ValidationError`` (naming why) when the history cannot support the models: no purchase by the
    as-of date, one customer, nobody who bought on two days, every first purchase on the as-of day, a
    negative occasion.
    """
    day = calibration_day(crm, as_of)
    data = summary_arrays(crm, conn, currency, day, by_day=by_day)
    x, t_x, T = occasion_summary(data, day)
    horizon = horizon_days / 7
    fitted = fit_models(x, t_x, T)
    if isinstance(fitted[model], str):
        raise ValidationError(f"the {model} model cannot be fitted: {fitted[model]}", field="model")
    chosen = fitted[model]
    unit = 10 ** minor_units(currency)
    spend_money, spend_parameters = _spend(x, data, unit, currency)
    spend = spend_money * unit  # minor units
    alive = btyd.probability_alive(chosen, x, t_x, T)
    weekly_rate = float((1 + discount_rate) ** (Decimal(7) / 365)) - 1.0
    purchases, discounted = btyd.discounted_expected_purchases(
        chosen, x, t_x, T, horizon=horizon, step=MONTH_WEEKS, rate_per_unit=weekly_rate
    )
    if not (np.isfinite(alive).all() and np.isfinite(purchases).all() and np.isfinite(spend).all()):
        raise ValidationError("the fitted models give non-finite predictions for this history", field="history")
    value = np.rint(float(margin_rate) * spend * discounted).astype(np.int64)
    models = describe_models(fitted, horizon)
    parameters = {
        "horizon_days": horizon_days,
        "discount_rate": str(discount_rate),
        "gross_margin_rate": str(margin_rate),
        "time_unit": "week",
        "occasions": "local day" if by_day else "transaction",
        "time_zone": crm.timezone.key,
        "calibration_end": day.isoformat(),
        "model": model,
        "bgnbd": models["bgnbd"],
        "pareto_nbd": models["pareto_nbd"],
        "gamma_gamma": spend_parameters,
        "purchase_count_distribution": {
            "model": "bgnbd",
            "horizon_weeks": horizon,
            "probabilities": [
                finite(v) for v in btyd.purchase_count_distribution(fitted["bgnbd"], horizon, MOST).tolist()
            ],
            "labels": [*map(str, range(MOST)), f"{MOST}+"],
        },
    }
    with large_cache(conn), runs.bulk_write(conn, clv_table):
        run_id = runs.start(crm, conn, "clv", currency, as_of, parameters)
        insert_rows(
            conn,
            clv_table,
            (
                "customer_id",
                "run_id",
                "p_alive",
                "expected_purchases",
                "expected_spend_minor",
                "clv_minor",
                "frequency",
                "recency_weeks",
                "age_weeks",
            ),
            zip(
                data["customer_id"].tolist(),
                [run_id] * len(x),
                alive.tolist(),
                purchases.tolist(),
                np.rint(spend).astype(np.int64).tolist(),
                value.tolist(),
                x.astype(np.int64).tolist(),
                t_x.tolist(),
                T.tolist(),
            ),
        )
    return runs.finish(conn, run_id, _summary(value, alive, purchases))


def repeat_spend(x: np.ndarray, data: dict[str, np.ndarray], unit: int) -> np.ndarray:
    """z̄: each customer's mean amount over the repeat occasions (the first excluded), in money units; 0 when x = 0."""
    repeat_total = (data["total_minor"] - data["first_minor"]) / unit
    return np.divide(repeat_total, x, out=np.zeros_like(x), where=x > 0)


def _spend(x: np.ndarray, data: dict[str, np.ndarray], unit: int, currency: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Expected spend per occasion for every customer (money units), and what the run records about the model.

    Gamma-Gamma is fitted on the repeat buyers whose z̄ is positive (a zero mean has no Gamma density; they still
    get E[M | x, 0]). When it cannot be fitted, each customer's own mean per occasion is used and the run says why.
    """
    zbar = repeat_spend(x, data, unit)
    fit_on = (x > 0) & (zbar > 0)
    try:
        model = btyd.fit_gamma_gamma(x[fit_on], zbar[fit_on])
        spend = btyd.expected_spend(model, x, zbar)
    except ValidationError as exc:
        own = data["total_minor"] / data["occasions"] / unit
        return own, {"fitted": False, "reason": str(exc).removeprefix("history: "), "currency": currency}
    return spend, {
        "fitted": True,
        "p": model.p,
        "q": model.q,
        "gamma": model.gamma,
        "currency": currency,
        "log_likelihood": model.log_likelihood,
        "customers": model.customers,
        "standard_errors": dict(model.standard_errors),
        "at_bound": list(model.at_bound),
        "population_mean": model.population_mean if model.q > 1 else None,
        "left_out_zero_spend": int(((x > 0) & (zbar <= 0)).sum()),
    }


def summary(conn: sa.Connection, run_id: int, where: sa.ColumnElement[bool]) -> dict[str, Any]:
    """The run's summary figures over the customers ``where`` selects (a user's scope), from its snapshot."""
    t = clv_table.c
    rows = conn.execute(sa.select(t.clv_minor, t.p_alive, t.expected_purchases).where(t.run_id == run_id, where)).all()
    n = len(rows)
    return _summary(
        np.fromiter((r[0] for r in rows), np.int64, n),
        np.fromiter((r[1] for r in rows), np.float64, n),
        np.fromiter((r[2] for r in rows), np.float64, n),
    )


def _summary(value: np.ndarray, alive: np.ndarray, purchases: np.ndarray) -> dict[str, Any]:
    if not len(value):
        return {
            "customers": 0,
            "total_minor": 0,
            "mean_minor": 0,
            "quantiles_minor": dict.fromkeys(("p10", "p50", "p90", "p99"), 0),
            "expected_purchases": 0.0,
            "mean_p_alive": None,
            "likely_inactive": 0,
        }
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
