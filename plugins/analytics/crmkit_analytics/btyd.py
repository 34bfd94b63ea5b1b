"""Buy-till-you-die models: BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (Schmittlein, Morrison & Colombo
1987, likelihood as Fader, Hardie & Lee's 2005 note writes it) and Gamma-Gamma spend (Fader & Hardie 2013).

Pure NumPy/SciPy over the per-customer summary — ``x`` repeat purchases, ``t_x`` the time of the
last purchase and ``T`` the age of the customer, both measured from the first purchase in one
time unit (the plugin uses weeks, as the paper does). Fitting maximises the log-likelihood with
L-BFGS-B on log-parameters using the analytic gradient (for Pareto/NBD, its hypergeometric terms'
derivatives by central differences). Everything is vectorized and works on the distinct summaries:
customers with the same (x, t_x, T) are one weighted likelihood term, terms of ``x`` alone are taken
once per distinct ``x``, hypergeometric terms once per distinct (x, time), predictions once per
distinct (x, T) — so a million customers fit in seconds. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from crmkit import ValidationError

Array = NDArray[np.float64]
_LOG_BOUND = 12.0  # parameters are searched in [e^-12, e^12]


@attrs.frozen
class BGNBD:
    """Fitted BG/NBD parameters: purchase rate ~ Gamma(r, α), dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    #: Parameters the likelihood pushed to the edge of the search range (e.g. ``b`` when nobody dropped out).
    at_bound: tuple[str, ...] = ()
    #: Asymptotic standard errors (inverse of the observed information), by parameter name.
    standard_errors: dict[str, float] = attrs.field(factory=dict)


@attrs.frozen
class ParetoNBD:
    """Fitted Pareto/NBD parameters: purchase rate ~ Gamma(r, α), dropout rate ~ Gamma(s, β)."""

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float
    customers: int
    at_bound: tuple[str, ...] = ()
    standard_errors: dict[str, float] = attrs.field(factory=dict)


@attrs.frozen
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters: spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, γ)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    at_bound: tuple[str, ...] = ()
    standard_errors: dict[str, float] = attrs.field(factory=dict)

    @property
    def population_mean(self) -> float:
        """Expected spend per purchase of a customer we know nothing about: pγ/(q−1)."""
        return self.p * self.gamma / (self.q - 1)


# --- input checks -------------------------------------------------------------------------


def _summary(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[Array, Array, Array]:
    xs = np.asarray(x, dtype=np.float64)
    txs = np.asarray(t_x, dtype=np.float64)
    Ts = np.asarray(T, dtype=np.float64)
    if not (xs.shape == txs.shape == Ts.shape) or xs.ndim != 1:
        raise ValidationError("x, t_x and T must be one-dimensional arrays of the same length", field="summary")
    if not (np.isfinite(xs).all() and np.isfinite(txs).all() and np.isfinite(Ts).all()):
        raise ValidationError("x, t_x and T must be finite numbers", field="summary")
    if (xs < 0).any() or (np.floor(xs) != xs).any():
        raise ValidationError("x (repeat purchases) must be whole numbers ≥ 0", field="x")
    if (txs < 0).any() or (txs > Ts + 1e-9).any():
        raise ValidationError(
            "t_x must lie between 0 and T (the last purchase is after the first, before today)", field="t_x"
        )
    return xs, txs, Ts


def _fit(
    objective: Callable[[Array], tuple[float, Array]],
    start: Array,
    names: tuple[str, ...],
    what: str,
    tolerance: float = 1e-13,
) -> tuple[Array, tuple[str, ...]]:
    """Minimise over log-parameters; returns them and the names of those stuck at the search bounds.

    A small or unusual history can push a parameter to 0 or infinity (nobody ever dropped out: ``b``
    grows without limit); the predictions stay finite, and the caller reports those names.
    """
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    # One BLAS thread: the optimiser's and the likelihood's vector operations are too small to share out, and
    # on a busy machine OpenBLAS threads waiting for each other made the BG/NBD fit 10× slower on two cores.
    with threadpool_limits(1, user_api="blas"):
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000, "ftol": tolerance, "gtol": max(tolerance * 1e4, 1e-9)},
        )
    theta = np.asarray(result.x, dtype=np.float64)
    if not np.isfinite(result.fun) or not np.isfinite(theta).all():
        raise ValidationError(f"the {what} model cannot be fitted to this history", field="history")
    at_bound = tuple(name for name, value in zip(names, theta) if abs(value) >= _LOG_BOUND - 1e-3)
    return theta, at_bound


def _standard_errors(
    objective: Callable[[Array], tuple[float, Array]], theta: Array, n: int, names: tuple[str, ...]
) -> dict[str, float]:
    """Standard errors of exp(θ) at the optimum: the observed information from finite differences of the
    analytic gradient (2k gradient calls), carried to the natural parameters by the delta method."""
    k = len(theta)
    hessian = np.empty((k, k))
    with threadpool_limits(1, user_api="blas"):
        for i in range(k):
            step = np.zeros(k)
            step[i] = 1e-5
            hessian[:, i] = (objective(theta + step)[1] - objective(theta - step)[1]) / 2e-5
    try:
        covariance = np.linalg.inv((hessian + hessian.T) / 2 * n)
    except np.linalg.LinAlgError:
        return {}
    variance = np.diag(covariance)
    if not (np.isfinite(variance).all() and (variance > 0).all()):
        return {}
    return {name: float(np.exp(value) * np.sqrt(var)) for name, value, var in zip(names, theta, variance)}


def _group(*columns: Array) -> tuple[list[Array], Array, NDArray[np.intp]]:
    """The distinct rows of ``columns`` (sorted), how many customers share each, and each customer's row.

    Customers with the same summary contribute the same likelihood term and get the same prediction: with
    times in whole days a million customers have under half as many distinct (x, t_x, T) and a few
    thousand distinct (x, T), so the models work on those. ``np.lexsort`` over the columns is several times
    faster than ``np.unique(axis=0)``.
    """
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    starts = np.ones(len(order), dtype=bool)
    for c in ordered:
        starts[1:] &= c[1:] == c[:-1]
    starts = ~starts
    starts[:1] = True
    first = np.flatnonzero(starts)
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return [c[first] for c in ordered], np.diff(np.append(first, len(order))).astype(np.float64), inverse


# --- BG/NBD -------------------------------------------------------------------------------


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BGNBD:
    """Maximum-likelihood BG/NBD parameters for the customers' (x, t_x, T); refuses hopeless data clearly."""
    xs, txs, Ts = _summary(x, t_x, T)
    n = len(xs)
    if n < 2:
        raise ValidationError(f"fitting BG/NBD needs at least 2 customers, got {n}", field="history")
    if not (xs > 0).any():
        raise ValidationError(
            "fitting BG/NBD needs repeat purchases: no customer bought more than once", field="history"
        )
    if not (Ts > 0).any():
        raise ValidationError("fitting BG/NBD needs history: every customer's first purchase is today", field="history")
    (ux, utx, uT), weights, _ = _group(xs, txs, Ts)
    ks, kidx = np.unique(ux, return_inverse=True)
    counts = np.bincount(kidx, weights=weights)
    zero = ux == 0
    zero_T, zero_w = uT[zero], weights[zero]
    pos = ~zero
    xp, wp, kp = ux[pos], weights[pos], kidx[pos]
    # customers' times index their distinct values, over which the sums that need no per-customer weight run
    Tk, tT = np.unique(uT[pos], return_inverse=True)
    tk, tt = np.unique(utx[pos], return_inverse=True)
    w_T = np.bincount(tT, weights=wp, minlength=len(Tk))
    wx_T = np.bincount(tT, weights=wp * xp, minlength=len(Tk))
    scale = float(np.mean(Ts)) or 1.0  # α is on the scale of the time unit

    def terms(theta: Array) -> tuple[float, Array]:
        r, alpha, a, b = np.exp(theta)
        ab = a + b
        by_x = (
            gammaln(r + ks)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(ab)
            + gammaln(b + ks)
            - gammaln(b)
            - gammaln(ab + ks)
        )
        lr0 = np.log(alpha + zero_T)
        log_T, log_t = np.log(alpha + Tk), np.log(alpha + tk)
        inv_T, inv_t = 1.0 / (alpha + Tk), 1.0 / (alpha + tk)
        inv_bx1 = np.divide(1.0, b + ks - 1.0, out=np.zeros_like(ks), where=ks > 0)
        rx = r + xp
        gap = log_T[tT] - log_t[tt]
        # log(A3 + A4) = A3's log + log(1 + A4/A3), the odds of having dropped out after the last purchase
        odds = (np.log(a) + np.log(inv_bx1, where=ks > 0, out=np.zeros_like(ks)))[kp] + rx * gap
        soft = np.logaddexp(0.0, odds)
        w = np.exp(odds - soft)  # A4's share
        ww = wp * w
        wwrx = ww * rx
        wrx_T = r * w_T + wx_T
        ll = counts @ by_x - r * (zero_w @ lr0) - wrx_T @ log_T + wp @ soft
        d_r = counts @ (digamma(r + ks) - digamma(r) + np.log(alpha)) - zero_w @ lr0 - w_T @ log_T + ww @ gap
        d_alpha = (
            n * r / alpha
            - r * (zero_w @ (1.0 / (alpha + zero_T)))
            - wrx_T @ inv_T
            - np.bincount(tt, weights=wwrx, minlength=len(tk)) @ inv_t
            + np.bincount(tT, weights=wwrx, minlength=len(Tk)) @ inv_T
        )
        d_a = counts @ (digamma(ab) - digamma(ab + ks)) + ww.sum() / a
        d_b = (
            counts @ (digamma(ab) + digamma(b + ks) - digamma(b) - digamma(ab + ks))
            - np.bincount(kp, weights=ww, minlength=len(ks)) @ inv_bx1
        )
        grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll / n, -grad / n

    names = ("r", "alpha", "a", "b")
    theta, at_bound = _fit(terms, np.log(np.array([1.0, scale, 1.0, 1.0])), names, "BG/NBD")
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return BGNBD(r, alpha, a, b, float(-terms(theta)[0] * n), n, at_bound, _standard_errors(terms, theta, n, names))


def bgnbd_log_likelihood(params: BGNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Each customer's log-likelihood under ``params`` (eq. 6 of the paper, in log space)."""
    xs, txs, Ts = _summary(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + xs) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
    a3 = -(r + xs) * np.log(alpha + Ts)
    safe_b = np.where(xs > 0, b + xs - 1.0, 1.0)
    a4 = np.where(xs > 0, np.log(a) - np.log(safe_b) - (r + xs) * np.log(alpha + txs), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def p_alive(params: BGNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Probability that each customer is still active at T (eq. 12): 1 for customers who never bought again."""
    xs, txs, Ts = _summary(x, t_x, T)
    return 1.0 / _inverse_p_alive(params, xs, txs, Ts)


def _inverse_p_alive(params: BGNBD, xs: Array, txs: Array, Ts: Array) -> Array:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    safe_b = np.where(xs > 0, b + xs - 1.0, 1.0)
    log_odds = np.log(a) - np.log(safe_b) + (r + xs) * (np.log(alpha + Ts) - np.log(alpha + txs))
    return 1.0 + np.where(xs > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def expected_purchases(params: BGNBD, t: float | Array, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Expected purchases in the next ``t`` time units given each customer's history (eq. 10).

    The hypergeometric term is evaluated after Euler's transformation,
    ``(1−z)^(r+x)·2F1(r+x, b+x; c; z) = (1−z)^(a−1)·2F1(a+b−1−r, a−1; c; z)``, which stays finite
    for customers with many purchases where the textbook form overflows; where it does not (extreme
    fits with r ≫ b), the textbook form's series is summed directly. Callers check the result is finite.
    """
    xs, txs, Ts = _summary(x, t_x, T)
    return np.asarray(_bgnbd_if_alive(params, t, xs, Ts) / _inverse_p_alive(params, xs, txs, Ts), dtype=np.float64)


def _bgnbd_if_alive(params: BGNBD, t: float | Array, xs: Array, Ts: Array) -> Array:
    """E[X(t) | x, T, alive]: expected purchases of a customer still active, a function of (x, T) alone."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-9:
        raise ValidationError(
            "the fitted BG/NBD has a = 1, for which expected purchases are undefined", field="history"
        )
    horizon = np.asarray(t, dtype=np.float64)
    c = a + b + xs - 1.0
    one_minus_z = (alpha + Ts) / (alpha + Ts + horizon)
    z = horizon / (alpha + Ts + horizon)
    with np.errstate(all="ignore"):
        term = one_minus_z ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        bad = ~np.isfinite(term)
        if bad.any():  # extreme fits (a parameter at its bound) defeat SciPy: sum the series itself
            z_bad = np.broadcast_to(z, xs.shape)[bad]
            log_series = np.log(_hyp2f1_series(r + xs[bad], b + xs[bad], c[bad], z_bad))
            term[bad] = np.exp((r + xs[bad]) * np.log1p(-z_bad) + log_series)
    return np.asarray((c / (a - 1.0)) * (1.0 - term), dtype=np.float64)


def _hyp2f1_series(a: Array, b: Array, c: Array, z: Array, max_terms: int = 100_000) -> Array:
    """Gauss's series for 2F1 summed term by term (vectorized); NaN where it has not converged."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    live = np.ones(z.shape, dtype=bool)
    for k in range(max_terms):
        term = np.where(live, term * (a + k) * (b + k) / ((c + k) * (k + 1)) * z, 0.0)
        total += term
        live &= np.abs(term) > 1e-16 * np.abs(total)
        if not live.any():
            return total
    return np.where(live, np.nan, total)


def discounted_expected_purchases(
    params: BGNBD | ParetoNBD,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    horizon: float,
    step: float,
    rate_per_unit: float,
) -> tuple[Array, Array]:
    """(expected purchases over ``horizon``, the same discounted): purchases expected in each ``step``
    are discounted at ``(1 + rate_per_unit) ** −t`` for the end ``t`` of their step (either purchase model)."""
    xs, txs, Ts = _summary(x, t_x, T)
    ends = np.append(np.arange(step, horizon, step), horizon) if horizon > step else np.array([horizon])
    # E[X(t) | x, t_x, T] = E[X(t) | x, T, alive] · P(alive): the first factor is taken once per distinct (x, T)
    (kx, kT), _, pair = _group(xs, Ts)
    if_alive = _pareto_if_alive if isinstance(params, ParetoNBD) else _bgnbd_if_alive
    discounted = np.zeros_like(kx)
    previous = np.zeros_like(kx)
    for end in ends:
        current = if_alive(params, end, kx, kT)  # type: ignore[arg-type]
        discounted += (current - previous) * (1.0 + rate_per_unit) ** (-end)
        previous = current
    alive = probability_alive(params, xs, txs, Ts)
    return previous[pair] * alive, discounted[pair] * alive


def conditional_expected_purchases(
    params: BGNBD | ParetoNBD, t: float | Array, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """E[X(t) | x, t_x, T] under either purchase model: what each customer is expected to buy in the next ``t``."""
    if isinstance(params, ParetoNBD):
        return pareto_expected_purchases(params, t, x, t_x, T)
    return expected_purchases(params, t, x, t_x, T)


def probability_alive(params: BGNBD | ParetoNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(alive | x, t_x, T) under either purchase model."""
    if isinstance(params, ParetoNBD):
        return pareto_p_alive(params, x, t_x, T)
    return p_alive(params, x, t_x, T)


def unconditional_expected_purchases(params: BGNBD | ParetoNBD, t: float | Array) -> Array:
    """E[X(t)]: purchases a customer picked at random makes in ``t`` time units after the first (eq. 9 of
    the BG/NBD paper; for Pareto/NBD rβ/(α(s−1))·[1 − (β/(β+t))^(s−1)])."""
    ts = np.asarray(t, dtype=np.float64)
    if isinstance(params, ParetoNBD):
        r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
        return np.asarray(r * beta / alpha * _power_ratio(beta / (beta + ts), s - 1.0), dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    head = (a + b - 1.0) / (a - 1.0)
    return np.asarray(
        head * (1.0 - (alpha / (alpha + ts)) ** r * hyp2f1(r, b, a + b - 1.0, ts / (alpha + ts))), dtype=np.float64
    )


def _power_ratio(base: Array | float, exponent: float) -> Array:
    """[1 − base^e] / e, and its limit −log(base) at e = 0 (what the Pareto/NBD expectations need at s = 1)."""
    log_base = np.log(base)
    if abs(exponent) < 1e-9:
        return np.asarray(-log_base, dtype=np.float64)
    return np.asarray(-np.expm1(exponent * log_base) / exponent, dtype=np.float64)


def purchase_count_distribution(params: BGNBD, t: float, most: int) -> Array:
    """P(X(t) = n) for n = 0 … ``most`` − 1 and, last, P(X(t) ≥ most): the BG/NBD's count distribution over
    ``t`` time units for a customer picked at random (eq. 8 of the paper)."""
    from scipy.special import betaln

    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    ns = np.arange(most, dtype=np.float64)
    log_nb = (
        gammaln(r + ns)
        - gammaln(r)
        - gammaln(ns + 1.0)
        + r * np.log(alpha / (alpha + t))
        + ns * np.log(t / (alpha + t))
    )
    nb = np.exp(log_nb)
    below = np.concatenate(([0.0], np.cumsum(nb)[:-1]))  # Σ_{j<n} of the NBD terms
    first = np.exp(betaln(a, b + ns) - betaln(a, b)) * nb
    second = np.where(
        ns > 0, np.exp(betaln(a + 1.0, np.maximum(b + ns - 1.0, 1e-300)) - betaln(a, b)) * (1.0 - below), 0.0
    )
    probabilities = first + second
    return np.append(probabilities, max(0.0, 1.0 - probabilities.sum()))


def simulate_bgnbd(params: BGNBD, T: ArrayLike, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """Draw (x, t_x, T) for customers observed for ``T`` units after their first purchase (for tests and benchmarks)."""
    Ts = np.asarray(T, dtype=np.float64)
    n = len(Ts)
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    live = np.arange(n)
    while live.size:
        clock[live] += rng.exponential(1.0, live.size) / np.maximum(rate[live], 1e-300)
        bought = clock[live] <= Ts[live]
        live = live[bought]
        x[live] += 1
        t_x[live] = clock[live]
        live = live[rng.random(live.size) >= dropout[live]]
    return x, t_x, Ts


# --- Pareto/NBD ----------------------------------------------------------------------------


def _pareto_log_f(r: float, alpha: float, s: float, beta: float, xs: Array, ts: Array) -> Array:
    """log of one side of A₀ (the dropout-before-T integral) at time ``ts``: its hypergeometric term after Euler's
    transformation — 2F1(1, B; r+s+x+1; z) — so that it stays finite for frequent buyers."""
    big, small = (alpha, beta) if alpha >= beta else (beta, alpha)
    b_param = r + xs if alpha >= beta else s + 1.0
    power = -s if alpha >= beta else 1.0 - r - xs  # c − a − b of the untransformed function
    c = r + s + xs + 1.0
    y = big + ts
    return (
        -(c - 1.0) * np.log(y) + power * np.log((small + ts) / y) + np.log(hyp2f1(1.0, b_param, c, (big - small) / y))
    )


def _log_a0(at_last: Array, at_age: Array) -> Array:
    """log A₀ = log(F(t_x) − F(T)) from the two sides' logs; −inf when t_x = T."""
    with np.errstate(divide="ignore"):
        return at_last + np.log(-np.expm1(np.minimum(at_age - at_last, 0.0)))


def _pareto_terms(
    r: float, alpha: float, s: float, beta: float, xs: Array, txs: Array, Ts: Array, log_a0: Array | None = None
) -> Array:
    """Each customer's Pareto/NBD log-likelihood (``log_a0`` when already computed)."""
    if log_a0 is None:
        log_a0 = _log_a0(_pareto_log_f(r, alpha, s, beta, xs, txs), _pareto_log_f(r, alpha, s, beta, xs, Ts))
    head = gammaln(r + xs) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    survived = -(r + xs) * np.log(alpha + Ts) - s * np.log(beta + Ts)
    return head + np.logaddexp(survived, np.log(s / (r + s + xs)) + log_a0)


def fit_pareto_nbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, start: BGNBD | None = None) -> ParetoNBD:
    """Maximum-likelihood Pareto/NBD parameters for the customers' (x, t_x, T) (``start``: a BG/NBD fit of the
    same customers, whose r and α begin the search).

    Customers with the same (x, t_x, T) — frequent when times are whole days — are evaluated once, weighted by
    their number, and each hypergeometric term once per distinct (x, time). The gradient is analytic except for
    the hypergeometric terms' own derivatives, taken by central differences over those few distinct pairs, so
    one gradient costs about one likelihood over the customers.
    """
    xs, txs, Ts = _summary(x, t_x, T)
    n = len(xs)
    if n < 2:
        raise ValidationError(f"fitting Pareto/NBD needs at least 2 customers, got {n}", field="history")
    if not (xs > 0).any():
        raise ValidationError(
            "fitting Pareto/NBD needs repeat purchases: no customer bought more than once", field="history"
        )
    if not (Ts > 0).any():
        raise ValidationError(
            "fitting Pareto/NBD needs history: every customer's first purchase is today", field="history"
        )
    (ux, utx, uT), weights, _ = _group(xs, txs, Ts)
    m = len(ux)
    (px, pt), _, where = _group(np.concatenate([ux, ux]), np.concatenate([utx, uT]))
    last, age = where[:m], where[m:]
    ks, kidx = np.unique(ux, return_inverse=True)
    Tk, tidx = np.unique(uT, return_inverse=True)
    by_x = np.bincount(kidx, weights=weights)
    scale = float(np.mean(Ts)) or 1.0
    step = 1e-6

    def log_f(theta: Array) -> Array:
        return _pareto_log_f(*np.exp(theta), px, pt)

    def terms(theta: Array) -> tuple[float, Array]:
        r, alpha, s, beta = np.exp(theta)
        with np.errstate(all="ignore"):
            sides = log_f(theta)
            at_last = sides[last]
            gap = np.minimum(sides[age] - at_last, 0.0)  # log F(T) − log F(t_x) ≤ 0
            open_share = -np.expm1(gap)  # A₀ / F(t_x): 0 when t_x = T
            log_at, log_bt = np.log(alpha + Tk), np.log(beta + Tk)
            survived = -(r + ux) * log_at[tidx] - s * log_bt[tidx]
            dropped = (np.log(s) - np.log(r + s + ks))[kidx] + at_last + np.log(open_share)
            both = np.logaddexp(survived, dropped)
            head = gammaln(r + ks) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
            ll = by_x @ head + weights @ both
        if not np.isfinite(ll):
            return 1e300, np.zeros(4)
        # each customer's gradient is its two terms' gradients weighted by their shares of its likelihood; the
        # shares are summed per distinct x, T and hypergeometric pair, where the terms' own gradients live
        on_drop = weights * np.exp(dropped - both)
        on_surv = weights - on_drop
        # ∂log A₀/∂log F(t_x) = 1 + ratio and ∂log A₀/∂log F(T) = −ratio, ratio = F(T) / A₀
        on_age = np.divide(on_drop * np.exp(gap), open_share, out=np.zeros(m), where=open_share > 0)
        per_pair = np.bincount(last, weights=on_drop + on_age, minlength=len(px)) - np.bincount(
            age, weights=on_age, minlength=len(px)
        )
        with np.errstate(all="ignore"):
            d_sides = np.stack([(log_f(theta + e) - log_f(theta - e)) / (2 * step) for e in np.eye(4) * step], axis=1)
        d_sides[per_pair == 0] = 0.0  # a side no likelihood leans on (t_x = T) must not bring a NaN in
        surv_t = np.bincount(tidx, weights=on_surv, minlength=len(Tk))
        surv_xt = np.bincount(tidx, weights=on_surv * ux, minlength=len(Tk))
        drop_x = np.bincount(kidx, weights=on_drop, minlength=len(ks)) / (r + s + ks)
        grad = per_pair @ d_sides + np.array(
            [
                r * (by_x @ (digamma(r + ks) - digamma(r) + np.log(alpha)) - surv_t @ log_at - drop_x.sum()),
                n * r - alpha * ((r * surv_t + surv_xt) @ (1.0 / (alpha + Tk))),
                s * (n * np.log(beta) - surv_t @ log_bt) + on_drop.sum() - s * drop_x.sum(),
                n * s - s * beta * (surv_t @ (1.0 / (beta + Tk))),
            ]
        )
        return float(-ll / n), -grad / n

    names = ("r", "alpha", "s", "beta")
    begin = np.log(
        np.array([1.0, scale, 1.0, scale]) if start is None else np.array([start.r, start.alpha, 1.0, start.alpha])
    )

    # the hypergeometric terms' finite-difference derivatives are good to ~1e-10: asking more only spins the optimiser
    theta, at_bound = _fit(terms, begin, names, "Pareto/NBD", tolerance=1e-10)
    value = terms(theta)[0]
    if value >= 1e299:
        raise ValidationError("the Pareto/NBD model cannot be fitted to this history", field="history")
    r, alpha, s, beta = (float(v) for v in np.exp(theta))
    return ParetoNBD(r, alpha, s, beta, -value * n, n, at_bound, _standard_errors(terms, theta, n, names))


def pareto_log_likelihood(params: ParetoNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Each customer's log-likelihood under the Pareto/NBD ``params``."""
    xs, txs, Ts = _summary(x, t_x, T)
    return _pareto_terms(params.r, params.alpha, params.s, params.beta, xs, txs, Ts)


def pareto_p_alive(params: ParetoNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(alive at T | x, t_x, T) under Pareto/NBD: 1 / (1 + s/(r+s+x)·(α+T)^(r+x)·(β+T)^s·A₀)."""
    xs, txs, Ts = _summary(x, t_x, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    n = len(xs)
    (px, pt), _, where = _group(np.concatenate([xs, xs]), np.concatenate([txs, Ts]))
    with np.errstate(divide="ignore"):
        sides = _pareto_log_f(r, alpha, s, beta, px, pt)
    log_a0 = _log_a0(sides[where[:n]], sides[where[n:]])
    log_odds = np.log(s / (r + s + xs)) + (r + xs) * np.log(alpha + Ts) + s * np.log(beta + Ts) + log_a0
    return np.asarray(1.0 / (1.0 + np.exp(np.minimum(log_odds, 700.0))), dtype=np.float64)


def pareto_expected_purchases(params: ParetoNBD, t: float | Array, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """E[X(t) | x, t_x, T] under Pareto/NBD: (r+x)(β+T)/(α+T)·[1 − ((β+T)/(β+T+t))^(s−1)]/(s−1)·P(alive)."""
    xs, txs, Ts = _summary(x, t_x, T)
    return np.asarray(_pareto_if_alive(params, t, xs, Ts) * pareto_p_alive(params, xs, txs, Ts), dtype=np.float64)


def _pareto_if_alive(params: ParetoNBD, t: float | Array, xs: Array, Ts: Array) -> Array:
    """E[X(t) | x, T, alive] under Pareto/NBD, a function of (x, T) alone."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    horizon = np.asarray(t, dtype=np.float64)
    return (r + xs) * (beta + Ts) / (alpha + Ts) * _power_ratio((beta + Ts) / (beta + Ts + horizon), s - 1.0)


# --- Gamma-Gamma ----------------------------------------------------------------------------


def _spend_summary(x: ArrayLike, mean_spend: ArrayLike) -> tuple[Array, Array]:
    xs = np.asarray(x, dtype=np.float64)
    ms = np.asarray(mean_spend, dtype=np.float64)
    if xs.shape != ms.shape or xs.ndim != 1:
        raise ValidationError("x and mean spend must be one-dimensional arrays of the same length", field="summary")
    if not (np.isfinite(xs).all() and np.isfinite(ms).all()) or (xs <= 0).any() or (ms <= 0).any():
        raise ValidationError(
            "Gamma-Gamma needs customers with purchases (x > 0) and a positive mean spend", field="spend"
        )
    return xs, ms


def fit_gamma_gamma(x: ArrayLike, mean_spend: ArrayLike) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from each customer's purchase count and mean spend per purchase."""
    xs, ms = _spend_summary(x, mean_spend)
    n = len(xs)
    if n < 2:
        raise ValidationError(
            f"fitting Gamma-Gamma needs at least 2 customers with purchases, got {n}", field="history"
        )
    if np.ptp(ms) == 0:
        raise ValidationError(
            "fitting Gamma-Gamma needs spend that varies between customers: every mean spend is the same",
            field="history",
        )
    # Fitted in units of the customers' average spend, so that γ (on the scale of money) lies in the search range
    # whatever the currency: 10^6 ₫ put it at the bound. For spend in those units, γ' = γ / scale; p and q are
    # unchanged and the log-likelihood differs by n·log(scale).
    scale = float(np.mean(ms))
    ms = ms / scale
    ks, kidx = np.unique(xs, return_inverse=True)
    log_m, log_x = np.log(ms), np.log(xs)

    def terms(theta: Array) -> tuple[float, Array]:
        p, q, g = np.exp(theta)
        px = p * xs
        log_gmx = np.log(g + ms * xs)
        psi_pq = digamma(p * ks + q)[kidx]
        ll = (
            gammaln(p * ks + q)[kidx]
            - gammaln(p * ks)[kidx]
            - gammaln(q)
            + q * np.log(g)
            + (px - 1.0) * log_m
            + px * log_x
            - (px + q) * log_gmx
        ).sum()
        d_p = (xs * (psi_pq - digamma(p * ks)[kidx] + log_m + log_x - log_gmx)).sum()
        d_q = (psi_pq - digamma(q) + np.log(g) - log_gmx).sum()
        d_g = (q / g - (px + q) / (g + ms * xs)).sum()
        grad = np.array([d_p * p, d_q * q, d_g * g])
        return -ll / n, -grad / n

    names = ("p", "q", "gamma")
    theta, at_bound = _fit(terms, np.log(np.array([1.0, 1.0, 1.0])), names, "Gamma-Gamma")
    p, q, g = (float(v) for v in np.exp(theta))
    errors = _standard_errors(terms, theta, n, names)
    if "gamma" in errors:
        errors["gamma"] *= scale
    return GammaGamma(p, q, g * scale, float(-terms(theta)[0] * n - n * np.log(scale)), n, at_bound, errors)


def expected_spend(params: GammaGamma, x: ArrayLike, mean_spend: ArrayLike) -> Array:
    """Expected spend per purchase for each customer: p(γ + x·m̄)/(px + q − 1); the population mean when x = 0."""
    if params.q <= 1.0:
        raise ValidationError(
            "the fitted spend model has q ≤ 1 (spend per purchase has no finite mean); "
            "too few repeat buyers to estimate spend",
            field="history",
        )
    xs = np.asarray(x, dtype=np.float64)
    ms = np.where(xs > 0, np.asarray(mean_spend, dtype=np.float64), 0.0)
    return params.p * (params.gamma + xs * ms) / (params.p * xs + params.q - 1.0)


def simulate_gamma_gamma(params: GammaGamma, x: ArrayLike, rng: np.random.Generator) -> Array:
    """Draw each customer's mean spend over ``x`` purchases from the Gamma-Gamma model (for tests)."""
    xs = np.asarray(x, dtype=np.float64)
    nu = rng.gamma(params.q, 1.0 / params.gamma, len(xs))
    return rng.gamma(params.p * xs, 1.0 / (nu * xs))
