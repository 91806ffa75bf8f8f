"""Plain-Python reference for the feature SQL, written from the definitions, not from the SQL.

Each feature function takes usable transactions as (customer_id, date, amount) tuples;
:func:`segment_total_range` is clv_segment_summary's range of a segment's total.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, timedelta
from itertools import pairwise

WINDOWS = (7, 30, 90, 180, 365)


def _days(transactions, customer_id, cutoff):
    """Per-day orders, gross, refund and net amounts of one customer on or before the cutoff."""
    days: dict[date, dict[str, float]] = defaultdict(
        lambda: {"orders": 0, "gross": 0.0, "refund": 0.0, "net": 0.0}
    )
    for customer, day, amount in transactions:
        if customer != customer_id or day > cutoff:
            continue
        entry = days[day]
        entry["net"] += amount
        if amount > 0:
            entry["orders"] += 1
            entry["gross"] += amount
        elif amount < 0:
            entry["refund"] -= amount
    return dict(sorted(days.items()))


def customer_features(transactions, customer_id, cutoff: date,
                      horizon_days: int | None = None) -> dict[str, float] | None:
    """The features of one customer at one cutoff, or None when the customer is unknown then."""
    days = _days(transactions, customer_id, cutoff)
    if not days:
        return None
    purchase_days = [day for day, entry in days.items() if entry["orders"] > 0]
    first_activity = min(days)
    first_purchase = purchase_days[0] if purchase_days else None
    gaps = [(b - a).days for a, b in pairwise(purchase_days)]
    features = {
        "frequency": max(len(purchase_days) - 1, 0),
        "recency_days": (purchase_days[-1] - purchase_days[0]).days if purchase_days else 0,
        "t_days": (cutoff - (first_purchase or first_activity)).days,
        "monetary_value": (
            sum(days[day]["gross"] for day in purchase_days[1:]) / (len(purchase_days) - 1)
            if len(purchase_days) > 1
            else 0.0
        ),
        "orders_total": sum(entry["orders"] for entry in days.values()),
        "revenue_total": sum(entry["net"] for entry in days.values()),
        "refund_amount_total": sum(entry["refund"] for entry in days.values()),
        "first_order_value": days[purchase_days[0]]["gross"] if purchase_days else 0.0,
        "last_order_value": days[purchase_days[-1]]["gross"] if purchase_days else 0.0,
        "days_since_last_purchase": (
            (cutoff - purchase_days[-1]).days if purchase_days else (cutoff - first_activity).days
        ),
        "interpurchase_days_mean": statistics.fmean(gaps) if gaps else 0.0,
        "interpurchase_days_stddev": statistics.stdev(gaps) if len(gaps) > 1 else 0.0,
        "interpurchase_days_max": max(gaps) if gaps else 0,
    }
    for window in WINDOWS:
        weights = {day: window_weight((cutoff - day).days, window) for day in days}
        features[f"orders_last_{window}d"] = sum(
            weights[day] * entry["orders"] for day, entry in days.items())
        features[f"revenue_last_{window}d"] = sum(
            weights[day] * entry["net"] for day, entry in days.items())
        features[f"active_days_last_{window}d"] = sum(
            weights[day] for day, entry in days.items() if entry["orders"] > 0)
    if horizon_days is not None:
        features["revenue_last_horizon"] = sum(
            entry["net"] for day, entry in days.items() if (cutoff - day).days < horizon_days
        )
    return features


def customer_sequence(transactions, customer_id, cutoff: date, period_days: int,
                      periods: int) -> dict[str, float]:
    """seq_<channel>_lag_<NN> columns: lag 1 is the period ending on the cutoff day."""
    sequence = {
        f"seq_{channel}_lag_{lag:02d}": 0.0
        for channel in ("orders", "revenue", "active_days")
        for lag in range(1, periods + 1)
    }
    for day, entry in _days(transactions, customer_id, cutoff).items():
        lag = (cutoff - day).days // period_days + 1
        if lag > periods:
            continue
        sequence[f"seq_orders_lag_{lag:02d}"] += entry["orders"]
        sequence[f"seq_revenue_lag_{lag:02d}"] += entry["net"]
        sequence[f"seq_active_days_lag_{lag:02d}"] += 1 if entry["orders"] > 0 else 0
    return sequence


def window_weight(days_before: int, window: int, fade: float = 0.1) -> float:
    """A day's weight in a trailing window of ``window`` days that fades out: 1 up to
    (1 - fade) windows back, 0 from (1 + fade) windows back, linear between, taken at the
    day's midpoint."""
    age = (days_before + 0.5) / window
    return min(1.0, max(0.0, (1.0 + fade - age) / (2.0 * fade)))


def customer_label(transactions, customer_id, cutoff: date, horizon_days: int) -> float:
    """Net spend in (cutoff, cutoff + horizon], floored at 0 (summed exactly: purchases and
    refunds that cancel give 0)."""
    end = cutoff + timedelta(days=horizon_days)
    total = math.fsum(
        amount for customer, day, amount in transactions
        if customer == customer_id and cutoff < day <= end
    )
    return max(total, 0.0)


Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def segment_total_range(values, variances, probabilities, level_log_sd: float | None,
                        decile_biases=None) -> tuple[float, float]:
    """(p10, p90) of a segment's total: a lognormal with the total's expected value and the
    log-scale variance log(1 + sum of variances / total^2) + level_log_sd^2 + the
    value-weighted mean of the customers' squared decile biases (``decile_biases``, log
    ratios; none: 0); p10 (p90) is 0 when the chance that nobody buys is at least 10% (90%)."""
    total = float(sum(values))
    if total <= 0:
        return 0.0, 0.0
    biases = [0.0] * len(values) if decile_biases is None else list(decile_biases)
    allocation = sum(v * b * b for v, b in zip(values, biases, strict=True)) / total
    log_variance = (math.log1p(float(sum(variances)) / total**2) + (level_log_sd or 0.0) ** 2
                    + allocation)
    spread = math.sqrt(log_variance)
    none_buys = math.exp(max(sum(math.log(max(1.0 - p, 1e-300)) for p in probabilities),
                             -700.0))
    p10 = 0.0 if none_buys >= 0.1 else total * math.exp(-log_variance / 2 - Z90 * spread)
    p90 = 0.0 if none_buys >= 0.9 else total * math.exp(-log_variance / 2 + Z90 * spread)
    return p10, p90
