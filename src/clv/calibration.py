"""Monotone calibration of the network's expected spend, fitted on the validation cutoff.

The ZILN mean p * exp(mu + sigma^2 / 2) ranks customers well but its scale drifts: sigma
inflates it, and customers at the latest cutoff are older than at earlier ones. A piecewise-
linear map in log space, fitted so each prediction decile's mean matches its actual mean on the
held-out cutoff, fixes the scale without changing the order. It is applied as a per-customer
shift of mu inside the network, so expected value and quantiles stay one distribution and the
exported ONNX graph still takes raw features only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from clv.network import ClvNetwork, EnsembleNetwork

_STRICT = 1e-3  # each calibrated decile mean exceeds the one below by at least this factor


def _pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit of ``values`` [K] with ``weights`` [K]."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean_b, weight_b, count_b = blocks.pop()
            mean_a, weight_a, count_a = blocks.pop()
            total = weight_a + weight_b
            blocks.append([(mean_a * weight_a + mean_b * weight_b) / total, total,
                           count_a + count_b])
    return np.concatenate([np.full(count, mean) for mean, _, count in blocks])


def fit_knots(predicted: np.ndarray, actual: np.ndarray,
              bins: int = 10, min_rows_per_bin: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Knots (log predicted mean, log calibrated mean) per prediction bin, both [K] increasing.

    Args:
        predicted: [N] network expected spend (> 0) on the validation rows.
        actual: [N] realised spend (>= 0) on the same rows.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert predicted.shape == actual.shape and predicted.ndim == 1
    bins = int(max(1, min(bins, predicted.size // min_rows_per_bin)))
    order = np.argsort(predicted, kind="stable")
    groups = [g for g in np.array_split(order, bins) if g.size]
    mean_predicted = np.array([predicted[g].mean() for g in groups])
    mean_actual = np.array([actual[g].mean() for g in groups])
    counts = np.array([g.size for g in groups], dtype=np.float64)
    # Bins whose predictions tie (same mean) cannot be told apart: merge them.
    keep = np.concatenate([[True], np.diff(mean_predicted) > 1e-9 * mean_predicted[1:]])
    index = np.cumsum(keep) - 1
    weight = np.bincount(index, counts)
    mean_predicted = np.bincount(index, mean_predicted * counts) / weight
    mean_actual = np.bincount(index, mean_actual * counts) / weight
    floor = max(1e-3 * float(actual.mean()), 1e-6)
    calibrated = np.maximum(_pool_adjacent_violators(mean_actual, weight), floor)
    for k in range(1, calibrated.size):
        calibrated[k] = max(calibrated[k], calibrated[k - 1] * (1 + _STRICT))
    return np.log(np.maximum(mean_predicted, 1e-12)), np.log(calibrated)


class CalibratedNetwork(nn.Module):
    """A trained :class:`ClvNetwork` (or ensemble) whose expected spend passes through a
    monotone map.

    h(x) is linear between the knots (x_k, y_k) with slope 1 outside them, x = log(spend):
        h(x) = y_0 + (x - x_0) + sum_k (slope_k - slope_{k-1}) * relu(x - x_k)
    and the outputs become spend' = exp(h(log spend)), mu' = mu + h(log spend) - log spend.
    """

    def __init__(self, base: ClvNetwork | EnsembleNetwork, knots_x: np.ndarray,
                 knots_y: np.ndarray) -> None:
        super().__init__()
        self.base = base
        self.n_static, self.n_periods, self.n_channels = (base.n_static, base.n_periods,
                                                          base.n_channels)
        x = np.asarray(knots_x, dtype=np.float64)
        y = np.asarray(knots_y, dtype=np.float64)
        slopes = np.concatenate([[1.0], np.diff(y) / np.diff(x), [1.0]])
        self.register_buffer("x0", torch.tensor(float(x[0])))
        self.register_buffer("y0", torch.tensor(float(y[0])))
        self.register_buffer("knots", torch.tensor(x, dtype=torch.float32))
        self.register_buffer("slope_changes", torch.tensor(np.diff(slopes), dtype=torch.float32))

    def logits(self, static: Tensor, sequence: Tensor) -> Tensor:
        return self.base.logits(static, sequence)

    def log_spend_map(self, x: Tensor) -> Tensor:
        """h(x) for x [B]; returns [B]."""
        bends = torch.relu(x.unsqueeze(1) - self.knots) * self.slope_changes
        return self.y0 + (x - self.x0) + bends.sum(dim=1)

    def forward(self, static: Tensor, sequence: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Returns purchase_probability, network_clv, mu, sigma, each [B]."""
        p, spend, mu, sigma = self.base(static, sequence)
        log_spend = torch.log(spend.clamp_min(1e-12))
        shift = self.log_spend_map(log_spend) - log_spend
        return p, spend * torch.exp(shift), mu + shift, sigma
