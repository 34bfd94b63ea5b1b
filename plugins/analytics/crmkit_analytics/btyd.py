"""Buy-till-you-die models: BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma spend (Fader & Hardie 2013).

Pure NumPy/SciPy over the per-customer summary — ``x`` repeat purchases, ``t_x`` the time of the
last purchase and ``T`` the age of the customer, both measured from the first purchase in one
time unit (the plugin uses weeks, as the paper does). Fitting maximises the log-likelihood with
L-BFGS-B on log-parameters using the analytic gradient; everything is vectorized over customers
(terms that depend on ``x`` only are evaluated once per distinct ``x``), so a million customers
fit in seconds. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

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


@attrs.frozen
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters: spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, γ)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    at_bound: tuple[str, ...] = ()

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
        raise ValidationError("t_x must lie between 0 and T (the last purchase is after the first, before today)", field="t_x")
    return xs, txs, Ts


def _fit(objective: Callable[[Array], tuple[float, Array]], start: Array, names: tuple[str, ...],
         what: str) -> tuple[Array, tuple[str, ...]]:
    """Minimise over log-parameters; returns them and the names of those stuck at the search bounds.

    A small or unusual history can push a parameter to 0 or infinity (nobody ever dropped out: ``b``
    grows without limit); the predictions stay finite, and the caller reports those names.
    """
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9})
    theta = np.asarray(result.x, dtype=np.float64)
    if not np.isfinite(result.fun) or not np.isfinite(theta).all():
        raise ValidationError(f"the {what} model cannot be fitted to this history", field="history")
    at_bound = tuple(name for name, value in zip(names, theta) if abs(value) >= _LOG_BOUND - 1e-3)
    return theta, at_bound


# --- BG/NBD -------------------------------------------------------------------------------


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BGNBD:
    """Maximum-likelihood BG/NBD parameters for the customers' (x, t_x, T); refuses hopeless data clearly."""
    xs, txs, Ts = _summary(x, t_x, T)
    n = len(xs)
    if n < 2:
        raise ValidationError(f"fitting BG/NBD needs at least 2 customers, got {n}", field="history")
    if not (xs > 0).any():
        raise ValidationError("fitting BG/NBD needs repeat purchases: no customer bought more than once", field="history")
    if not (Ts > 0).any():
        raise ValidationError("fitting BG/NBD needs history: every customer's first purchase is today", field="history")
    ks, counts = np.unique(xs, return_counts=True)
    zero_T = Ts[xs == 0]
    pos = xs > 0
    xp, txp, Tp = xs[pos], txs[pos], Ts[pos]
    kp = np.searchsorted(ks, xp)
    scale = float(np.mean(Ts)) or 1.0  # α is on the scale of the time unit

    def terms(theta: Array) -> tuple[float, Array]:
        r, alpha, a, b = np.exp(theta)
        ab = a + b
        by_x = gammaln(r + ks) - gammaln(r) + r * np.log(alpha) + gammaln(ab) + gammaln(b + ks) - gammaln(b) - gammaln(ab + ks)
        lr0 = np.log(alpha + zero_T)
        lr = np.log(alpha + Tp)
        lt = np.log(alpha + txp)
        log_bx1 = np.log(b + ks - 1.0, where=ks > 0, out=np.zeros_like(ks))[kp]
        a3 = -(r + xp) * lr
        a4 = np.log(a) - log_bx1 - (r + xp) * lt
        s = np.logaddexp(a3, a4)
        w = np.exp(a4 - s)
        ll = counts @ by_x - r * lr0.sum() + s.sum()
        d_r = counts @ (digamma(r + ks) - digamma(r) + np.log(alpha)) - lr0.sum() - ((1 - w) * lr + w * lt).sum()
        d_alpha = (n * r / alpha - r * (1.0 / (alpha + zero_T)).sum()
                   - ((r + xp) * ((1 - w) / (alpha + Tp) + w / (alpha + txp))).sum())
        d_a = counts @ (digamma(ab) - digamma(ab + ks)) + w.sum() / a
        d_b = counts @ (digamma(ab) + digamma(b + ks) - digamma(b) - digamma(ab + ks)) - (w / (b + xp - 1.0)).sum()
        grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll / n, -grad / n

    theta, at_bound = _fit(terms, np.log(np.array([1.0, scale, 1.0, 1.0])), ("r", "alpha", "a", "b"), "BG/NBD")
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return BGNBD(r, alpha, a, b, float(-terms(theta)[0] * n), n, at_bound)


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
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-9:
        raise ValidationError("the fitted BG/NBD has a = 1, for which expected purchases are undefined", field="history")
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
    result = (c / (a - 1.0)) * (1.0 - term) / _inverse_p_alive(params, xs, txs, Ts)
    return np.asarray(result, dtype=np.float64)


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


def discounted_expected_purchases(params: BGNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *,
                                  horizon: float, step: float, rate_per_unit: float) -> tuple[Array, Array]:
    """(expected purchases over ``horizon``, the same discounted): purchases expected in each ``step``
    are discounted at ``(1 + rate_per_unit) ** −t`` for the end ``t`` of their step."""
    xs, txs, Ts = _summary(x, t_x, T)
    ends = np.append(np.arange(step, horizon, step), horizon) if horizon > step else np.array([horizon])
    discounted = np.zeros_like(xs)
    previous = np.zeros_like(xs)
    for end in ends:
        current = expected_purchases(params, end, xs, txs, Ts)
        discounted += (current - previous) * (1.0 + rate_per_unit) ** (-end)
        previous = current
    return previous, discounted


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


# --- Gamma-Gamma ----------------------------------------------------------------------------


def _spend_summary(x: ArrayLike, mean_spend: ArrayLike) -> tuple[Array, Array]:
    xs = np.asarray(x, dtype=np.float64)
    ms = np.asarray(mean_spend, dtype=np.float64)
    if xs.shape != ms.shape or xs.ndim != 1:
        raise ValidationError("x and mean spend must be one-dimensional arrays of the same length", field="summary")
    if not (np.isfinite(xs).all() and np.isfinite(ms).all()) or (xs <= 0).any() or (ms <= 0).any():
        raise ValidationError("Gamma-Gamma needs customers with purchases (x > 0) and a positive mean spend", field="spend")
    return xs, ms


def fit_gamma_gamma(x: ArrayLike, mean_spend: ArrayLike) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from each customer's purchase count and mean spend per purchase."""
    xs, ms = _spend_summary(x, mean_spend)
    n = len(xs)
    if n < 2:
        raise ValidationError(f"fitting Gamma-Gamma needs at least 2 customers with purchases, got {n}", field="history")
    if np.ptp(ms) == 0:
        raise ValidationError("fitting Gamma-Gamma needs spend that varies between customers: every mean spend is the same",
                              field="history")
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
        ll = (gammaln(p * ks + q)[kidx] - gammaln(p * ks)[kidx] - gammaln(q) + q * np.log(g)
              + (px - 1.0) * log_m + px * log_x - (px + q) * log_gmx).sum()
        d_p = (xs * (psi_pq - digamma(p * ks)[kidx] + log_m + log_x - log_gmx)).sum()
        d_q = (psi_pq - digamma(q) + np.log(g) - log_gmx).sum()
        d_g = (q / g - (px + q) / (g + ms * xs)).sum()
        grad = np.array([d_p * p, d_q * q, d_g * g])
        return -ll / n, -grad / n

    theta, at_bound = _fit(terms, np.log(np.array([1.0, 1.0, 1.0])), ("p", "q", "gamma"), "Gamma-Gamma")
    p, q, g = (float(v) for v in np.exp(theta))
    return GammaGamma(p, q, g * scale, float(-terms(theta)[0] * n - n * np.log(scale)), n, at_bound)


def expected_spend(params: GammaGamma, x: ArrayLike, mean_spend: ArrayLike) -> Array:
    """Expected spend per purchase for each customer: p(γ + x·m̄)/(px + q − 1); the population mean when x = 0."""
    if params.q <= 1.0:
        raise ValidationError("the fitted spend model has q ≤ 1 (spend per purchase has no finite mean); "
                              "too few repeat buyers to estimate spend", field="history")
    xs = np.asarray(x, dtype=np.float64)
    ms = np.where(xs > 0, np.asarray(mean_spend, dtype=np.float64), 0.0)
    return params.p * (params.gamma + xs * ms) / (params.p * xs + params.q - 1.0)


def simulate_gamma_gamma(params: GammaGamma, x: ArrayLike, rng: np.random.Generator) -> Array:
    """Draw each customer's mean spend over ``x`` purchases from the Gamma-Gamma model (for tests)."""
    xs = np.asarray(x, dtype=np.float64)
    nu = rng.gamma(params.q, 1.0 / params.gamma, len(xs))
    return rng.gamma(params.p * xs, 1.0 / (nu * xs))
