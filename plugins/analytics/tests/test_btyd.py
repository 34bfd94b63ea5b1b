"""BG/NBD and Gamma-Gamma: the published CDNOW results, hand formulas, parameter recovery, bad input."""

from __future__ import annotations

import csv
import math

import attrs
import numpy as np
import pytest
from scipy.special import hyp2f1

from crmkit import ValidationError
from crmkit_analytics import btyd
from crmkit_analytics.testing import cdnow_file


def cdnow_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = list(csv.DictReader(cdnow_file("cdnow_customers_summary.csv").open()))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))  # type: ignore[return-value]


def test_bgnbd_reproduces_the_published_cdnow_fit() -> None:
    x, t_x, T = cdnow_summary()
    assert len(x) == 2357
    fit = btyd.fit_bgnbd(x, t_x, T)
    # Fader, Hardie & Lee (2005), table 1: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4
    assert (round(fit.r, 3), round(fit.alpha, 3), round(fit.a, 3), round(fit.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert fit.at_bound == ()
    assert btyd.bgnbd_log_likelihood(fit, x, t_x, T).sum() == pytest.approx(fit.log_likelihood)


PAPER = btyd.BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0.0, customers=0)


def test_conditional_expectation_matches_the_paper_example() -> None:
    # the paper's customer with x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the next 39 weeks
    assert btyd.expected_purchases(PAPER, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.001)


def test_p_alive_by_hand() -> None:
    r, alpha, a, b = PAPER.r, PAPER.alpha, PAPER.a, PAPER.b
    x, t_x, T = 3, 20.0, 38.0
    by_hand = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    got = btyd.p_alive(PAPER, [x, 0], [t_x, 0.0], [T, 10.0])
    assert got[0] == pytest.approx(by_hand, rel=1e-12)
    assert got[1] == 1.0  # never bought again: the model cannot have seen them leave


def test_expected_purchases_equals_the_textbook_formula() -> None:
    r, alpha, a, b = PAPER.r, PAPER.alpha, PAPER.a, PAPER.b
    x = np.array([0, 1, 4, 9])
    t_x = np.array([0.0, 5.0, 30.0, 35.0])
    T = np.array([12.0, 20.0, 38.0, 38.5])
    t = 52.0
    head = (a + b + x - 1) / (a - 1)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    alive = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    assert btyd.expected_purchases(PAPER, t, x, t_x, T) == pytest.approx(head * bracket / alive, rel=1e-9)


def test_expected_purchases_stay_finite_for_very_frequent_buyers() -> None:
    got = btyd.expected_purchases(PAPER, 52, [400], [38.0], [38.5])
    assert np.isfinite(got).all() and got[0] > 100


def test_discounting_purchases() -> None:
    x, t_x, T = np.array([2.0, 0.0]), np.array([30.0, 0.0]), np.array([38.0, 38.0])
    total, plain = btyd.discounted_expected_purchases(PAPER, x, t_x, T, horizon=52, step=52 / 12, rate_per_unit=0.0)
    assert plain == pytest.approx(total)
    assert total == pytest.approx(btyd.expected_purchases(PAPER, 52, x, t_x, T))
    _, discounted = btyd.discounted_expected_purchases(PAPER, x, t_x, T, horizon=52, step=52 / 12, rate_per_unit=0.002)
    assert (discounted < total).all() and (discounted > total * 1.002**-52).all()


def test_gamma_gamma_reproduces_fader_hardie_spend_note() -> None:
    rows = list(csv.DictReader(cdnow_file("cdnow_customers_summary_with_transactions.csv").open()))
    x = np.array([float(r["x"]) for r in rows])
    zbar = np.array([float(r["zbar"]) for r in rows])
    repeat = x > 0
    assert repeat.sum() == 946
    fit = btyd.fit_gamma_gamma(x[repeat], zbar[repeat])
    # "The Gamma-Gamma Model of Monetary Value" (2013): p = 6.25, q = 3.74, γ = 15.44
    assert (round(fit.p, 2), round(fit.q, 2), round(fit.gamma, 1)) == (6.25, 3.74, 15.4)
    # conditional expectation, eq. 5: p(γ + x·z̄) / (px + q − 1)
    by_hand = fit.p * (fit.gamma + 2 * 30.0) / (fit.p * 2 + fit.q - 1)
    assert btyd.expected_spend(fit, [2, 0], [30.0, 99.0]) == pytest.approx([by_hand, fit.population_mean])


def test_gamma_gamma_does_not_depend_on_the_currency_s_unit() -> None:
    """The same spend in đồng (CDNOW's dollars × 25,000) gives the same p and q, γ × 25,000 — not γ at its bound."""
    rows = list(csv.DictReader(cdnow_file("cdnow_customers_summary_with_transactions.csv").open()))
    x = np.array([float(r["x"]) for r in rows])
    zbar = np.array([float(r["zbar"]) for r in rows])
    repeat = x > 0
    dollars = btyd.fit_gamma_gamma(x[repeat], zbar[repeat])
    dong = btyd.fit_gamma_gamma(x[repeat], zbar[repeat] * 25_000)
    assert dong.at_bound == () and (round(dong.p, 2), round(dong.q, 2)) == (6.25, 3.74)
    assert dong.gamma == pytest.approx(dollars.gamma * 25_000, rel=1e-4)
    assert dong.log_likelihood == pytest.approx(dollars.log_likelihood - repeat.sum() * np.log(25_000), rel=1e-6)


def test_bgnbd_recovers_simulated_parameters() -> None:
    truth = btyd.BGNBD(r=0.6, alpha=5.0, a=0.9, b=3.0, log_likelihood=0.0, customers=0)
    rng = np.random.default_rng(20240501)
    x, t_x, T = btyd.simulate_bgnbd(truth, rng.uniform(26, 78, 40_000), rng)
    fit = btyd.fit_bgnbd(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fit, name) == pytest.approx(getattr(truth, name), rel=0.1), name
    assert fit.log_likelihood >= btyd.bgnbd_log_likelihood(truth, x, t_x, T).sum()


def test_gamma_gamma_recovers_simulated_parameters() -> None:
    truth = btyd.GammaGamma(p=4.0, q=3.0, gamma=20.0, log_likelihood=0.0, customers=0)
    rng = np.random.default_rng(7)
    x = rng.integers(1, 10, 30_000).astype(float)
    fit = btyd.fit_gamma_gamma(x, btyd.simulate_gamma_gamma(truth, x, rng))
    for name in ("p", "q", "gamma"):
        assert getattr(fit, name) == pytest.approx(getattr(truth, name), rel=0.1), name


@pytest.mark.parametrize(
    ("x", "t_x", "T", "message"),
    [
        ([1, 2], [1.0, 2.0], [0.5, 3.0], "t_x must lie between 0 and T"),
        ([-1, 2], [0.0, 2.0], [1.0, 3.0], "whole numbers ≥ 0"),
        ([0.5, 2], [0.0, 2.0], [1.0, 3.0], "whole numbers ≥ 0"),
        ([1, float("nan")], [0.0, 2.0], [1.0, 3.0], "finite"),
        ([2], [1.0], [3.0], "at least 2 customers, got 1"),
        ([], [], [], "at least 2 customers, got 0"),
        ([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 6.0, 7.0], "no customer bought more than once"),
        ([1, 2], [0.0, 0.0], [0.0, 0.0], "first purchase is today"),
    ],
)
def test_bgnbd_refuses_hopeless_input_clearly(x: list[float], t_x: list[float], T: list[float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        btyd.fit_bgnbd(x, t_x, T)


def test_gamma_gamma_refuses_identical_or_missing_spend() -> None:
    with pytest.raises(ValidationError, match="varies between customers"):
        btyd.fit_gamma_gamma([1, 2, 3], [10.0, 10.0, 10.0])
    with pytest.raises(ValidationError, match="positive mean spend"):
        btyd.fit_gamma_gamma([1, 2], [10.0, 0.0])
    with pytest.raises(ValidationError, match="q ≤ 1"):
        btyd.expected_spend(btyd.GammaGamma(2.0, 0.8, 10.0, 0.0, 0), [1], [5.0])


def test_history_without_dropouts_is_fitted_with_the_parameter_flagged() -> None:
    # everyone buys every week and nobody ever stops: the dropout parameters run to a bound, predictions stay finite
    x = np.array([9.0, 10.0, 11.0, 10.0, 9.0])
    T = np.array([10.0, 11.0, 12.0, 10.5, 9.5])
    fit = btyd.fit_bgnbd(x, T - 0.5, T)
    assert fit.at_bound
    assert math.isfinite(btyd.expected_purchases(fit, 10, x, T - 0.5, T).sum())


def test_a_base_of_customers_twice_over_gives_the_same_models() -> None:
    # the fits group identical summaries into weighted terms: doubling every customer must change only the totals
    x, t_x, T = cdnow_summary()
    once = (btyd.fit_bgnbd(x, t_x, T), btyd.fit_pareto_nbd(x, t_x, T))
    twice = (
        btyd.fit_bgnbd(*(np.tile(v, 2) for v in (x, t_x, T))),
        btyd.fit_pareto_nbd(*(np.tile(v, 2) for v in (x, t_x, T))),
    )
    for single, double, names in zip(once, twice, (("r", "alpha", "a", "b"), ("r", "alpha", "s", "beta"))):
        for name in names:
            assert getattr(double, name) == pytest.approx(getattr(single, name), rel=1e-5), name
            assert double.standard_errors[name] == pytest.approx(single.standard_errors[name] / math.sqrt(2), rel=0.02)
        assert double.log_likelihood == pytest.approx(2 * single.log_likelihood, rel=1e-9)
        assert double.customers == 2 * len(x)


def test_pareto_nbd_fit_is_the_maximum_of_its_likelihood() -> None:
    x, t_x, T = cdnow_summary()
    fit = btyd.fit_pareto_nbd(x, t_x, T)
    assert btyd.pareto_log_likelihood(fit, x, t_x, T).sum() == pytest.approx(fit.log_likelihood, rel=1e-12)
    for name in ("r", "alpha", "s", "beta"):
        for factor in (0.99, 1.01):
            nearby = attrs.evolve(fit, **{name: getattr(fit, name) * factor})
            assert btyd.pareto_log_likelihood(nearby, x, t_x, T).sum() < fit.log_likelihood, (name, factor)


def test_pareto_nbd_predictions_per_customer_match_their_formulas() -> None:
    model = btyd.ParetoNBD(r=0.553, alpha=10.58, s=0.606, beta=11.67, log_likelihood=0.0, customers=0)
    x, t_x, T = np.array([0.0, 2.0, 2.0, 7.0]), np.array([0.0, 30.0, 30.0, 38.0]), np.array([38.0, 38.0, 38.0, 39.0])
    total, _ = btyd.discounted_expected_purchases(model, x, t_x, T, horizon=52, step=52 / 12, rate_per_unit=0.0)
    assert total == pytest.approx(btyd.pareto_expected_purchases(model, 52, x, t_x, T), rel=1e-12)
    assert total[1] == total[2]  # the same history, the same prediction
    alive = btyd.pareto_p_alive(model, x, t_x, T)
    one = [btyd.pareto_p_alive(model, [x[i]], [t_x[i]], [T[i]])[0] for i in range(4)]
    assert alive == pytest.approx(one, rel=1e-14) and 0 < alive.min() and alive.max() <= 1
