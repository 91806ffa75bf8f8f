"""True expected net spend per customer over a future horizon, from the latent truth.

:func:`oracle` integrates each living customer's purchase rate, the seasonality and the
survival probability over the horizon; it never looks at realised purchases.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clv.synthetic.settings import (
    HOURS_PER_DAY,
    GeneratedData,
    GeneratorSettings,
    _period_days_array,
    daily_seasonality,
    hour_profile,
)

ORACLE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "expected_spend",
    "expected_orders",
    "is_alive_at_as_of",
)


def _as_date(value: date | str | pd.Timestamp) -> date:
    """A calendar date from a date, an ISO string or a timestamp."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _intraday_discount(dropout_rate: NDArray[np.float64], settings: GeneratorSettings) -> NDArray:
    """Integral over one day of hour factor x survival exp(-mu x), x in days (1 when mu = 0)."""
    hours = hour_profile(settings)
    per_hour = -np.expm1(-dropout_rate / HOURS_PER_DAY) / dropout_rate
    total = np.zeros_like(dropout_rate)
    for hour, factor in enumerate(hours):
        total += factor * np.exp(-dropout_rate * hour / HOURS_PER_DAY)
    return total * per_hour


def _discounted_seasonality(
    seasonality: NDArray[np.float64], dropout_rate: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Sum over days k of seasonality[k] * exp(-mu k), per customer (Horner's scheme)."""
    decay = np.exp(-dropout_rate)
    total = np.zeros_like(dropout_rate)
    for value in seasonality[::-1]:
        total = total * decay + value
    return total


def oracle(
    data: GeneratedData | pd.DataFrame,
    as_of_date: date | str,
    horizon_days: int,
    settings: GeneratorSettings | None = None,
) -> pd.DataFrame:
    """True expected net spend per customer in the days (as_of_date, as_of_date + horizon_days].

    ``data`` is a :class:`GeneratedData` or its latent frame; with a bare latent frame the
    seasonality comes from ``settings`` (default settings when omitted). The state at as-of is
    taken at the end of the as-of day. Only customers acquired on or before that day are listed.

    The oracle knows whether each customer is alive at as-of (dead customers get 0) and, for
    living ones, integrates purchase rate x seasonality x survival exp(-mu t) over the window;
    it never looks at realised purchases. Net spend is the expected order value minus the
    expected refunds of those orders (refunds are attributed to their order, even when the
    refund would be dated after the window).
    """
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    if isinstance(data, GeneratedData):
        latent, settings = data.latent, settings or data.settings
    else:
        latent, settings = data, settings or GeneratorSettings()
    cutoff_day = _as_date(as_of_date) + timedelta(days=1)
    cutoff = np.datetime64(cutoff_day, "s")
    latent = latent.loc[latent["acquired_at"].to_numpy() < cutoff]
    alive = latent["death_at"].to_numpy() > cutoff
    dropout = latent["dropout_rate_per_day"].to_numpy(dtype=np.float64)
    seasonality = daily_seasonality(_period_days_array(cutoff_day, horizon_days), settings)
    expected_orders = np.where(
        alive,
        latent["purchase_rate_per_day"].to_numpy(dtype=np.float64)
        * _discounted_seasonality(seasonality, dropout)
        * _intraday_discount(dropout, settings),
        0.0,
    )
    frame = latent[["customer_id"]].reset_index(drop=True)
    net_value = latent["mean_net_order_value"].to_numpy(dtype=np.float64)
    frame["expected_spend"] = expected_orders * net_value
    frame["expected_orders"] = expected_orders
    frame["is_alive_at_as_of"] = alive
    return frame
