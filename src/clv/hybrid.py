"""BG/NBD + Gamma-Gamma outputs as network inputs.

The BTYD models are fitted on the customers of one cutoff (in days) and their per-customer
outputs become static features, so the network starts from BG/NBD's calibrated expectation of
future purchases and learns where to depart from it. Fitting and predicting are separate steps:
:func:`fit` estimates the population parameters on the customers of one cutoff, and
:func:`predict` applies saved parameters to any rows, so scoring a subset of customers gives
the same values as scoring all of them. The fits per training cutoff are saved with the model;
the fit at the as-of date is saved with each scoring run.

A degenerate BG/NBD fit (typical at early cutoffs, whose history is too short to show dropout:
``a`` and ``b`` racing towards 0) is replaced by a regularized one (:func:`clv.btyd.
fit_bgnbd_checked`); the fit's ``status`` and ``reason`` say so in the metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clv.baselines import (
    DAYS_PER_WEEK,
    BTYDPrediction,
    btyd_expected_spend,
    repeat_buyers_order_value,
)
from clv.btyd import (
    MAXIMUM_LIKELIHOOD,
    BGNBDParams,
    GammaGammaParams,
    fit_bgnbd_checked,
    fit_gamma_gamma,
)

BTYD_INPUTS = ("frequency", "recency_days", "t_days", "monetary_value")
# What the errors for data without a repeat buyer add: an id of each order mapped as the
# customer (Olist's orders carry one beside the customer's own) makes every customer new.
ORDER_LEVEL_ID_HINT = ("clv_columns.customer_id may name an id of each order rather than of the "
                       "customer (as Olist's customer_id beside its customer_unique_id): map the "
                       "customer's own id")
# Each BTYD input is read within +-this bound (clv.sql_scoring reads them the same way).
BTYD_INPUT_BOUND = 1e100
BTYD_FEATURES = (
    "btyd_expected_purchases",
    "btyd_probability_alive",
    "btyd_expected_order_value",
    "btyd_expected_spend",
)


@dataclass(frozen=True)
class BTYDFit:
    """Fitted BG/NBD (alpha in days) and Gamma-Gamma parameters for one cutoff, how the
    BG/NBD fit was obtained (``status``: maximum_likelihood, regularized or fallback;
    ``reason``: why the maximum-likelihood fit was degenerate), and the repeat buyers' mean
    order value of the fitted customers (``repeat_order_value``: a one-time buyer's order value
    when Gamma-Gamma has no population mean; None in fits saved before it was kept, which then
    take the mean of the rows predicted)."""

    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams
    status: str = MAXIMUM_LIKELIHOOD
    reason: str | None = None
    repeat_order_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"bgnbd": asdict(self.bgnbd), "gamma_gamma": asdict(self.gamma_gamma),
                "status": self.status, "reason": self.reason,
                "repeat_order_value": self.repeat_order_value}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BTYDFit:
        def params(saved: dict[str, Any]) -> dict[str, Any]:  # JSON keeps an unknown as null
            return {key: float("nan") if value is None else value for key, value in saved.items()}

        return cls(BGNBDParams(**params(values["bgnbd"])),
                   GammaGammaParams(**params(values["gamma_gamma"])),
                   status=values.get("status") or MAXIMUM_LIKELIHOOD,
                   reason=values.get("reason"),
                   repeat_order_value=values.get("repeat_order_value"))


def _inputs(data: pa.Table | pa.RecordBatch) -> list[np.ndarray]:
    missing = [name for name in BTYD_INPUTS if name not in data.schema.names]
    if missing:
        raise ValueError(f"the examples lack the BTYD summary columns {missing}")
    # as the SQL scoring reads them: NaN as 0, within +-1e100 (a sum of 1e300 stays finite)
    return [
        np.clip(np.nan_to_num(data.column(name).to_numpy(zero_copy_only=False).astype(
            np.float64)), -BTYD_INPUT_BOUND, BTYD_INPUT_BOUND)
        for name in BTYD_INPUTS
    ]


def fit(data: pa.Table | pa.RecordBatch) -> BTYDFit:
    """Fit BG/NBD and Gamma-Gamma on every row of ``data`` (the customers of one cutoff).

    BG/NBD is fitted in weeks (where its optimiser is well conditioned; ``alpha`` is returned in
    days) and checked for degeneracy (:func:`clv.btyd.fit_bgnbd_checked`)."""
    frequency, recency, t_days, monetary = _inputs(data)
    checked = fit_bgnbd_checked(frequency, recency / DAYS_PER_WEEK, t_days / DAYS_PER_WEEK)
    return BTYDFit(checked.params.rescale_time(DAYS_PER_WEEK),
                   fit_gamma_gamma(frequency, monetary), checked.status, checked.reason,
                   repeat_buyers_order_value(frequency, monetary))


def predict(data: pa.Table | pa.RecordBatch, horizon_days: int, fit: BTYDFit) -> BTYDPrediction:
    """BTYD predictions for every row of ``data`` from the fitted parameters ``fit``: each row's
    values depend on that row and ``fit`` only."""
    frequency, recency, t_days, monetary = _inputs(data)
    return btyd_expected_spend(frequency, recency, t_days, monetary, horizon_days,
                               bgnbd=fit.bgnbd, gamma_gamma=fit.gamma_gamma,
                               repeat_order_value=fit.repeat_order_value)


def with_btyd_features(data: pa.Table | pa.RecordBatch,
                       prediction: BTYDPrediction) -> pa.Table | pa.RecordBatch:
    """``data`` with the BTYD_FEATURES columns appended (or replaced)."""
    values = {
        "btyd_expected_purchases": prediction.expected_purchases,
        "btyd_probability_alive": prediction.probability_alive,
        "btyd_expected_order_value": prediction.expected_order_value,
        "btyd_expected_spend": prediction.expected_spend,
    }
    for name in BTYD_FEATURES:
        column = pa.array(np.asarray(values[name], dtype=np.float64))
        if name in data.schema.names:
            data = data.set_column(data.schema.get_field_index(name), name, column)
        else:
            data = data.append_column(name, column)
    return data


def add_features_per_cutoff(
    table: pa.Table, horizon_days: int, cutoff_column: str = "cutoff_date"
) -> tuple[pa.Table, dict[str, BTYDFit]]:
    """Fit BTYD separately at each cutoff and append its outputs; returns the fits by cutoff."""
    parts, fits = [], {}
    cutoffs = table.column(cutoff_column).unique().to_pylist()
    for cutoff in sorted(cutoffs):
        part = table.filter(pc.equal(table.column(cutoff_column), cutoff))
        fits[str(cutoff)] = fit(part)
        parts.append(with_btyd_features(part, predict(part, horizon_days, fits[str(cutoff)])))
    return pa.concat_tables(parts), fits
