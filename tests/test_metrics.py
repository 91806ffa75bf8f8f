"""Tests for clv.metrics against hand-computed cases and independent references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import lognorm, spearmanr
from sklearn.metrics import (
    brier_score_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)

from clv.metrics import (
    aggregate_error,
    auc,
    brier_score,
    decile_calibration,
    decile_mape,
    evaluate,
    expected_calibration_error,
    gain_curve,
    gini_difference_se,
    interval_coverage,
    mae,
    normalized_gini,
    quantile_exceedance,
    quantile_shortfall,
    rmse,
    spearman,
    top_decile_capture,
)
from clv.score import ziln_quantiles_numpy

RNG = np.random.default_rng(0)
Y_TRUE = RNG.gamma(0.5, 100.0, 2000) * (RNG.random(2000) < 0.4)
Y_PRED = Y_TRUE * RNG.lognormal(0.0, 0.5, 2000) + RNG.gamma(1.0, 5.0, 2000)


def brute_force_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y > 0], s[y <= 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (pos.size * neg.size)


def brute_force_gini(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Expected Gini ratio over every order of tied predictions (only for tiny inputs)."""
    n = y_true.size

    def gini(values: np.ndarray) -> float:
        return np.mean(np.cumsum(values) / values.sum()) - (n + 1) / (2 * n)

    ideal = gini(np.sort(y_true)[::-1])
    results = []
    for perm in itertools.permutations(range(n)):
        index = np.array(perm)
        order = index[np.argsort(-y_pred[index], kind="stable")]
        results.append(gini(y_true[order]))
    return float(np.mean(results) / ideal)


# ---------------------------------------------------------------------------------------------
# normalized Gini
# ---------------------------------------------------------------------------------------------


def test_gini_perfect_random_and_inverted() -> None:
    assert normalized_gini(Y_TRUE, Y_TRUE) == pytest.approx(1.0)
    assert normalized_gini(Y_TRUE, 2.0 * Y_TRUE + 3.0) == pytest.approx(1.0)
    random_scores = [
        normalized_gini(Y_TRUE, np.random.default_rng(s).random(Y_TRUE.size)) for s in range(20)
    ]
    assert abs(np.mean(random_scores)) < 0.03
    assert normalized_gini(Y_TRUE, -Y_TRUE) < 0
    assert normalized_gini(Y_TRUE, np.full(Y_TRUE.size, 7.0)) == pytest.approx(0.0, abs=1e-12)
    assert 0.5 < normalized_gini(Y_TRUE, Y_PRED) < 1.0


def test_gini_hand_case() -> None:
    # y sorted by prediction: [0, 3, 1]; cumulative shares 0, 3/4, 1; mean 7/12; minus 4/6.
    # ideal order [3, 1, 0]: shares 3/4, 1, 1; mean 11/12; minus 4/6.
    y = np.array([3.0, 1.0, 0.0])
    pred = np.array([2.0, 1.0, 3.0])
    expected = (7 / 12 - 2 / 3) / (11 / 12 - 2 / 3)
    assert normalized_gini(y, pred) == pytest.approx(expected)


def test_gini_ties_are_averaged_over_orderings() -> None:
    y = np.array([5.0, 0.0, 2.0, 0.0, 1.0])
    pred = np.array([1.0, 1.0, 0.5, 2.0, 0.5])
    assert normalized_gini(y, pred) == pytest.approx(brute_force_gini(y, pred))
    # Row order does not matter.
    perm = np.array([3, 0, 4, 1, 2])
    assert normalized_gini(y[perm], pred[perm]) == pytest.approx(normalized_gini(y, pred))


def test_gini_undefined_cases() -> None:
    assert np.isnan(normalized_gini(np.zeros(5), np.arange(5.0)))
    assert np.isnan(normalized_gini(np.full(5, 2.0), np.arange(5.0)))


# ---------------------------------------------------------------------------------------------
# rank and error metrics
# ---------------------------------------------------------------------------------------------


def test_spearman_matches_scipy() -> None:
    assert spearman(Y_TRUE, Y_PRED) == pytest.approx(spearmanr(Y_TRUE, Y_PRED).statistic)
    ties = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 5.0])
    pred = np.array([1.0, 3.0, 3.0, 0.0, 2.0, 9.0])
    assert spearman(ties, pred) == pytest.approx(spearmanr(ties, pred).statistic)
    assert np.isnan(spearman(ties, np.ones(6)))


def test_simple_error_metrics_hand_case() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([2.0, 2.0, 1.0, 5.0])
    assert aggregate_error(y, p) == pytest.approx(10.0 / 10.0 - 1.0)
    assert aggregate_error(y, 1.5 * y) == pytest.approx(0.5)
    assert mae(y, p) == pytest.approx((1 + 0 + 2 + 1) / 4)
    assert rmse(y, p) == pytest.approx(np.sqrt((1 + 0 + 4 + 1) / 4))
    assert np.isnan(aggregate_error(np.zeros(3), np.ones(3)))


def test_auc_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(300) < 0.3).astype(float)
    score = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert auc(y, score) == pytest.approx(brute_force_auc(y, score))
    assert auc(y > 0, y) == pytest.approx(1.0)
    assert auc(y, -y) == pytest.approx(0.0)
    assert auc(y, np.ones(300)) == pytest.approx(0.5)
    assert np.isnan(auc(np.zeros(5), np.arange(5.0)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=4)), min_size=2, max_size=40
    )
)
def test_auc_property(pairs: list[tuple[bool, int]]) -> None:
    y = np.array([p[0] for p in pairs], dtype=float)
    s = np.array([p[1] for p in pairs], dtype=float)
    if y.min() == y.max():
        assert np.isnan(auc(y, s))
    else:
        assert auc(y, s) == pytest.approx(brute_force_auc(y, s))


# ---------------------------------------------------------------------------------------------
# decile metrics
# ---------------------------------------------------------------------------------------------


def test_decile_calibration_hand_case() -> None:
    y = np.arange(20.0)
    pred = np.arange(20.0) * 2.0
    table = decile_calibration(y, pred)
    assert list(table.columns) == ["decile", "customers", "mean_predicted", "mean_actual"]
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["customers"].tolist() == [2] * 10
    # Decile 1 holds the two highest predictions (customers 19 and 18).
    assert table["mean_actual"].iloc[0] == pytest.approx(18.5)
    assert table["mean_predicted"].iloc[0] == pytest.approx(37.0)
    assert table["mean_actual"].iloc[-1] == pytest.approx(0.5)
    assert decile_mape(y, pred) == pytest.approx(1.0)  # predictions are twice the actuals
    # Decile 10 has mean actual 0.5, so nothing is skipped here.


def test_decile_sizes_with_remainder_and_small_inputs() -> None:
    table = decile_calibration(np.arange(23.0), np.arange(23.0))
    assert table["customers"].tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert table["customers"].sum() == 23
    small = decile_calibration([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert small["customers"].tolist() == [1, 1, 1] + [0] * 7
    assert small["mean_actual"].iloc[:3].tolist() == [1.0, 2.0, 3.0]
    assert small["mean_actual"].iloc[3:].isna().all()


def test_decile_mape_skips_zero_actual_deciles() -> None:
    y = np.concatenate([np.full(10, 10.0), np.zeros(90)])
    pred = np.concatenate([np.full(10, 12.0), np.linspace(1.0, 0.1, 90)])
    # Only decile 1 has a non-zero mean actual: |12 - 10| / 10.
    assert decile_mape(y, pred) == pytest.approx(0.2)
    assert np.isnan(decile_mape(np.zeros(30), np.arange(30.0)))


def test_decile_metrics_with_ties_use_expected_actuals() -> None:
    # All predictions tied: every decile's mean actual equals the overall mean.
    y = np.arange(50.0)
    table = decile_calibration(y, np.zeros(50))
    np.testing.assert_allclose(table["mean_actual"], y.mean())
    assert top_decile_capture(y, np.zeros(50)) == pytest.approx(0.1)
    # A tie block straddling the decile 1 boundary.
    y2 = np.array([10.0, 0.0, 4.0, 2.0] + [0.0] * 16)
    p2 = np.array([5.0, 3.0, 3.0, 3.0] + [1.0] * 16)
    # Decile 1 = customer 0 plus one of the three tied at 3 (mean actual 2).
    assert decile_calibration(y2, p2)["mean_actual"].iloc[0] == pytest.approx((10.0 + 2.0) / 2)
    assert top_decile_capture(y2, p2) == pytest.approx(12.0 / 16.0)


def test_top_decile_capture_hand_case() -> None:
    y = np.array([100.0] + [1.0] * 19)
    assert top_decile_capture(y, y) == pytest.approx(101.0 / 119.0)
    assert top_decile_capture(y, -y) == pytest.approx(2.0 / 119.0)
    assert np.isnan(top_decile_capture(np.zeros(5), np.arange(5.0)))


# ---------------------------------------------------------------------------------------------
# against scikit-learn
# ---------------------------------------------------------------------------------------------


def test_error_metrics_match_sklearn() -> None:
    assert mae(Y_TRUE, Y_PRED) == pytest.approx(mean_absolute_error(Y_TRUE, Y_PRED), rel=1e-12)
    assert rmse(Y_TRUE, Y_PRED) == pytest.approx(
        math.sqrt(mean_squared_error(Y_TRUE, Y_PRED)), rel=1e-12)


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(5)
    score = np.round(Y_PRED / 50.0) + rng.integers(0, 2, Y_PRED.size)  # many ties
    assert auc(Y_TRUE > 0, score) == pytest.approx(roc_auc_score(Y_TRUE > 0, score), rel=1e-12)
    assert auc(Y_TRUE, Y_PRED) == pytest.approx(roc_auc_score(Y_TRUE > 0, Y_PRED), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Brier score and interval coverage
# ---------------------------------------------------------------------------------------------


def test_brier_score_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    probability = np.clip(0.3 + 0.5 * (Y_TRUE > 0) + rng.normal(0.0, 0.2, Y_TRUE.size), 0, 1)
    assert brier_score(Y_TRUE, probability) == pytest.approx(
        brier_score_loss(Y_TRUE > 0, probability), rel=1e-12)
    assert brier_score(Y_TRUE > 0, probability) == brier_score(Y_TRUE, probability)


def test_brier_score_hand_cases() -> None:
    y = np.array([0.0, 3.0, 0.0, 1.0])
    assert brier_score(y, [0.0, 1.0, 0.0, 1.0]) == 0.0
    assert brier_score(y, [1.0, 0.0, 1.0, 0.0]) == 1.0
    # (0.1^2 + 0.2^2 + 0.3^2 + 0.6^2) / 4
    assert brier_score(y, [0.1, 0.8, 0.3, 0.4]) == pytest.approx(0.125)
    assert brier_score(y, np.full(4, 0.5)) == pytest.approx(0.25)  # base rate r: r (1 - r)
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        brier_score(y, [0.1, 1.2, 0.3, 0.4])


def test_interval_coverage_counts_closed_intervals() -> None:
    y = np.array([0.0, 5.0, 10.0, 12.0, 3.0])
    lower = np.array([0.0, 5.0, 1.0, 0.0, 4.0])
    upper = np.array([0.0, 8.0, 10.0, 11.0, 9.0])
    # Inside: 0 in [0, 0], 5 in [5, 8], 10 in [1, 10]; outside: 12 > 11, 3 < 4.
    assert interval_coverage(y, lower, upper) == pytest.approx(3 / 5)
    rng = np.random.default_rng(3)
    lo = rng.random(500)
    hi = lo + rng.random(500)
    values = rng.random(500) * 2
    inside = sum(1 for v, a, b in zip(values, lo, hi, strict=True) if a <= v <= b)
    assert interval_coverage(values, lo, hi) == pytest.approx(inside / 500)
    with pytest.raises(ValueError, match="lower bound exceeds its upper bound"):
        interval_coverage(y, upper, lower)


def test_expected_calibration_error_matches_a_plain_recomputation() -> None:
    rng = np.random.default_rng(12)
    probability = rng.uniform(0.0, 1.0, 1003)
    bought = rng.uniform(size=1003) < probability ** 1.5
    # by hand: sort by probability, ten groups (the first three one customer larger)
    order = sorted(range(1003), key=lambda i: -probability[i])
    sizes = [101] * 3 + [100] * 7
    total, start = 0.0, 0
    for size in sizes:
        group = order[start:start + size]
        total += size / 1003 * abs(np.mean(probability[group]) - np.mean(bought[group]))
        start += size
    assert expected_calibration_error(bought, probability) == pytest.approx(total, rel=1e-12)
    # the observed rate as the probability: no error; certain and wrong: 1
    assert expected_calibration_error([1, 0, 1, 0], [0.5] * 4, bins=1) == 0.0
    assert expected_calibration_error([1, 1, 0, 0], [0.0, 0.0, 1.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([1, 0], [0.5, 1.5])


def test_expected_calibration_error_averages_ties_over_orderings() -> None:
    bought = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1, 1] * 3)
    tied = np.full(30, 0.5)
    assert expected_calibration_error(bought, tied) == pytest.approx(0.0)
    shuffled = np.random.default_rng(1).permutation(30)
    values = np.linspace(0, 1, 30).round(1)
    assert expected_calibration_error(bought, values) == pytest.approx(
        expected_calibration_error(bought[shuffled], values[shuffled]))


def test_quantile_exceedance_and_shortfall_hand_case() -> None:
    actual = np.array([0.0, 5.0, 12.0, 0.0, 30.0])
    p90 = np.array([0.0, 10.0, 10.0, 4.0, 20.0])
    assert quantile_exceedance(actual, p90) == pytest.approx(2 / 5)
    p10 = np.array([0.0, 6.0, 1.0, 0.0, 0.0])
    # among the two customers with p10 > 0 one falls below
    assert quantile_shortfall(actual, p10) == pytest.approx(1 / 2)
    assert np.isnan(quantile_shortfall(actual, np.zeros(5)))


def test_ziln_p10_p90_interval_coverage_matches_the_distribution() -> None:
    """Values drawn from each customer's ZILN: the observed coverage of the p10-p90 interval
    (clv.score quantiles) agrees with the exact probability from scipy's lognormal, which is
    0.8 or more (the closed interval holds the point mass at zero when p10 is 0)."""
    rng = np.random.default_rng(11)
    n = 20_000
    p = rng.uniform(0.05, 0.99, n)
    mu = rng.normal(3.0, 0.7, n)
    sigma = rng.uniform(0.3, 1.5, n)
    y = np.where(rng.random(n) < p, rng.lognormal(mu, sigma), 0.0)
    p10, p90 = (ziln_quantiles_numpy(p, mu, sigma, q) for q in (0.1, 0.9))
    cdf_hi = lognorm.cdf(np.maximum(p90, 1e-300), s=sigma, scale=np.exp(mu))
    cdf_lo = lognorm.cdf(np.maximum(p10, 1e-300), s=sigma, scale=np.exp(mu))
    upper_mass = np.where(p90 > 0, (1 - p) + p * cdf_hi, 1 - p)  # P(Y <= p90)
    below_lower = np.where(p10 > 0, (1 - p) + p * cdf_lo, 0.0)  # P(Y < p10), continuous part
    expected = float(np.mean(upper_mass - below_lower))
    assert expected >= 0.8 - 1e-9
    standard_error = math.sqrt(expected * (1 - expected) / n)
    assert abs(interval_coverage(y, p10, p90) - expected) < 4 * standard_error


# ---------------------------------------------------------------------------------------------
# gain curve
# ---------------------------------------------------------------------------------------------


def reference_gain_curve(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """Plain pandas and a loop, for predictions without ties."""
    frame = pd.DataFrame({"actual": y_true, "predicted": y_pred})
    by_prediction = frame.sort_values("predicted", ascending=False)["actual"].tolist()
    by_actual = sorted(y_true.tolist(), reverse=True)
    rows = []
    for x in range(1, 101):
        k = math.ceil(x * len(y_true) / 100)
        rows.append({"percent": x, "customers": k,
                     "captured_share": sum(by_prediction[:k]) / sum(by_actual),
                     "oracle_share": sum(by_actual[:k]) / sum(by_actual)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n", [7, 100, 2000])
def test_gain_curve_matches_a_plain_recomputation(n: int) -> None:
    y, pred = Y_TRUE[:n], Y_PRED[:n]
    assert np.unique(pred).size == n  # no ties here
    curve = gain_curve(y, pred)
    reference = reference_gain_curve(y, pred)
    assert list(curve.columns) == ["percent", "customers", "captured_share", "oracle_share"]
    assert curve["percent"].tolist() == list(range(1, 101))
    assert curve["customers"].tolist() == reference["customers"].tolist()
    np.testing.assert_allclose(curve["captured_share"], reference["captured_share"], rtol=1e-12)
    np.testing.assert_allclose(curve["oracle_share"], reference["oracle_share"], rtol=1e-12)


def test_gain_curve_ties_are_averaged_over_orderings() -> None:
    y = np.array([5.0, 0.0, 2.0, 0.0, 1.0, 4.0])
    pred = np.array([1.0, 1.0, 0.5, 2.0, 0.5, 1.0])
    n = y.size
    counts = [math.ceil(x * n / 100) for x in range(1, 101)]
    expected = np.zeros(100)
    orderings = list(itertools.permutations(range(n)))
    for perm in orderings:
        index = np.array(perm)
        ranked = y[index[np.argsort(-pred[index], kind="stable")]]
        expected += np.array([ranked[:k].sum() for k in counts]) / y.sum()
    expected /= len(orderings)
    np.testing.assert_allclose(gain_curve(y, pred)["captured_share"], expected, rtol=1e-12)
    # A constant prediction captures, in expectation, the customers' share of the total.
    flat = gain_curve(y, np.zeros(n))
    np.testing.assert_allclose(flat["captured_share"], flat["customers"] / n, rtol=1e-12)


def test_gain_curve_shape_and_relations() -> None:
    curve = gain_curve(Y_TRUE, Y_PRED)
    captured, oracle = curve["captured_share"].to_numpy(), curve["oracle_share"].to_numpy()
    assert np.all(np.diff(captured) >= 0) and np.all(np.diff(oracle) >= 0)
    assert captured[-1] == 1.0 and oracle[-1] == 1.0
    assert np.all(captured <= oracle + 1e-12)
    assert captured[9] == pytest.approx(top_decile_capture(Y_TRUE, Y_PRED), rel=1e-12)
    assert gain_curve(np.arange(23.0), -np.arange(23.0))["captured_share"][9] == pytest.approx(
        top_decile_capture(np.arange(23.0), -np.arange(23.0)))
    perfect = gain_curve(Y_TRUE, Y_TRUE)
    np.testing.assert_allclose(perfect["captured_share"], perfect["oracle_share"], rtol=1e-12)
    # With 100 customers each percent is one customer: the curve's area is the Gini.
    y, pred = Y_TRUE[:100], Y_PRED[:100]
    hundred = gain_curve(y, pred)
    area = hundred["captured_share"].mean() - 101 / 200
    ideal = hundred["oracle_share"].mean() - 101 / 200
    assert area / ideal == pytest.approx(normalized_gini(y, pred), rel=1e-9)


def test_gain_curve_small_and_degenerate_inputs() -> None:
    curve = gain_curve([3.0, 1.0, 0.0], [1.0, 2.0, 3.0])
    # ceil(3 x / 100): one customer up to 33 %, two up to 66 %, then all three.
    assert curve["customers"].tolist() == [1] * 33 + [2] * 33 + [3] * 34
    assert curve["captured_share"].iloc[0] == 0.0 and curve["captured_share"].iloc[40] == 0.25
    assert curve["oracle_share"].iloc[0] == 0.75
    zero = gain_curve(np.zeros(5), np.arange(5.0))
    assert zero["captured_share"].isna().all() and zero["oracle_share"].isna().all()


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def test_evaluate_returns_all_metrics() -> None:
    result = evaluate(Y_TRUE, Y_PRED)
    assert set(result) == {
        "normalized_gini",
        "spearman",
        "aggregate_error",
        "decile_mape",
        "top_decile_capture",
        "mae",
        "rmse",
        "auc",
    }
    assert all(isinstance(v, float) for v in result.values())
    # each key is its own metric (each checked against an independent computation above)
    for name, metric in (("normalized_gini", normalized_gini), ("spearman", spearman),
                         ("aggregate_error", aggregate_error), ("decile_mape", decile_mape),
                         ("top_decile_capture", top_decile_capture), ("mae", mae),
                         ("rmse", rmse)):
        assert result[name] == pytest.approx(metric(Y_TRUE, Y_PRED)), name
    assert result["auc"] == pytest.approx(auc(Y_TRUE > 0, Y_PRED))
    prob = np.clip(Y_TRUE / (Y_TRUE.max() + 1.0) + 0.1 * RNG.random(Y_TRUE.size), 0, 1)
    with_prob = evaluate(Y_TRUE, Y_PRED, purchase_probability=prob)
    assert with_prob["auc"] == pytest.approx(auc(Y_TRUE > 0, prob))
    assert with_prob["rmse"] == result["rmse"]


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="length mismatch: 2 actual values, 1 predictions"):
        mae([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="metrics need at least one customer"):
        rmse([], [])
    with pytest.raises(ValueError, match="inputs contain non-finite values"):
        normalized_gini([1.0, np.nan], [1.0, 2.0])


def test_normalized_gini_is_nan_when_every_actual_is_equal():
    """0.7 five times sums with rounding: the ideal curve's area is then about 1e-16, not 0,
    and dividing by it gave 1.0 for any order."""
    for order in ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [1, 1, 1, 1, 1]):
        assert np.isnan(normalized_gini([0.7] * 5, order))
    assert np.isnan(normalized_gini([0.0] * 4, [1, 2, 3, 4]))


def test_gini_difference_se_is_the_bootstrap_spread_of_the_paired_difference() -> None:
    """The Poisson bootstrap's weighted Gini is the Gini of the sample that holds each customer
    as many times as its weight (ties averaged as normalized_gini does); its spread over the
    resamples agrees with a plain bootstrap's, grows as the customers get fewer, and is 0 for
    two predictors that rank alike."""
    from clv.metrics import _tie_blocks, _weighted_gini

    rng = np.random.default_rng(11)
    n = 600
    actual = np.where(rng.random(n) < 0.5, 0.0, rng.gamma(1.0, 50.0, n))
    first = np.round(actual * rng.uniform(0.5, 1.5, n) + rng.gamma(1.0, 20.0, n))
    second = np.round(rng.gamma(1.0, 20.0, n) + 0.3 * actual)
    weights = rng.poisson(1.0, n).astype(float)
    copies = np.repeat(np.arange(n), weights.astype(int))
    order, ideal = np.argsort(-first, kind="stable"), np.argsort(-actual, kind="stable")
    weighted = (_weighted_gini(actual[order], _tie_blocks(first[order]), weights[order])
                / _weighted_gini(actual[ideal], _tie_blocks(actual[ideal]), weights[ideal]))
    assert weighted == pytest.approx(normalized_gini(actual[copies], first[copies]), abs=1e-12)
    plain = []
    for _ in range(400):
        rows = rng.integers(0, n, n)
        plain.append(normalized_gini(actual[rows], first[rows])
                     - normalized_gini(actual[rows], second[rows]))
    se = gini_difference_se(actual, first, second, resamples=400)
    assert se == pytest.approx(np.std(plain, ddof=1), rel=0.2)
    assert gini_difference_se(actual[:150], first[:150], second[:150], resamples=400) > se
    assert gini_difference_se(actual, first, 2.0 * first + 1.0) == 0.0
    # a sample of the customers stands for them all: the spread scaled to their number
    sampled = gini_difference_se(actual, first, second, resamples=400, max_rows=300)
    assert sampled == pytest.approx(se, rel=0.3)
