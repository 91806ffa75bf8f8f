"""How close scores computed in SQL (clv.sql_scoring) must be to onnxruntime's.

The SQL computes the graph's math in float64 (tests/test_sql_scoring.py checks it against a
float64 evaluation of the graph, within 1e-7) and onnxruntime in float32, whose rounding
accumulates over the network's layers: the two agree within 1e-5 relative, except for

- customers unlikely to buy (purchase probability near 0.01), where onnxruntime's logits are
  off by up to about 1e-5, and so their probability and amounts by a few 1e-5 relative: there
  the bounds are 1e-7 for the probability and 1e-4 currency units (a hundredth of a cent) for
  amounts, which matters only for amounts below about 10 units;
- a ZILN quantile close to its zero threshold (q = 1 - purchase probability), where the
  quantile rises steeply from 0 and onnxruntime's rounding of the probability moves it further.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri
from scipy.stats import norm

from clv.score import DEFAULT_QUANTILES, quantile_column

RTOL = 1e-5
AMOUNT_ATOL = 1e-4  # currency units
PROBABILITY_ATOL = 1e-7
AMOUNTS = ("network_clv", "predicted_clv", "btyd_expected_spend")
# onnxruntime's float32 purchase probability: relative rounding error at most
P_ERROR = 4e-6


def relative(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    error = np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)
    return np.where((got == 0) & (expected == 0), 0.0, error)


def quantile_allowance(p: np.ndarray, q: float, p_error: float) -> np.ndarray:
    """How far a ZILN q-quantile moves, relatively, when p moves by ``p_error * p``: its
    sensitivity ``sigma (1 - q) / (p^2 phi(z))`` (sigma bounded by 3) is large near the
    threshold q = 1 - p, where the quantile rises from 0."""
    level = np.clip(np.where(q > 1 - p, (q - 1 + p) / p, 0.5), 1e-300, 1.0)
    return 3.0 * (1 - q) / (p**2 * norm.pdf(ndtri(level))) * p_error * p


def assert_scores_match(got: pd.DataFrame, expected: pd.DataFrame, name: str,
                        columns: tuple[str, ...] = ("purchase_probability", "network_clv",
                                                    "predicted_clv", "btyd_expected_spend"),
                        ) -> dict[str, float]:
    """``got`` (SQL) equals ``expected`` (onnxruntime) per customer_id within 1e-5 relative
    (or 1e-7 for probabilities, 1e-4 currency units for amounts); quantiles near their zero
    threshold within what the float32 probability explains, and within 1e-5 (or 1e-4 units)
    wherever that explains less than a tenth of it. Returns the largest relative difference
    per column."""
    got = got.set_index("customer_id").sort_index()
    expected = expected.set_index("customer_id").sort_index()
    assert list(got.index) == list(expected.index), f"{name}: customers differ"
    assert (got["model_version"] == expected["model_version"]).all(), name
    worst = {}
    for column in columns:
        if column not in expected:
            continue
        a, b = got[column].to_numpy(float), expected[column].to_numpy(float)
        error = relative(a, b)
        worst[column] = float(error.max())
        atol = AMOUNT_ATOL if column in AMOUNTS else PROBABILITY_ATOL
        outside = np.abs(a - b) > RTOL * np.abs(b) + atol
        assert not outside.any(), (f"{name} {column}: {outside.sum()} rows, worst "
                                   f"{error[outside].max():.2e} relative")
    p = expected["purchase_probability"].to_numpy(float)
    if "predicted_clv_variance" in expected:
        worst["predicted_clv_variance"] = _assert_variances_match(got, expected, name)
    for q in DEFAULT_QUANTILES:
        column = quantile_column(q, "predicted_clv")
        a, b = got[column].to_numpy(float), expected[column].to_numpy(float)
        error = relative(a, b)
        near_threshold = np.abs(p - (1 - q)) < 1e-6
        small = np.abs(a - b) <= AMOUNT_ATOL
        assert ((error <= RTOL + quantile_allowance(p, q, P_ERROR)) | near_threshold
                | small).all(), f"{name} {column}"
        assert ((a > 0) == (b > 0))[~near_threshold].all(), f"{name} {column} zeros"
        # where float32's rounding of p cannot move the quantile by a tenth of RTOL (a normal
        # level above 0.01 is not always enough: at 0.011 a quantile moves 34 sigma times p's
        # relative error)
        well_conditioned = quantile_allowance(p, q, P_ERROR) <= 0.1 * RTOL
        worst[column] = float(error.max())
        worst[f"{column} (well conditioned)"] = float(error[well_conditioned].max(initial=0.0))
        assert ((error < RTOL) | small)[well_conditioned].all(), f"{name} {column}"
    return worst


def _assert_variances_match(got: pd.DataFrame, expected: pd.DataFrame, name: str) -> float:
    """The spend's variance, m^2 (exp(sigma^2) / p - 1), from the expected value m and the
    probability p as matched above: twice m's relative difference, plus p's relative rounding
    (P_ERROR, or the 1e-7 absolute bound of an unlikely buyer) times exp(sigma^2) / p over the
    bracket, which is large where p is close to 1 and sigma small. Returns the largest relative
    difference."""
    a = got["predicted_clv_variance"].to_numpy(float)
    b = expected["predicted_clv_variance"].to_numpy(float)
    m = np.abs(expected["predicted_clv"].to_numpy(float))
    p = expected["purchase_probability"].to_numpy(float)
    bracket = b / np.maximum(m * m, 1e-300)  # exp(sigma^2) / p - 1
    p_relative = np.maximum(P_ERROR, PROBABILITY_ATOL / np.maximum(p, 1e-300))
    allowed = (2 * (RTOL + AMOUNT_ATOL / np.maximum(m, 1e-300))
               + p_relative * (1 + bracket) / np.maximum(bracket, 1e-300))
    error = relative(a, b)
    small = np.sqrt(np.abs(a - b)) <= AMOUNT_ATOL
    outside = ~((error <= allowed) | small)
    assert not outside.any(), (f"{name} predicted_clv_variance: {outside.sum()} rows, worst "
                               f"{error[outside].max():.2e} relative")
    return float(error.max())
