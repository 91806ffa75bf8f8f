"""Tests for the BG/NBD and Gamma-Gamma models in clv.btyd."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from clv.btyd import (
    BETA_PRIOR_SD,
    DEGENERATE_BETA_BELOW,
    MAXIMUM_LIKELIHOOD,
    REGULARIZED,
    BGNBDParams,
    GammaGammaParams,
    _bgnbd_objective,
    _expected_purchases_quadrature,
    _FrequencyIndex,
    _gg_objective,
    bgnbd_degeneracy,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    bgnbd_purchase_probability,
    fit_bgnbd,
    fit_bgnbd_checked,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
    gamma_gamma_log_likelihood,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter

TRUE_BGNBD = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)  # weeks
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)

# A few customers (weeks) covering one-time buyers, light and heavy repeat buyers.
X = np.array([0.0, 1.0, 2.0, 5.0, 20.0, 60.0, 3.0, 0.0])
TX = np.array([0.0, 5.0, 10.0, 30.0, 38.0, 38.5, 1.0, 0.0])
T = np.array([39.0, 39.0, 39.0, 39.0, 39.0, 39.0, 80.0, 2.0])


def simulate_bgnbd(
    n: int, params: BGNBDParams, T: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate (frequency, recency, T) for n customers observed for T (shape (n,)) each.

    Purchases follow a Poisson process with Gamma-distributed rate; after each repeat purchase
    the customer drops out with a Beta-distributed probability.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    now = np.zeros(n)
    x = np.zeros(n)
    tx = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / lam[idx])
        past_end = now[idx] > T[idx]
        active[idx[past_end]] = False
        idx = idx[~past_end]
        x[idx] += 1
        tx[idx] = now[idx]
        active[idx[rng.random(idx.size) < p[idx]]] = False
    return x, tx, T


def simulate_gamma_gamma(
    n: int, params: GammaGammaParams, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate (frequency >= 1, mean transaction value) for n customers."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(params.q, 1.0 / params.v, n)
    x = rng.integers(1, 12, n).astype(float)
    total = rng.gamma(params.p * x, 1.0 / nu)
    return x, total / x


@pytest.fixture(scope="module")
def bgnbd_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = 20_000
    T_obs = np.random.default_rng(7).uniform(27.0, 39.0, n)
    return simulate_bgnbd(n, TRUE_BGNBD, T_obs, seed=11)


@pytest.fixture(scope="module")
def bgnbd_fit(bgnbd_sample: tuple[np.ndarray, np.ndarray, np.ndarray]) -> BGNBDParams:
    return fit_bgnbd(*bgnbd_sample)


def lifetimes_bgnbd(params: BGNBDParams) -> BetaGeoFitter:
    model = BetaGeoFitter()
    model.params_ = pd.Series({"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b})
    return model


def lifetimes_gg(params: GammaGammaParams) -> GammaGammaFitter:
    model = GammaGammaFitter()
    model.params_ = pd.Series({"p": params.p, "q": params.q, "v": params.v})
    return model


# ---------------------------------------------------------------------------------------------
# BG/NBD: agreement with lifetimes at fixed parameters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [TRUE_BGNBD, BGNBDParams(r=1.7, alpha=30.0, a=2.5, b=0.6)], ids=["cdnow", "other"]
)
def test_log_likelihood_matches_lifetimes(params: BGNBDParams) -> None:
    ours = bgnbd_log_likelihood(params, X, TX, T)
    log_params = np.log([params.r, params.alpha, params.a, params.b])
    for i in range(X.size):  # lifetimes returns the mean negative log-likelihood
        one = slice(i, i + 1)
        theirs = -BetaGeoFitter._negative_log_likelihood(
            log_params, X[one], TX[one], T[one], np.ones(1), 0.0
        )
        assert ours[i] == pytest.approx(theirs, rel=1e-6)


@pytest.mark.parametrize("t", [1.0, 4.0, 39.0, 104.0])
@pytest.mark.parametrize(
    "params", [TRUE_BGNBD, BGNBDParams(r=1.7, alpha=30.0, a=2.5, b=0.6)], ids=["cdnow", "other"]
)
def test_expected_purchases_matches_lifetimes(params: BGNBDParams, t: float) -> None:
    ours = bgnbd_expected_purchases(params, t, X, TX, T)
    theirs = lifetimes_bgnbd(params).conditional_expected_number_of_purchases_up_to_time(
        t, X, TX, T
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_purchase_probability_of_a_new_customer_matches_lifetimes() -> None:
    """With no history (x = 0, T = 0) the probability of a purchase is lifetimes' unconditional
    1 - P(no purchase up to t)."""
    model = lifetimes_bgnbd(TRUE_BGNBD)
    for t in (1.0, 4.0, 39.0):
        ours = bgnbd_purchase_probability(TRUE_BGNBD, t, [0.0], [0.0], [0.0])
        theirs = 1.0 - model.probability_of_n_purchases_up_to_time(t, 0)
        assert ours[0] == pytest.approx(float(theirs), rel=1e-9)


def test_purchase_probability_matches_simulated_customers() -> None:
    """Customers simulated by the BG/NBD story, observed for T weeks and then for t more: the
    predicted probability of a purchase in the next t weeks matches the share who bought, over
    all customers and within groups of past purchases (simulation error about 0.003)."""
    n, t = 200_000, 13.0
    rng = np.random.default_rng(5)
    big_t = rng.uniform(20.0, 52.0, n)
    lam = rng.gamma(TRUE_BGNBD.r, 1.0 / TRUE_BGNBD.alpha, n)
    dropout = rng.beta(TRUE_BGNBD.a, TRUE_BGNBD.b, n)
    now, x, tx = np.zeros(n), np.zeros(n), np.zeros(n)
    bought = np.zeros(n, dtype=bool)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / lam[idx])
        in_window = (now[idx] > big_t[idx]) & (now[idx] <= big_t[idx] + t)
        bought[idx[in_window]] = True
        active[idx[now[idx] > big_t[idx]]] = False
        idx = idx[now[idx] <= big_t[idx]]
        x[idx] += 1
        tx[idx] = now[idx]
        active[idx[rng.random(idx.size) < dropout[idx]]] = False
    predicted = bgnbd_purchase_probability(TRUE_BGNBD, t, x, tx, big_t)
    assert predicted.mean() == pytest.approx(bought.mean(), abs=0.005)
    for group in (x == 0, x == 1, (x >= 2) & (x <= 4), x >= 5):
        assert group.sum() > 5_000
        assert predicted[group].mean() == pytest.approx(bought[group].mean(), abs=0.01)
    # never above the chance of being alive, and 0 over no time
    assert np.all(predicted <= bgnbd_probability_alive(TRUE_BGNBD, x, tx, big_t))
    assert np.all(bgnbd_purchase_probability(TRUE_BGNBD, 0.0, x, tx, big_t) == 0.0)


def test_probability_alive_matches_lifetimes() -> None:
    ours = bgnbd_probability_alive(TRUE_BGNBD, X, TX, T)
    theirs = lifetimes_bgnbd(TRUE_BGNBD).conditional_probability_alive(X, TX, T)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)
    assert np.all(ours[X == 0] == 1.0)


# ---------------------------------------------------------------------------------------------
# BG/NBD: fitting
# ---------------------------------------------------------------------------------------------


def test_fit_recovers_simulation_parameters(bgnbd_fit: BGNBDParams) -> None:
    assert bgnbd_fit.converged
    assert bgnbd_fit.r == pytest.approx(TRUE_BGNBD.r, rel=0.10)
    assert bgnbd_fit.alpha == pytest.approx(TRUE_BGNBD.alpha, rel=0.10)
    assert bgnbd_fit.a == pytest.approx(TRUE_BGNBD.a, rel=0.35)
    assert bgnbd_fit.b == pytest.approx(TRUE_BGNBD.b, rel=0.35)


def test_fit_is_a_likelihood_maximum(bgnbd_sample, bgnbd_fit: BGNBDParams) -> None:
    x, tx, t_obs = bgnbd_sample
    ll_fit = bgnbd_log_likelihood(bgnbd_fit, x, tx, t_obs).sum()
    assert bgnbd_fit.log_likelihood == pytest.approx(ll_fit, rel=1e-9)
    assert ll_fit >= bgnbd_log_likelihood(TRUE_BGNBD, x, tx, t_obs).sum()
    # Small moves of any parameter do not improve the likelihood.
    for name in ("r", "alpha", "a", "b"):
        for factor in (0.99, 1.01):
            moved = BGNBDParams(
                **{
                    k: getattr(bgnbd_fit, k) * (factor if k == name else 1.0)
                    for k in ("r", "alpha", "a", "b")
                }
            )
            assert bgnbd_log_likelihood(moved, x, tx, t_obs).sum() <= ll_fit + 1e-6


def test_fit_matches_lifetimes_fit(bgnbd_sample, bgnbd_fit: BGNBDParams) -> None:
    x, tx, t_obs = bgnbd_sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = BetaGeoFitter().fit(x, tx, t_obs).params_
    their_params = BGNBDParams(*(float(theirs[k]) for k in ("r", "alpha", "a", "b")))
    ll_theirs = bgnbd_log_likelihood(their_params, x, tx, t_obs).sum()
    assert bgnbd_fit.log_likelihood >= ll_theirs - 1e-6
    for k in ("r", "alpha", "a", "b"):
        assert getattr(bgnbd_fit, k) == pytest.approx(getattr(their_params, k), rel=1e-3)


def test_fit_is_time_unit_equivariant(bgnbd_sample, bgnbd_fit: BGNBDParams) -> None:
    x, tx, t_obs = bgnbd_sample
    in_days = fit_bgnbd(x, tx * 7.0, t_obs * 7.0)
    assert in_days.alpha == pytest.approx(bgnbd_fit.alpha * 7.0, rel=1e-4)
    for k in ("r", "a", "b"):
        assert getattr(in_days, k) == pytest.approx(getattr(bgnbd_fit, k), rel=1e-4)
    converted = bgnbd_fit.rescale_time(7.0)
    assert converted.alpha == pytest.approx(in_days.alpha, rel=1e-4)
    # Predictions do not depend on the unit either.
    weeks = bgnbd_expected_purchases(bgnbd_fit, 10.0, X, TX, T)
    days = bgnbd_expected_purchases(converted, 70.0, X, TX * 7.0, T * 7.0)
    np.testing.assert_allclose(days, weeks, rtol=1e-10)


def test_weights_equal_repeated_rows() -> None:
    x = np.array([0.0, 1.0, 3.0, 0.0, 2.0])
    tx = np.array([0.0, 4.0, 20.0, 0.0, 30.0])
    t_obs = np.array([10.0, 30.0, 35.0, 39.0, 39.0])
    counts = np.array([50.0, 7.0, 3.0, 30.0, 10.0])
    weighted = fit_bgnbd(x, tx, t_obs, weights=counts)
    rep = counts.astype(int)
    repeated = fit_bgnbd(np.repeat(x, rep), np.repeat(tx, rep), np.repeat(t_obs, rep))
    for k in ("r", "alpha", "a", "b"):
        assert getattr(weighted, k) == pytest.approx(getattr(repeated, k), rel=1e-5)


def test_penalizer_shrinks_parameters(bgnbd_sample, bgnbd_fit: BGNBDParams) -> None:
    penalized = fit_bgnbd(*bgnbd_sample, penalizer=0.05)
    assert penalized.a**2 + penalized.b**2 < bgnbd_fit.a**2 + bgnbd_fit.b**2
    assert penalized.log_likelihood < bgnbd_fit.log_likelihood


def test_objective_gradient_is_exact() -> None:
    fx = _FrequencyIndex.of(X)
    w = np.arange(1.0, X.size + 1.0)
    for log_params in (np.log([0.5, 0.3, 1.3, 2.0]), np.log([2.0, 0.05, 0.4, 8.0])):
        for pen in (0.0, 0.01):

            def fun(lp: np.ndarray, pen: float = pen) -> float:
                return _bgnbd_objective(lp, fx, TX / 10.0, T / 10.0, w, pen, 10.0)[0]

            def grad(lp: np.ndarray, pen: float = pen) -> np.ndarray:
                return _bgnbd_objective(lp, fx, TX / 10.0, T / 10.0, w, pen, 10.0)[1]

            scale = np.linalg.norm(grad(log_params)) + 1.0
            assert check_grad(fun, grad, log_params, epsilon=1e-7) < 1e-5 * scale


def test_beta_prior_gradient_is_exact() -> None:
    fx = _FrequencyIndex.of(X)
    w = np.arange(1.0, X.size + 1.0)
    for log_params in (np.log([0.5, 0.3, 1e-4, 3e-3]), np.log([2.0, 0.05, 0.4, 8.0])):

        def fun(lp: np.ndarray) -> float:
            return _bgnbd_objective(lp, fx, TX / 10.0, T / 10.0, w, 0.0, 10.0, 0.05)[0]

        def grad(lp: np.ndarray) -> np.ndarray:
            return _bgnbd_objective(lp, fx, TX / 10.0, T / 10.0, w, 0.0, 10.0, 0.05)[1]

        scale = np.linalg.norm(grad(log_params)) + 1.0
        assert check_grad(fun, grad, log_params, epsilon=1e-7) < 1e-5 * scale


def test_degenerate_fits_are_recognised() -> None:
    assert bgnbd_degeneracy(TRUE_BGNBD) is None
    # the fit the issue reports at an early cutoff: "converged", and meaningless
    early = BGNBDParams(r=0.58, alpha=37.1, a=1.7e-8, b=3.7e-7, converged=True)
    reason = bgnbd_degeneracy(early)
    assert reason is not None and "a = 1.7e-08" in reason
    no_dropout = BGNBDParams(r=0.62, alpha=48.4, a=6e-5, b=6793.0)
    assert "dropout distribution" in bgnbd_degeneracy(no_dropout)
    assert "bounds" in bgnbd_degeneracy(BGNBDParams(r=0.6, alpha=30.0, a=0.3, b=np.exp(18.0)))
    assert "converge" in bgnbd_degeneracy(BGNBDParams(0.6, 30.0, 0.3, 5.0, converged=False))
    assert "finite" in bgnbd_degeneracy(BGNBDParams(0.6, float("nan"), 0.3, 5.0))


def _short_history_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three to ten weeks of history and hardly any dropout: the likelihood rises towards
    a -> 0, as at a data set's earliest cutoffs."""
    n = 3000
    t_obs = np.random.default_rng(5).uniform(3.0, 10.0, n)
    return simulate_bgnbd(n, BGNBDParams(r=0.6, alpha=5.0, a=0.05, b=20.0), t_obs, seed=6)


def test_short_history_fit_is_regularized_and_keeps_the_predictions() -> None:
    x, tx, t_obs = _short_history_sample()
    plain = fit_bgnbd(x, tx, t_obs)
    assert bgnbd_degeneracy(plain) is not None, "the sample should produce a degenerate fit"
    checked = fit_bgnbd_checked(x, tx, t_obs)
    assert checked.status == REGULARIZED and checked.reason == bgnbd_degeneracy(plain)
    fitted = checked.params
    assert bgnbd_degeneracy(fitted) is None
    assert min(fitted.a, fitted.b) >= DEGENERATE_BETA_BELOW
    # what the data determine barely moves: the likelihood and the next ten weeks' purchases
    ll_plain = bgnbd_log_likelihood(plain, x, tx, t_obs).sum()
    ll_fitted = bgnbd_log_likelihood(fitted, x, tx, t_obs).sum()
    assert ll_fitted >= ll_plain - 2.0
    ahead = [bgnbd_expected_purchases(p, 10.0, x, tx, t_obs).sum() for p in (plain, fitted)]
    assert ahead[1] == pytest.approx(ahead[0], rel=0.05)


def test_regularized_fit_is_the_posterior_mode() -> None:
    x, tx, t_obs = _short_history_sample()
    fitted = fit_bgnbd(x, tx, t_obs, beta_prior_sd=BETA_PRIOR_SD)

    def log_posterior(params: BGNBDParams) -> float:  # independent: public likelihood + prior
        prior = -(np.log(params.a) ** 2 + np.log(params.b) ** 2) / (2 * BETA_PRIOR_SD**2)
        return float(bgnbd_log_likelihood(params, x, tx, t_obs).sum() + prior)

    best = log_posterior(fitted)
    for name in ("r", "alpha", "a", "b"):
        for factor in (0.98, 1.02):
            moved = BGNBDParams(**{k: getattr(fitted, k) * (factor if k == name else 1.0)
                                   for k in ("r", "alpha", "a", "b")})
            assert log_posterior(moved) <= best + 1e-6


def test_checked_fit_keeps_a_usable_maximum_likelihood_fit(
        bgnbd_sample, bgnbd_fit: BGNBDParams) -> None:
    checked = fit_bgnbd_checked(*bgnbd_sample)
    assert checked.status == MAXIMUM_LIKELIHOOD and checked.reason is None
    assert checked.params == bgnbd_fit


def test_fit_never_raises_on_degenerate_data() -> None:
    one_timers = fit_bgnbd(np.zeros(200), np.zeros(200), np.linspace(1.0, 300.0, 200))
    assert isinstance(one_timers.converged, bool)
    assert all(np.isfinite([one_timers.r, one_timers.alpha, one_timers.a, one_timers.b]))
    single = fit_bgnbd([3.0], [10.0], [20.0])
    assert np.isfinite(single.alpha)


def test_fit_on_messy_daily_data() -> None:
    # Mostly one-time buyers, long histories in days, a few very heavy buyers.
    rng = np.random.default_rng(3)
    casual = simulate_bgnbd(
        20_000, BGNBDParams(0.1, 50.0, 1.5, 0.8), rng.uniform(0, 3000, 20_000), 1
    )
    heavy = simulate_bgnbd(300, BGNBDParams(5.0, 10.0, 0.1, 50.0), rng.uniform(0, 3000, 300), 2)
    x = np.concatenate([casual[0], heavy[0]])
    tx = np.floor(np.concatenate([casual[1], heavy[1]]))
    t_obs = np.ceil(np.concatenate([casual[2], heavy[2]]))
    assert (x == 0).mean() > 0.6 and x.max() > 500
    params = fit_bgnbd(x, tx, t_obs)
    assert params.converged
    expected = bgnbd_expected_purchases(params, 365.0, x, tx, t_obs)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="recency must not exceed T"):
        fit_bgnbd([1.0], [5.0], [4.0])  # recency > T
    with pytest.raises(ValueError, match="frequency must contain non-negative integers"):
        fit_bgnbd([-1.0], [0.0], [4.0])
    with pytest.raises(ValueError, match="frequency must contain non-negative integers"):
        fit_bgnbd([1.5], [1.0], [4.0])
    with pytest.raises(ValueError, match="frequency, recency and T must have the same length"):
        fit_bgnbd([1.0, 2.0], [1.0], [4.0, 5.0])
    with pytest.raises(ValueError, match="recency contains non-finite values"):
        fit_bgnbd([1.0], [np.nan], [4.0])
    with pytest.raises(ValueError, match="at least one customer is required"):
        fit_bgnbd([], [], [])
    with pytest.raises(ValueError, match="weights must be non-negative with a positive sum"):
        fit_bgnbd([1.0, 0.0], [1.0, 0.0], [4.0, 5.0], weights=[0.0, 0.0])


# ---------------------------------------------------------------------------------------------
# BG/NBD: predictions
# ---------------------------------------------------------------------------------------------


def test_expected_purchases_basic_properties() -> None:
    assert np.all(bgnbd_expected_purchases(TRUE_BGNBD, 0.0, X, TX, T) == 0.0)
    horizons = np.array([0.5, 1.0, 5.0, 20.0, 100.0, 1000.0])
    values = np.array([bgnbd_expected_purchases(TRUE_BGNBD, h, X, TX, T) for h in horizons])
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert np.all(np.diff(values, axis=0) > 0)  # increasing in the horizon
    # Per-customer horizons broadcast.
    per_customer = bgnbd_expected_purchases(TRUE_BGNBD, np.full(X.size, 5.0), X, TX, T)
    np.testing.assert_allclose(per_customer, values[2])


def test_expected_purchases_unconditional_consistency() -> None:
    # For a brand-new customer (x = 0, T = 0) the conditional expectation equals the
    # unconditional BG/NBD mean E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(...)].
    # Check against a direct simulation estimate instead of another closed form.
    t = 20.0
    n = 200_000
    rng = np.random.default_rng(5)
    lam = rng.gamma(TRUE_BGNBD.r, 1.0 / TRUE_BGNBD.alpha, n)
    p = rng.beta(TRUE_BGNBD.a, TRUE_BGNBD.b, n)
    # Given lambda and p, the count in (0, t] is min(Poisson(lambda t), Geometric(p)).
    count = np.minimum(rng.poisson(lam * t), rng.geometric(p))
    expected = bgnbd_expected_purchases(TRUE_BGNBD, t, [0.0], [0.0], [0.0])[0]
    assert expected == pytest.approx(count.mean(), rel=0.03)


@pytest.mark.parametrize(
    "params",
    [
        BGNBDParams(0.243, 4.414, 0.793, 2.426),
        BGNBDParams(0.06, 7.0, 0.39, 0.22),  # a + b < 1: quadrature for x = 0
        BGNBDParams(3.0, 50.0, 4.0, 100.0),
        BGNBDParams(0.5, 20.0, 1.00003, 3.0),  # a next to 1
    ],
)
def test_closed_form_agrees_with_quadrature(params: BGNBDParams) -> None:
    x = np.array([0.0, 0.0, 1.0, 4.0, 30.0, 200.0])
    t_obs = np.array([0.0, 300.0, 50.0, 100.0, 200.0, 700.0])
    tx = np.minimum(t_obs, np.array([0.0, 0.0, 10.0, 90.0, 190.0, 699.0]))
    for h in (1.0, 30.0, 365.0):
        closed = bgnbd_expected_purchases(params, h, x, tx, t_obs)
        quad = _expected_purchases_quadrature(
            params, np.full(x.size, h), x, t_obs
        ) * bgnbd_probability_alive(params, x, tx, t_obs)
        np.testing.assert_allclose(closed, quad, rtol=1e-7)


@pytest.mark.parametrize("a", [1.0 - 2e-4, 1.0 - 5e-5, 1.0, 1.0 + 5e-5, 1.0 + 2e-4])
def test_expected_purchases_accurate_around_a_equal_one(a: float) -> None:
    # The closed form is 0/0 at a = 1; check it against quadrature, which has no such issue.
    params = BGNBDParams(0.5, 5.0, a, 2.0)
    closed = bgnbd_expected_purchases(params, 30.0, X, TX, T)
    quad = _expected_purchases_quadrature(
        params, np.full(X.size, 30.0), X, T
    ) * bgnbd_probability_alive(params, X, TX, T)
    np.testing.assert_allclose(closed, quad, rtol=1e-7)


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------------------------


def test_gamma_gamma_matches_lifetimes() -> None:
    x = np.array([0.0, 1.0, 2.0, 10.0, 3.0])
    m = np.array([0.0, 20.0, 50.0, 33.0, 1.5])
    ours = gamma_gamma_expected_spend(TRUE_GG, x, m)
    theirs = lifetimes_gg(TRUE_GG).conditional_expected_average_profit(pd.Series(x), pd.Series(m))
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-6)
    assert ours[0] == pytest.approx(TRUE_GG.population_mean)

    ll = gamma_gamma_log_likelihood(TRUE_GG, x, m)
    assert np.isnan(ll[0])
    log_params = np.log([TRUE_GG.p, TRUE_GG.q, TRUE_GG.v])
    for i in range(1, x.size):
        theirs_ll = -GammaGammaFitter._negative_log_likelihood(
            log_params, x[i : i + 1], m[i : i + 1], np.ones(1), 0.0
        )
        assert ll[i] == pytest.approx(theirs_ll, rel=1e-6)


def test_gamma_gamma_recovers_parameters() -> None:
    x, m = simulate_gamma_gamma(20_000, TRUE_GG, seed=3)
    # One-time buyers and zero spends must be ignored by the fit.
    x_all = np.concatenate([x, np.zeros(500), np.full(20, 2.0)])
    m_all = np.concatenate([m, np.full(500, 80.0), np.zeros(20)])
    fit = fit_gamma_gamma(x_all, m_all)
    assert fit.converged
    assert fit.p == pytest.approx(TRUE_GG.p, rel=0.2)
    assert fit.q == pytest.approx(TRUE_GG.q, rel=0.1)
    assert fit.v == pytest.approx(TRUE_GG.v, rel=0.2)
    assert fit.population_mean == pytest.approx(TRUE_GG.population_mean, rel=0.05)
    ll_fit = gamma_gamma_log_likelihood(fit, x, m).sum()
    assert fit.log_likelihood == pytest.approx(ll_fit, rel=1e-9)
    assert ll_fit >= gamma_gamma_log_likelihood(TRUE_GG, x, m).sum()
    # Invariance to the currency unit.
    in_cents = fit_gamma_gamma(x_all, m_all * 100.0)
    assert in_cents.v == pytest.approx(fit.v * 100.0, rel=1e-4)
    assert in_cents.p == pytest.approx(fit.p, rel=1e-4)


def test_gamma_gamma_gradient_is_exact() -> None:
    x, m = simulate_gamma_gamma(50, TRUE_GG, seed=4)
    m = m / m.mean()
    fx = _FrequencyIndex.of(x)
    w = np.linspace(0.5, 2.0, x.size)
    log_params = np.log([3.0, 2.5, 1.2])

    def fun(lp: np.ndarray) -> float:
        return _gg_objective(lp, fx, x, np.log(m), m, w, 0.01, 20.0)[0]

    def grad(lp: np.ndarray) -> np.ndarray:
        return _gg_objective(lp, fx, x, np.log(m), m, w, 0.01, 20.0)[1]

    scale = np.linalg.norm(grad(log_params)) + 1.0
    assert check_grad(fun, grad, log_params, epsilon=1e-7) < 1e-5 * scale


def test_gamma_gamma_edge_cases() -> None:
    heavy_tail = GammaGammaParams(p=2.0, q=0.8, v=10.0)
    assert np.isnan(heavy_tail.population_mean)
    out = gamma_gamma_expected_spend(heavy_tail, [0.0, 1.0], [0.0, 30.0])
    assert np.isnan(out[0]) and out[1] == pytest.approx(2.0 * 40.0 / 1.8)
    with pytest.raises(ValueError, match="needs at least one customer with frequency > 0"):
        fit_gamma_gamma([0.0, 0.0], [10.0, 20.0])
