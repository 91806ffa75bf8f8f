"""Tests for the baseline predictors in clv.baselines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clv import hybrid
from clv.baselines import (
    BTYDPrediction,
    btyd_expected_spend,
    naive_average_rate,
    naive_last_period,
)
from clv.btyd import BGNBDParams, GammaGammaParams

# BG/NBD parameters in days (alpha = 4.414 weeks * 7) and Gamma-Gamma parameters.
TRUE_BGNBD_DAYS = BGNBDParams(r=0.243, alpha=4.414 * 7.0, a=0.793, b=2.426)
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)
HORIZON = 90.0


def simulate_customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate BTYD features at a cutoff (days) and the realised spend over the next HORIZON.

    Returns the features (frequency, recency_days, t_days, monetary_value, revenue_total) and
    the future spend, shape (n,).
    """
    rng = np.random.default_rng(seed)
    t_obs = rng.uniform(90.0, 365.0, n)
    end = t_obs + HORIZON
    lam = rng.gamma(TRUE_BGNBD_DAYS.r, 1.0 / TRUE_BGNBD_DAYS.alpha, n)
    drop = rng.beta(TRUE_BGNBD_DAYS.a, TRUE_BGNBD_DAYS.b, n)
    now = np.zeros(n)
    x = np.zeros(n)
    tx = np.zeros(n)
    future = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / lam[idx])
        past_end = now[idx] > end[idx]
        active[idx[past_end]] = False
        idx = idx[~past_end]
        observed = now[idx] <= t_obs[idx]
        x[idx[observed]] += 1
        tx[idx[observed]] = now[idx[observed]]
        future[idx[~observed]] += 1
        active[idx[rng.random(idx.size) < drop[idx]]] = False

    nu = rng.gamma(TRUE_GG.q, 1.0 / TRUE_GG.v, n)
    first = rng.gamma(TRUE_GG.p, 1.0 / nu)
    repeat_total = np.where(x > 0, rng.gamma(TRUE_GG.p * np.maximum(x, 1.0), 1.0 / nu), 0.0)
    future_spend = np.where(future > 0, rng.gamma(TRUE_GG.p * np.maximum(future, 1), 1 / nu), 0.0)
    features = pd.DataFrame(
        {
            "frequency": x,
            "recency_days": tx,
            "t_days": t_obs,
            "monetary_value": np.where(x > 0, repeat_total / np.maximum(x, 1.0), 0.0),
            "revenue_total": first + repeat_total,
        }
    )
    return features, future_spend


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, np.ndarray]:
    return simulate_customers(30_000, seed=21)


def predict(features: pd.DataFrame, **kwargs: object) -> BTYDPrediction:
    return btyd_expected_spend(
        features["frequency"],
        features["recency_days"],
        features["t_days"],
        features["monetary_value"],
        HORIZON,
        **kwargs,
    )


def test_btyd_aggregate_close_to_realised(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, future_spend = sample
    fitted = predict(features)
    assert fitted.bgnbd.converged and fitted.gamma_gamma.converged
    assert fitted.expected_spend.sum() / future_spend.sum() == pytest.approx(1.0, abs=0.06)
    # With the true parameters the aggregate is an unbiased forecast of the realised total.
    oracle = predict(features, bgnbd=TRUE_BGNBD_DAYS, gamma_gamma=TRUE_GG)
    assert oracle.expected_spend.sum() / future_spend.sum() == pytest.approx(1.0, abs=0.06)
    # Fitted parameters are reported in days.
    assert fitted.bgnbd.alpha == pytest.approx(TRUE_BGNBD_DAYS.alpha, rel=0.15)
    # The prediction ranks customers usefully.
    top = fitted.expected_spend >= np.quantile(fitted.expected_spend, 0.9)
    assert future_spend[top].sum() / future_spend.sum() > 0.4


def test_btyd_prediction_shapes_and_values(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, _ = sample
    pred = predict(features, bgnbd=TRUE_BGNBD_DAYS, gamma_gamma=TRUE_GG)
    n = len(features)
    for arr in (
        pred.expected_purchases,
        pred.probability_alive,
        pred.expected_order_value,
        pred.expected_spend,
    ):
        assert arr.shape == (n,)
        assert np.all(np.isfinite(arr)) and np.all(arr >= 0)
    assert np.all(pred.probability_alive <= 1.0)
    np.testing.assert_allclose(
        pred.expected_spend, pred.expected_purchases * pred.expected_order_value
    )
    one_timers = features["frequency"].to_numpy() == 0
    np.testing.assert_allclose(
        pred.expected_order_value[one_timers], TRUE_GG.population_mean, rtol=1e-12
    )
    frame = pred.to_frame()
    assert frame.shape == (n, 4)
    assert pred.bgnbd == TRUE_BGNBD_DAYS and pred.gamma_gamma == TRUE_GG


def test_btyd_handles_nonpositive_monetary_and_heavy_tails() -> None:
    freq = np.array([0.0, 2.0, 3.0, 1.0])
    rec = np.array([0.0, 10.0, 50.0, 5.0])
    age = np.array([10.0, 60.0, 90.0, 30.0])
    money = np.array([0.0, -5.0, 20.0, 0.0])
    heavy_tail = GammaGammaParams(p=2.0, q=0.9, v=10.0)  # population mean does not exist
    pred = btyd_expected_spend(
        freq, rec, age, money, 30.0, bgnbd=TRUE_BGNBD_DAYS, gamma_gamma=heavy_tail
    )
    assert np.all(np.isfinite(pred.expected_spend)) and np.all(pred.expected_spend >= 0)
    assert pred.expected_order_value[0] == pytest.approx(20.0)  # mean of positive repeat spends
    assert pred.expected_order_value[1] == pytest.approx(2.0 * 10.0 / (2.0 * 2.0 + 0.9 - 1.0))


def test_a_saved_fit_gives_each_customer_one_value_in_any_subset() -> None:
    """Without a Gamma-Gamma population mean (q <= 1), a one-time buyer's order value is the
    fitted customers' repeat-buyer mean kept with the fit, not the mean of whichever rows are
    scored together: a batch of one-time buyers, or a subset scored outside dbt, gets the
    values the whole population gets."""
    features, _ = simulate_customers(2_000, seed=5)
    table = pa.Table.from_pandas(features[list(hybrid.BTYD_INPUTS)], preserve_index=False)
    fitted = hybrid.fit(table)
    repeat = (features.frequency > 0) & (features.monetary_value > 0)
    assert fitted.repeat_order_value == pytest.approx(features.monetary_value[repeat].mean())
    fit = dataclasses.replace(fitted, gamma_gamma=GammaGammaParams(p=2.0, q=0.9, v=10.0))
    assert hybrid.BTYDFit.from_dict(fit.to_dict()) == fit
    whole = hybrid.predict(table, int(HORIZON), fit)
    one_time = np.flatnonzero(features.frequency.to_numpy() == 0)[:50]
    mixed = np.r_[one_time, np.flatnonzero(repeat.to_numpy())[:3]]
    for rows in (one_time, mixed):
        part = hybrid.predict(table.take(rows), int(HORIZON), fit)
        np.testing.assert_array_equal(part.expected_order_value, whole.expected_order_value[rows])
        np.testing.assert_array_equal(part.expected_spend, whole.expected_spend[rows])
    assert np.all(whole.expected_order_value[one_time] == fit.repeat_order_value)


def test_btyd_zero_horizon() -> None:
    pred = btyd_expected_spend(
        [0.0, 2.0], [0.0, 10.0], [10.0, 20.0], [0.0, 5.0], 0.0, TRUE_BGNBD_DAYS, TRUE_GG
    )
    assert np.all(pred.expected_spend == 0.0)


def test_naive_last_period() -> None:
    out = naive_last_period(pd.Series([0.0, 12.5, -3.0, 100.0]))
    np.testing.assert_array_equal(out, [0.0, 12.5, 0.0, 100.0])
    assert out.dtype == np.float64


def test_naive_average_rate() -> None:
    out = naive_average_rate([100.0, 50.0, -20.0, 30.0], [200.0, 0.0, 10.0, 0.5], 90.0)
    # 100 / 200 * 90; 50 / max(0, 1) * 90; negative floored; 30 / max(0.5, 1) * 90
    np.testing.assert_allclose(out, [45.0, 4500.0, 0.0, 2700.0])
    with pytest.raises(ValueError, match="revenue_total and t_days must have the same length"):
        naive_average_rate([1.0, 2.0], [1.0], 30.0)
