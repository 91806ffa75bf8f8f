"""Baseline predictions of future customer spend, computed from per-customer features at a cutoff.

* :func:`btyd_expected_spend`: BG/NBD expected purchases times Gamma-Gamma expected order value.
* :func:`naive_last_period`: spend in the last horizon-length period repeats.
* :func:`naive_average_rate`: historical spend per day since the first purchase, over the horizon.

Feature conventions (BTYD summary in days, one purchase "occasion" per distinct purchase day):
``frequency`` = distinct purchase days - 1, ``recency_days`` = days from the first to the last
purchase day, ``t_days`` = days from the first purchase to the cutoff, ``monetary_value`` = mean
daily spend over the repeat purchase days. All arrays have shape ``(n,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from clv.btyd import (
    BGNBDParams,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_probability_alive,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
)

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

DAYS_PER_WEEK = 7.0


@dataclass(frozen=True)
class BTYDPrediction:
    """BG/NBD + Gamma-Gamma predictions over a horizon; every array has shape ``(n,)``.

    Attributes:
        expected_purchases: expected number of purchase days in the horizon.
        probability_alive: probability that the customer is still active at the cutoff.
        expected_order_value: expected spend per purchase day.
        expected_spend: ``expected_purchases * expected_order_value``.
        bgnbd: BG/NBD parameters with ``alpha`` in days.
        gamma_gamma: Gamma-Gamma parameters.
    """

    expected_purchases: FloatArray
    probability_alive: FloatArray
    expected_order_value: FloatArray
    expected_spend: FloatArray
    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams

    def to_frame(self) -> pd.DataFrame:
        """The per-customer arrays as a DataFrame with one row per customer."""
        return pd.DataFrame(
            {
                "expected_purchases": self.expected_purchases,
                "probability_alive": self.probability_alive,
                "expected_order_value": self.expected_order_value,
                "expected_spend": self.expected_spend,
            }
        )


def _column(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def fit_bgnbd_days(frequency: ArrayLike, recency_days: ArrayLike,
                   t_days: ArrayLike) -> BGNBDParams:
    """BG/NBD fitted in weeks (where its optimiser is well conditioned), ``alpha`` returned in
    days."""
    x = _column("frequency", frequency)
    fitted = fit_bgnbd(x, _column("recency_days", recency_days) / DAYS_PER_WEEK,
                       _column("t_days", t_days) / DAYS_PER_WEEK)
    return fitted.rescale_time(DAYS_PER_WEEK)


def repeat_buyers_order_value(frequency: ArrayLike, monetary_value: ArrayLike) -> float:
    """Mean ``monetary_value`` of the repeat buyers (``frequency > 0`` and ``monetary_value >
    0``), 0 without any: a one-time buyer's order value when Gamma-Gamma's population mean
    ``p v / (q - 1)`` does not exist (``q <= 1``)."""
    x = _column("frequency", frequency)
    money = _column("monetary_value", monetary_value)
    repeat = (x > 0) & (money > 0)
    return float(money[repeat].mean()) if np.any(repeat) else 0.0


def btyd_expected_spend(
    frequency: ArrayLike,
    recency_days: ArrayLike,
    t_days: ArrayLike,
    monetary_value: ArrayLike,
    horizon_days: float,
    bgnbd: BGNBDParams | None = None,
    gamma_gamma: GammaGammaParams | None = None,
    repeat_order_value: float | None = None,
) -> BTYDPrediction:
    """Expected spend over the next ``horizon_days`` from the BG/NBD and Gamma-Gamma models.

    Args:
        frequency, recency_days, t_days, monetary_value: BTYD summary at the cutoff, shape ``(n,)``.
        horizon_days: length of the prediction window in days.
        bgnbd: BG/NBD parameters with ``alpha`` in days; fitted on these customers (in weeks, then
            converted) when omitted.
        gamma_gamma: Gamma-Gamma parameters; fitted on the customers with ``frequency > 0`` and
            ``monetary_value > 0`` when omitted.
        repeat_order_value: the order value of customers without repeat purchases when
            Gamma-Gamma has no population mean (saved with the fit); computed from these
            customers (:func:`repeat_buyers_order_value`) when omitted.

    Customers without repeat purchases get the population mean order value ``p v / (q - 1)``. If
    that mean does not exist (``q <= 1``) ``repeat_order_value`` is used instead. Non-positive
    monetary values of repeat customers are treated as 0, so their order value is shrunk towards
    0 rather than becoming negative.
    """
    x = _column("frequency", frequency)
    recency = _column("recency_days", recency_days)
    age = _column("t_days", t_days)
    money = _column("monetary_value", monetary_value)
    if not (x.shape == recency.shape == age.shape == money.shape):
        raise ValueError("feature arrays must have the same length")
    if not horizon_days >= 0:
        raise ValueError("horizon_days must be non-negative")

    if bgnbd is None:
        bgnbd = fit_bgnbd_days(x, recency, age)
    if gamma_gamma is None:
        gamma_gamma = fit_gamma_gamma(x, money)

    purchases = bgnbd_expected_purchases(bgnbd, float(horizon_days), x, recency, age)
    alive = bgnbd_probability_alive(bgnbd, x, recency, age)
    order_value = gamma_gamma_expected_spend(gamma_gamma, x, np.maximum(money, 0.0))
    missing = ~np.isfinite(order_value)
    if np.any(missing):
        if repeat_order_value is None:
            repeat_order_value = repeat_buyers_order_value(x, money)
        order_value = np.where(missing, repeat_order_value, order_value)
    order_value = np.maximum(order_value, 0.0)
    return BTYDPrediction(
        expected_purchases=purchases,
        probability_alive=alive,
        expected_order_value=order_value,
        expected_spend=purchases * order_value,
        bgnbd=bgnbd,
        gamma_gamma=gamma_gamma,
    )


def naive_last_period(revenue_last_horizon: ArrayLike) -> FloatArray:
    """Spend of the last horizon-length period before the cutoff, repeated; floored at 0.

    Shape ``(n,)`` in, shape ``(n,)`` out.
    """
    return np.maximum(_column("revenue_last_horizon", revenue_last_horizon), 0.0)


def naive_average_rate(
    revenue_total: ArrayLike, t_days: ArrayLike, horizon_days: float
) -> FloatArray:
    """Historical net spend per day since the first purchase, scaled to the horizon.

    ``max(revenue_total / max(t_days, 1) * horizon_days, 0)``, shape ``(n,)``.
    """
    revenue = _column("revenue_total", revenue_total)
    age = _column("t_days", t_days)
    if revenue.shape != age.shape:
        raise ValueError("revenue_total and t_days must have the same length")
    if not horizon_days >= 0:
        raise ValueError("horizon_days must be non-negative")
    return np.maximum(revenue / np.maximum(age, 1.0) * float(horizon_days), 0.0)
