"""Evaluation metrics for customer-level value predictions.

All functions take one-dimensional arrays of equal length ``n``: ``y_true`` (realised value,
normally non-negative) and ``y_pred`` (predicted value). They are pure and do not depend on the
order of the rows.

Ties in the predictions: the ranking metrics (normalized Gini, decile metrics, top-decile capture)
treat customers with equal predictions as exchangeable. The actual values inside every block of
tied predictions are replaced by the block mean before the customers are grouped, which equals the
expectation of the metric over all orderings of the tied customers. In particular a constant
prediction has a normalized Gini of 0, and results never depend on the input row order.

Deciles: customers are sorted by decreasing prediction and cut into 10 consecutive groups whose
sizes differ by at most one (the first ``n % 10`` groups get one extra customer); decile 1 holds the
highest predictions.
"""

from __future__ import annotations

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
    true_by_pred, _ = _sorted_by_prediction(t, p)
    ideal = _gini_sorted(np.sort(t)[::-1])
    if not np.isfinite(ideal) or ideal == 0:
        return float("nan")
    return _gini_sorted(true_by_pred) / ideal


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
