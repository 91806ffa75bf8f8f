"""The spend level: the one step that turns the network's output into ``predicted_clv``.

The network (with its calibration, inside the ONNX graph) decides how spend is shared between
customers: its expected spend per customer is ``network_clv``. The total comes from BG/NBD +
Gamma-Gamma fitted at the as-of date, times the model's ``btyd_level_correction`` (BG/NBD's
actual over predicted spend on the validation cutoff, bounded to
:data:`LEVEL_CORRECTION_BOUNDS`). So for every customer, with sums over every scored customer:

    spend_factor  = sum(btyd_expected_spend) * btyd_level_correction / sum(network_clv)
    predicted_clv = network_clv * spend_factor      (and the same factor on each quantile)

BG/NBD follows how the customer base has aged since the validation cutoff (each customer's
dropout), which a model trained on earlier cutoffs cannot see; the correction carries over
BG/NBD's own bias on the last fully observed window. Sums are exact over values rounded to
micro-units, so they do not depend on the order customers are scored in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Bounds of the BG/NBD level correction: a validation window that far off says more about that
# window (a tiny or freak one) than about BG/NBD's bias.
LEVEL_CORRECTION_BOUNDS = (0.5, 2.0)
_MICRO = 1_000_000


def btyd_level_correction(evaluation: Iterable[Mapping[str, Any]]) -> float:
    """Actual over BG/NBD + Gamma-Gamma expected spend, summed over the validation cutoff,
    from the validation rows of ``evaluation`` (one row per predictor); 1.0 without them."""
    row = next((r for r in evaluation if r["predictor"] == "bgnbd_gamma_gamma"), None)
    if row is None or not row["predicted_total"] > 0 or not row["actual_total"] > 0:
        return 1.0
    low, high = LEVEL_CORRECTION_BOUNDS
    return float(np.clip(row["actual_total"] / row["predicted_total"], low, high))


def micro_units(values: np.ndarray) -> int:
    """Exact sum of ``values`` rounded to micro-units (halves away from zero, as a SQL cast to
    ``decimal(38, 6)`` rounds; NaN as 0), as an integer count of micro-units: the same whatever
    the order the values are added in, so an engine can add them up in SQL."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    rounded = np.sign(values) * np.floor(np.abs(values) * _MICRO + 0.5)
    return int(rounded.astype(np.int64).sum(dtype=np.int64))


@dataclass(frozen=True)
class SpendLevel:
    """The totals behind one scoring run's spend factor (sums over every scored customer)."""

    btyd_total: float  # sum of btyd_expected_spend at the as-of date
    network_total: float  # sum of network_clv
    btyd_level_correction: float  # the model's correction from its validation cutoff

    @property
    def spend_factor(self) -> float:
        if not self.network_total > 0:
            return 1.0
        return self.btyd_total * self.btyd_level_correction / self.network_total

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "spend_factor": self.spend_factor}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpendLevel:
        return cls(btyd_total=float(values["btyd_total"]),
                   network_total=float(values["network_total"]),
                   btyd_level_correction=float(values["btyd_level_correction"]))


class LevelAccumulator:
    """Adds up the two totals batch by batch, exactly."""

    def __init__(self) -> None:
        self.btyd_micro = 0
        self.network_micro = 0

    def add(self, btyd_expected_spend: np.ndarray, network_clv: np.ndarray) -> None:
        self.btyd_micro += micro_units(btyd_expected_spend)
        self.network_micro += micro_units(network_clv)

    def level(self, btyd_level_correction: float) -> SpendLevel:
        return from_micro_totals(self.btyd_micro, self.network_micro, btyd_level_correction)


def from_micro_totals(btyd_micro: int, network_micro: int,
                      btyd_level_correction: float) -> SpendLevel:
    """The spend level from the two sums in micro-units (:func:`micro_units`)."""
    return SpendLevel(btyd_total=btyd_micro / _MICRO, network_total=network_micro / _MICRO,
                      btyd_level_correction=float(btyd_level_correction))


def apply(network_values: np.ndarray, level: SpendLevel) -> np.ndarray:
    """``network_values`` (network_clv or one of its quantiles) at the spend level."""
    return np.asarray(network_values, dtype=np.float64) * level.spend_factor
