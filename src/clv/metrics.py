"""Evaluation metrics for customer-level value predictions.

All functions take one-dimensional arrays of equal length ``n``: ``y_true`` (realised value,
normally non-negative) and ``y_pred`` (predicted value). They are pure and do not depend on the
order of the rows.

Ties in the predictions: the ranking metrics (normalized Gini, decile metrics, top-decile capture)
treat customers with equal predictions as exchangeable. The actual values inside every block of
tied predictions are replaced by the block mean before the customers are grouped. For the metrics
linear in the actual values (normalized Gini, top-decile capture, the gain curve) this equals the
expectation of the metric over all orderings of the tied customers; for decile MAPE and the
calibration error it is one order-independent choice, not that expectation. In particular a
constant prediction has a normalized Gini of 0, and results never depend on the input row order.

Deciles: customers are sorted by decreasing prediction and cut into 10 consecutive groups whose
sizes differ by at most one (the first ``n % 10`` groups get one extra customer); decile 1 holds the
highest predictions.

Gain curve: the top ``x`` percent are the first ``ceil(x n / 100)`` customers by decreasing
prediction, so the curve at 10 % counts decile 1 and equals :func:`top_decile_capture`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import rankdata

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

N_DECILES = 10


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"length mismatch: {t.size} actual values, {p.size} predictions")
    if t.size == 0:
        raise ValueError("metrics need at least one customer")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("inputs contain non-finite values")
    return t, p


def _sorted_by_prediction(y_true: FloatArray, y_pred: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Actual and predicted values sorted by decreasing prediction, shapes ``(n,)``.

    Actual values are averaged within blocks of tied predictions (see the module docstring).
    """
    order = np.argsort(-y_pred, kind="stable")
    pred_sorted = y_pred[order]
    true_sorted = y_true[order]
    new_block = np.empty(pred_sorted.size, dtype=bool)
    new_block[0] = True
    new_block[1:] = pred_sorted[1:] != pred_sorted[:-1]
    if not np.all(new_block):
        block = np.cumsum(new_block) - 1
        sums = np.bincount(block, weights=true_sorted)
        counts = np.bincount(block)
        true_sorted = (sums / counts)[block]
    return true_sorted, pred_sorted


def _decile_bounds(n: int) -> FloatArray:
    """Start offsets of the 10 groups plus ``n``, shape ``(11,)``."""
    base, extra = divmod(n, N_DECILES)
    sizes = np.full(N_DECILES, base)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _gini_sorted(values: FloatArray) -> float:
    """Gini of the cumulative gain curve of ``values`` (shape ``(n,)``) taken in the given order.

    ``mean_k(cumulative share of the total after k customers) - (n + 1) / (2 n)``: the area between
    the gain curve and the diagonal, 0 for a random order.
    """
    n = values.size
    total = values.sum()
    if total == 0:
        return float("nan")
    cumulative_share = np.cumsum(values) / total
    return float(cumulative_share.mean() - (n + 1) / (2.0 * n))


def normalized_gini(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Gini of the gain curve ordered by prediction divided by that of the ideal ordering.

    1 for a perfect ranking, about 0 for a random (or constant) one, negative for an inverted one.
    nan when the actual values are all equal (the ideal curve has no area) or sum to zero.
    """
    t, p = _pair(y_true, y_pred)
    if t.size == 0 or np.ptp(t) == 0:  # equal actuals: the ideal area is rounding error only
        return float("nan")
    true_by_pred, _ = _sorted_by_prediction(t, p)
    ideal = _gini_sorted(np.sort(t)[::-1])
    if not np.isfinite(ideal) or ideal == 0:
        return float("nan")
    return _gini_sorted(true_by_pred) / ideal


def _tie_blocks(values: FloatArray) -> FloatArray:
    """Block ids of runs of equal ``values`` (already in order), shape ``(n,)``."""
    new_block = np.ones(values.size, dtype=bool)
    new_block[1:] = values[1:] != values[:-1]
    return np.cumsum(new_block) - 1


def _weighted_gini(true_sorted: FloatArray, blocks: FloatArray, weights: FloatArray) -> float:
    """:func:`_gini_sorted` of a sample holding ``weights[i]`` copies of customer ``i`` (in the
    given order), the actual values averaged within tie blocks over the copies."""
    copies = weights.sum()
    mean = (np.bincount(blocks, weights=weights * true_sorted)
            / np.maximum(np.bincount(blocks, weights=weights), 1e-300))[blocks]
    spent = weights * mean
    total = spent.sum()
    if copies == 0 or total == 0:
        return float("nan")
    before = np.cumsum(spent) - spent
    # the copies of one customer follow each other: their cumulative sums, added up
    area = np.sum(weights * before + mean * weights * (weights + 1.0) / 2.0)
    return float(area / (copies * total) - (copies + 1.0) / (2.0 * copies))


def gini_difference_se(y_true: ArrayLike, first: ArrayLike, second: ArrayLike,
                       resamples: int = 100, max_rows: int = 50_000, seed: int = 0) -> float:
    """Standard error of ``normalized_gini(y_true, first) - normalized_gini(y_true, second)``
    over the customers: how far the difference would move with another draw of them. A
    Poisson bootstrap (each resample weighs each customer by a Poisson(1) count, so the orders
    by prediction are sorted once; ties averaged within their blocks, as
    :func:`normalized_gini` does), paired (both predictors on the same resample), on a uniform
    sample of at most ``max_rows`` customers scaled to the whole by ``sqrt(sample / n)``. nan
    with fewer than two customers or two finite resamples."""
    t, a = _pair(y_true, first)
    _, b = _pair(y_true, second)
    rng = np.random.default_rng(seed)
    n = t.size
    if n > max_rows:
        rows = rng.choice(n, max_rows, replace=False)
        t, a, b = t[rows], a[rows], b[rows]
    if t.size < 2:
        return float("nan")
    orders = [np.argsort(-values, kind="stable") for values in (a, b, t)]
    ranked = [(t[order], _tie_blocks(values[order]), order)
              for order, values in zip(orders, (a, b, t), strict=True)]
    differences = []
    for _ in range(resamples):
        weights = rng.poisson(1.0, t.size).astype(np.float64)
        first_gini, second_gini, ideal = (_weighted_gini(true, blocks, weights[order])
                                          for true, blocks, order in ranked)
        if ideal > 1e-12:  # one distinct actual value: no ranking to measure (rounding error)
            differences.append((first_gini - second_gini) / ideal)
    finite_differences = np.asarray(differences)[np.isfinite(differences)]
    if finite_differences.size < 2:
        return float("nan")
    return float(np.std(finite_differences, ddof=1) * math.sqrt(t.size / n))


def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman rank correlation: Pearson correlation of average ranks.

    nan if either input is constant.
    """
    t, p = _pair(y_true, y_pred)
    rt, rp = rankdata(t), rankdata(p)
    rt -= rt.mean()
    rp -= rp.mean()
    denom = np.sqrt(np.sum(rt * rt) * np.sum(rp * rp))
    if denom == 0:
        return float("nan")
    return float(np.sum(rt * rp) / denom)


def aggregate_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Relative error of the total: ``sum(pred) / sum(true) - 1``; nan if ``sum(true) == 0``."""
    t, p = _pair(y_true, y_pred)
    total = t.sum()
    if total == 0:
        return float("nan")
    return float(p.sum() / total - 1.0)


def decile_calibration(y_true: ArrayLike, y_pred: ArrayLike) -> pd.DataFrame:
    """Mean prediction and mean actual value per prediction decile.

    Returns:
        DataFrame with 10 rows and columns ``decile`` (1 = highest predictions), ``customers``,
        ``mean_predicted`` and ``mean_actual``. With fewer than 10 customers the trailing deciles
        are empty and their means are nan.
    """
    t, p = _pair(y_true, y_pred)
    true_sorted, pred_sorted = _sorted_by_prediction(t, p)
    bounds = _decile_bounds(t.size)
    counts = np.diff(bounds)
    nonempty = counts > 0
    starts = bounds[:-1][nonempty]
    true_sums = np.full(N_DECILES, np.nan)
    pred_sums = np.full(N_DECILES, np.nan)
    true_sums[nonempty] = np.add.reduceat(true_sorted, starts)
    pred_sums[nonempty] = np.add.reduceat(pred_sorted, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_actual = true_sums / counts
        mean_predicted = pred_sums / counts
    return pd.DataFrame(
        {
            "decile": np.arange(1, N_DECILES + 1),
            "customers": counts.astype(np.int64),
            "mean_predicted": mean_predicted,
            "mean_actual": mean_actual,
        }
    )


def decile_mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean over prediction deciles of ``|mean predicted - mean actual| / mean actual``.

    Deciles whose mean actual value is 0 (or that are empty) have no defined relative error and
    are left out of the mean; nan if no decile remains.
    """
    table = decile_calibration(y_true, y_pred)
    actual = table["mean_actual"].to_numpy()
    predicted = table["mean_predicted"].to_numpy()
    usable = np.isfinite(actual) & (actual != 0)
    if not np.any(usable):
        return float("nan")
    return float(np.mean(np.abs(predicted[usable] - actual[usable]) / np.abs(actual[usable])))


def top_decile_capture(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of the actual total held by decile 1 (the ``ceil(n / 10)`` highest predictions).

    nan if the actual total is 0.
    """
    t, p = _pair(y_true, y_pred)
    total = t.sum()
    if total == 0:
        return float("nan")
    true_sorted, _ = _sorted_by_prediction(t, p)
    top = int(_decile_bounds(t.size)[1])
    return float(true_sorted[:top].sum() / total)


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def auc(y_binary: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve from the Mann-Whitney U statistic.

    ``P(score_pos > score_neg) + 0.5 P(score_pos == score_neg)`` over all positive/negative pairs,
    computed with average ranks in ``O(n log n)``. ``y_binary`` is read as ``y_binary > 0``
    (booleans work). nan if there are no positives or no negatives.
    """
    y, s = _pair(y_binary, score)
    positive = y > 0
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def brier_score(y_binary: ArrayLike, probability: ArrayLike) -> float:
    """Mean squared difference between a probability and the event it predicts.

    Args:
        y_binary: shape ``(n,)``, read as ``y_binary > 0`` (booleans work): the event happened.
        probability: shape ``(n,)``, the predicted probability of the event, in ``[0, 1]``.

    Returns:
        ``mean((probability - (y_binary > 0)) ** 2)``: 0 for certain and right, 1 for certain
        and wrong; a constant prediction of the base rate ``r`` scores ``r (1 - r)``.
    """
    y, p = _pair(y_binary, probability)
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probabilities must lie in [0, 1]")
    return float(np.mean((p - (y > 0)) ** 2))


def interval_coverage(y_true: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of customers whose actual value lies in the closed interval ``[lower, upper]``.

    Args:
        y_true: shape ``(n,)``, the actual values.
        lower, upper: shape ``(n,)``, each customer's interval bounds, ``lower <= upper``.

    Returns:
        A share in ``[0, 1]``. For the 10 % and 90 % quantiles of a continuous predictive
        distribution a calibrated model covers 0.8; with a point mass (the zero of a
        zero-inflated distribution) inside the closed interval, at least 0.8.
    """
    t, lo = _pair(y_true, lower)
    _, hi = _pair(y_true, upper)
    if np.any(lo > hi):
        raise ValueError("an interval's lower bound exceeds its upper bound")
    return float(np.mean((lo <= t) & (t <= hi)))


def expected_calibration_error(y_binary: ArrayLike, probability: ArrayLike,
                               bins: int = N_DECILES) -> float:
    """How far predicted probabilities are from observed rates, over probability deciles.

    Customers are sorted by probability and cut into ``bins`` groups whose sizes differ by at
    most one (as the prediction deciles); the error is
    ``sum over groups of (group size / n) * |mean probability - share with y_binary > 0|``.
    Customers with tied probabilities are exchangeable: their outcomes are averaged within the
    tie before the groups are cut, as in the ranking metrics, so the result does not depend on
    the row order.

    Args:
        y_binary: shape ``(n,)``, read as ``y_binary > 0``: the event happened.
        probability: shape ``(n,)``, its predicted probability, in ``[0, 1]``.

    Returns:
        0 when every group's mean probability equals its observed rate; at most 1.
    """
    y, p = _pair(y_binary, probability)
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probabilities must lie in [0, 1]")
    outcome_sorted, probability_sorted = _sorted_by_prediction((y > 0).astype(np.float64), p)
    bins = max(1, min(int(bins), y.size))
    sizes = np.full(bins, y.size // bins)
    sizes[: y.size % bins] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    gaps = np.abs(np.add.reduceat(probability_sorted, starts)
                  - np.add.reduceat(outcome_sorted, starts))
    return float(gaps.sum() / y.size)


def quantile_exceedance(y_true: ArrayLike, quantile: ArrayLike) -> float:
    """Share of customers whose actual value exceeds their predicted quantile.

    For a calibrated upper quantile q (such as p90) about ``1 - q`` of the customers; with a
    point mass at zero, a customer whose q-quantile is 0 exceeds it with the probability of any
    spend, below ``1 - q``, so the share is at most about ``1 - q``.
    """
    t, q = _pair(y_true, quantile)
    return float(np.mean(t > q))


def quantile_shortfall(y_true: ArrayLike, quantile: ArrayLike) -> float:
    """Share of customers whose actual value falls below their predicted quantile, among those
    whose quantile is above 0 (below a quantile of 0 nobody can fall); nan if there are none.
    For a calibrated lower quantile q (such as p10) about ``q``."""
    t, q = _pair(y_true, quantile)
    positive = q > 0
    if not np.any(positive):
        return float("nan")
    return float(np.mean(t[positive] < q[positive]))


def gain_curve(y_true: ArrayLike, y_pred: ArrayLike) -> pd.DataFrame:
    """Cumulative share of the actual total held by the top x % of customers, x = 1..100.

    Customers are ranked by decreasing prediction; the top ``x`` % are the first
    ``ceil(x n / 100)`` of them (at least one customer per row; with fewer than 100 customers
    neighbouring rows repeat a count). Ties are averaged as in the other ranking metrics: a
    block of tied predictions straddling the cut contributes its mean actual value per customer
    taken, the expectation over every order of the tied customers. The oracle ranks by the
    actual values themselves (a perfect prediction), so it bounds the curve from above.

    Returns:
        DataFrame with 100 rows and columns ``percent`` (1..100), ``customers`` (the number in
        the top ``percent`` %), ``captured_share`` (their share of the actual total, by
        prediction) and ``oracle_share`` (the largest share any ``customers`` customers hold).
        With non-negative actual values both shares are non-decreasing and end at 1; nan if
        the actual total is 0.
    """
    t, p = _pair(y_true, y_pred)
    percent = np.arange(1, 101)
    customers = -(-percent * t.size // 100)  # ceil in integers
    total = t.sum()
    if total == 0:
        captured = oracle = np.full(percent.size, np.nan)
    else:
        # Each curve over its own final sum: it ends at exactly 1 and never exceeds it.
        by_prediction = np.cumsum(_sorted_by_prediction(t, p)[0])
        by_actual = np.cumsum(np.sort(t)[::-1])
        captured = by_prediction[customers - 1] / by_prediction[-1]
        oracle = by_actual[customers - 1] / by_actual[-1]
    return pd.DataFrame({
        "percent": percent.astype(np.int64),
        "customers": customers.astype(np.int64),
        "captured_share": captured,
        "oracle_share": oracle,
    })


def evaluate(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    purchase_probability: ArrayLike | None = None,
) -> dict[str, float]:
    """All metrics in one dictionary.

    Keys: ``normalized_gini``, ``spearman``, ``aggregate_error``, ``decile_mape``,
    ``top_decile_capture``, ``mae``, ``rmse`` and ``auc``. ``auc`` measures how well
    ``purchase_probability`` separates customers with ``y_true > 0`` from the rest; when no
    probability is given, ``y_pred`` itself is used as the score.
    """
    t, p = _pair(y_true, y_pred)
    score = p if purchase_probability is None else purchase_probability
    return {
        "normalized_gini": normalized_gini(t, p),
        "spearman": spearman(t, p),
        "aggregate_error": aggregate_error(t, p),
        "decile_mape": decile_mape(t, p),
        "top_decile_capture": top_decile_capture(t, p),
        "mae": mae(t, p),
        "rmse": rmse(t, p),
        "auc": auc(t > 0, score),
    }
