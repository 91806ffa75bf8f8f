"""Calibration of the network's distribution: every rule that fits it, and the wrapper that puts
it inside the exported graph.

The zero-inflated lognormal (ZILN) gives each customer a purchase probability ``p``, an expected
spend ``p * exp(mu + sigma^2 / 2)`` and quantiles. Each is a claim that can be checked on a
window whose outcome is known, and each is fitted by one rule here (tested in
``tests/test_calibration.py``):

1. **Spend** (:func:`fit_knots`). The ZILN mean ranks well but its scale drifts (sigma inflates
   it; customers at the latest cutoff are older than at earlier ones). A piecewise-linear map in
   log space, monotone, through each prediction decile's (mean prediction, actual mean) point
   after pooling adjacent violators. Mapped, a decile's mean comes near its actual mean, not
   exactly onto it: the map is linear in log spend between the points, not within a decile.
2. **Purchase probability** (:func:`fit_probability_bends`). Logistic recalibration of the
   purchase logit by a monotone piecewise-linear map, ``logit p' = slope * logit p + intercept
   + sum_k change_k * relu(logit p - knot_k)``, fitted by maximum likelihood, with knots at the
   logit's quintiles (fewer on small windows: at least 500 rows per segment). Platt scaling
   (:func:`fit_probability_map`, the straight line) cannot bend: a network too low at both
   ends and too high in the middle keeps its error there. A few numbers on thousands of rows
   cannot overfit a window; each segment's slope stays within
   :data:`PROBABILITY_SLOPE_BOUNDS`, so the order of customers (and the AUC) stays; a fit that
   would leave them falls back to the straight line.
3. **Purchase-rate factor** (``purchase_rate_factor``). The graph can scale the purchase rate
   behind the probability, ``P(buy) = 1 - (1 - p)^factor``; models trained before the spend
   level took the season into the probability at scoring (:func:`clv.level.
   leveled_distribution`) hold the season read from revenue here. New models hold 1, and the
   graph has no operation for it.
4. **Quantiles** (:func:`fit_sigma_scale`). One factor on the lognormal's sigma, chosen on a grid
   so that, among the customers who bought, the share whose spend lies above the lognormal's
   90th percentile and the share below its 10th come closest to 10%. The lognormal is the
   spend of those who buy; whether they buy is the probability's claim, calibrated by rule 2.
   Fitted on every customer's p10 and p90 instead, the factor answered for the mixture: the
   many customers unlikely to buy (whose p90 is 0, so that any purchase exceeds it) pushed it
   to 3 and more on regular buyers' data, and a subscriber's p50 fell to a tenth of their
   spend. With fewer than :data:`MIN_BUYERS` buyers in the window the factor is 1 (the
   network's own sigma). The expected spend is held fixed (mu moves with sigma), so the
   quantiles change, not the spend.

:class:`CalibratedNetwork` applies them all as operations on the network's outputs inside the
ONNX graph: the exported model still takes raw features only, and purchase probability,
expected value and quantiles remain one distribution. Where the rules are fitted (which window)
is the training step's choice (:mod:`clv.pipeline.training`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import brentq
from scipy.special import expit, ndtri
from torch import Tensor, nn

from clv.loss import log_sigmoid, ziln_log_mean, ziln_parameters
from clv.network import ClvNetwork, EnsembleNetwork

_STRICT = 1e-3  # each calibrated decile mean exceeds the one below by at least this factor
# Purchase-probability map: slope bounds (a slope outside says the window is degenerate) and
# the logit range the fit reads (probabilities of 1e-6 and 1 - 1e-6).
PROBABILITY_SLOPE_BOUNDS = (0.25, 4.0)
_LOGIT_LIMIT = 13.8
# Its bends: at most this many segments, each with at least this many rows, knots at least
# this far apart in logit.
PROBABILITY_SEGMENTS = 5
MIN_ROWS_PER_PROBABILITY_SEGMENT = 500
PROBABILITY_KNOT_GAP = 0.05
# Quantile map: candidate sigma factors (log-spaced) and the nominal tail share of p10 and p90.
SIGMA_SCALES = np.exp(np.linspace(np.log(0.25), np.log(4.0), 97))
TAIL_SHARE = 0.1
# Rule 4 fits the factor on at least this many buyers, else keeps the network's own sigma.
MIN_BUYERS = 100
# Floors in the graph: the raw spend's (the one fit_knots and apply use) and the calibrated
# purchase probability's, exp(-80) = 1.8e-35 (a normal float32, which no engine flushes to 0).
SPEND_FLOOR = 1e-12
# Rule 1's knots are at least this far apart in log spend (0.1% in spend): nearer bins merge.
KNOT_GAP = 1e-3
LOG_SPEND_FLOOR = float(np.log(SPEND_FLOOR))
LOG_PROBABILITY_FLOOR = -80.0


@dataclass(frozen=True)
class Calibration:
    """Everything :class:`CalibratedNetwork` applies, as saved in the model metadata."""

    knots_x: tuple[float, ...]  # log predicted mean per prediction bin
    knots_y: tuple[float, ...]  # log calibrated mean per prediction bin
    probability_slope: float = 1.0
    probability_intercept: float = 0.0
    sigma_scale: float = 1.0
    purchase_rate_factor: float = 1.0
    probability_knots: tuple[float, ...] = ()  # purchase logits where the map bends
    probability_slope_changes: tuple[float, ...] = ()  # its slope's change at each

    @property
    def probability_map(self) -> ProbabilityMap:
        return ProbabilityMap(self.probability_slope, self.probability_intercept,
                              self.probability_knots, self.probability_slope_changes)

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        return {**values, **{name: list(getattr(self, name)) for name in (
            "knots_x", "knots_y", "probability_knots", "probability_slope_changes")}}


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
    """Rule 1: knots (log predicted mean, log calibrated mean) per prediction bin, both [K]
    increasing.

    Args:
        predicted: [N] network expected spend (> 0) on the calibration rows.
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
    # Bins whose predictions (nearly) tie cannot be told apart: merge them. Knots closer than
    # KNOT_GAP in log spend would make slopes of thousands, which the graph's float32 knots
    # cannot carry (onnxruntime and the SQL query would part by percents above them).
    log_means = np.log(np.maximum(mean_predicted, SPEND_FLOOR))
    keep = np.concatenate([[True], np.diff(log_means) > KNOT_GAP])
    index = np.cumsum(keep) - 1
    weight = np.bincount(index, counts)
    mean_predicted = np.bincount(index, mean_predicted * counts) / weight
    mean_actual = np.bincount(index, mean_actual * counts) / weight
    floor = max(1e-3 * float(actual.mean()), 1e-6)
    calibrated = np.maximum(_pool_adjacent_violators(mean_actual, weight), floor)
    for k in range(1, calibrated.size):
        calibrated[k] = max(calibrated[k], calibrated[k - 1] * (1 + _STRICT))
    return np.log(np.maximum(mean_predicted, SPEND_FLOOR)), np.log(calibrated)


def log_spend_map(log_spend: np.ndarray, knots_x: np.ndarray, knots_y: np.ndarray) -> np.ndarray:
    """Rule 1 applied in numpy, as :meth:`CalibratedNetwork.log_spend_map` applies it: linear
    between the knots, slope 1 outside them; [N] in, [N] out."""
    x = np.asarray(knots_x, dtype=np.float64)
    y = np.asarray(knots_y, dtype=np.float64)
    slopes = np.concatenate([[1.0], np.diff(y) / np.diff(x), [1.0]])
    bends = np.maximum(np.asarray(log_spend, dtype=np.float64)[:, None] - x[None, :], 0.0)
    return y[0] + (log_spend - x[0]) + bends @ np.diff(slopes)


def _bernoulli_newton(design: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The coefficients ``theta`` [K] of ``logit p = design @ theta`` ([N, K]) maximising the
    Bernoulli likelihood of ``y`` [N], by Newton's method from ``theta``, halving a step that
    does not lower the loss: the loss is convex, so this converges from any start (undamped,
    the steps from an overconfident start can swing ever wider). Without a finite optimum
    (outcomes separated by the logit) the coefficients grow along the direction that
    separates them."""

    def loss(coefficients: np.ndarray) -> float:
        eta = design @ coefficients
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    current = loss(theta)
    for _ in range(100):
        q = expit(design @ theta)
        gradient = design.T @ (y - q)
        hessian = design.T @ (design * (q * (1.0 - q))[:, None]) + 1e-9 * np.eye(theta.size)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):
            candidate = loss(theta + step)
            if candidate <= current + 1e-12:
                break
            step = step / 2.0
        theta, current = theta + step, candidate
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def fit_probability_map(logit: np.ndarray, bought: np.ndarray) -> tuple[float, float]:
    """Rule 2's straight line (Platt scaling), the start and the fallback of
    :func:`fit_probability_bends`: ``(slope, intercept)`` of ``logit p' = slope * logit p +
    intercept`` maximising the Bernoulli likelihood of ``bought`` ([N] arrays; by
    :func:`_bernoulli_newton`). The slope stays within :data:`PROBABILITY_SLOPE_BOUNDS` (at the
    bound nearer the unbounded optimum, where the bounded one lies: the loss is convex);
    without both outcomes the map is the identity."""
    z = np.clip(np.asarray(logit, dtype=np.float64), -_LOGIT_LIMIT, _LOGIT_LIMIT)
    y = (np.asarray(bought, dtype=np.float64) > 0).astype(np.float64)
    if z.size == 0 or y.min() == y.max():
        return 1.0, 0.0
    theta = _bernoulli_newton(np.stack([z, np.ones_like(z)], axis=1), y, np.array([1.0, 0.0]))
    slope = float(np.clip(theta[0], *PROBABILITY_SLOPE_BOUNDS))
    if slope != theta[0] or not np.all(np.isfinite(theta)):
        # the intercept alone at the bounded slope: the root of the likelihood's derivative,
        # sum(expit(slope z + b)) = sum(y), increasing in b (so bracketed and found even when
        # every logit saturates, where Newton's steps would divide by nearly 0)
        offset, bought_count = slope * z, float(np.sum(y))
        reach = float(np.max(np.abs(offset))) + 50.0
        intercept = brentq(lambda b: float(np.sum(expit(offset + b))) - bought_count,
                           -reach, reach, xtol=1e-12)
        return slope, float(intercept)
    return slope, float(theta[1])


@dataclass(frozen=True)
class ProbabilityMap:
    """Rule 2's map: ``slope * z + intercept + sum_k changes_k * relu(z - knots_k)``."""

    slope: float = 1.0
    intercept: float = 0.0
    knots: tuple[float, ...] = ()
    changes: tuple[float, ...] = ()

    def __call__(self, logit: np.ndarray) -> np.ndarray:
        z = np.asarray(logit, dtype=np.float64)
        total = self.slope * z + self.intercept
        for knot, change in zip(self.knots, self.changes, strict=True):
            total = total + np.maximum(z - knot, 0.0) * change
        return total

    def segment_slopes(self) -> np.ndarray:
        return self.slope + np.concatenate([[0.0], np.cumsum(self.changes)])


def _probability_knots(z: np.ndarray, segments: int, min_rows: int) -> np.ndarray:
    """Interior knots at the quantiles of ``z`` [N] cutting it into at most ``segments`` parts
    of at least ``min_rows`` rows each, at least :data:`PROBABILITY_KNOT_GAP` apart."""
    segments = int(min(segments, z.size // max(min_rows, 1)))
    if segments < 2:
        return np.empty(0)
    ordered = np.sort(z)
    knots: list[float] = []
    for j in range(1, segments):
        knot = float(ordered[j * z.size // segments])
        below = int(np.searchsorted(ordered, knot))  # rows left of the knot (ties go right)
        previous = knots[-1] if knots else -np.inf
        if knot - previous < PROBABILITY_KNOT_GAP or below - np.searchsorted(
                ordered, previous) < min_rows or z.size - below < min_rows:
            continue
        knots.append(knot)
    return np.asarray(knots)


def fit_probability_bends(logit: np.ndarray, bought: np.ndarray,
                          segments: int = PROBABILITY_SEGMENTS,
                          min_rows_per_segment: int = MIN_ROWS_PER_PROBABILITY_SEGMENT,
                          ) -> ProbabilityMap:
    """Rule 2: the piecewise-linear map of the purchase logit maximising the Bernoulli
    likelihood of ``bought`` ([N] arrays), knots from :func:`_probability_knots`. Falls back
    to :func:`fit_probability_map`'s straight line with too few rows for two segments, with one
    outcome only, or when a segment's slope would leave :data:`PROBABILITY_SLOPE_BOUNDS`."""
    z = np.clip(np.asarray(logit, dtype=np.float64), -_LOGIT_LIMIT, _LOGIT_LIMIT)
    y = (np.asarray(bought, dtype=np.float64) > 0).astype(np.float64)
    line = ProbabilityMap(*fit_probability_map(z, y))
    knots = _probability_knots(z, segments, min_rows_per_segment) if z.size else np.empty(0)
    if knots.size == 0 or y.min() == y.max():
        return line
    design = np.column_stack([z, np.ones_like(z), np.maximum(z[:, None] - knots[None, :], 0.0)])
    theta = _bernoulli_newton(design, y, np.concatenate([[line.slope, line.intercept],
                                                         np.zeros(knots.size)]))
    fitted = ProbabilityMap(float(theta[0]), float(theta[1]), tuple(map(float, knots)),
                            tuple(map(float, theta[2:])))
    low, high = PROBABILITY_SLOPE_BOUNDS
    slopes = fitted.segment_slopes()
    if not (np.all(np.isfinite(theta)) and np.all((slopes >= low) & (slopes <= high))):
        return line
    return fitted


class _TailLevel:
    """The part of a ZILN q-quantile (:func:`clv.score.ziln_quantiles_numpy`) that depends on
    ``p`` alone (where it is positive, and the standard normal quantile of the spend
    distribution's level there), so a search over sigma computes the inverse normal CDF once."""

    def __init__(self, p: np.ndarray, q: float) -> None:
        self.positive = q > 1.0 - p
        self.normal = ndtri(np.where(self.positive, (q - 1.0 + p) / np.where(self.positive, p, 1.0),
                                     0.5))

    def quantile(self, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return np.where(self.positive, np.exp(mu + sigma * self.normal), 0.0)


def tail_shares(actual: np.ndarray, p: np.ndarray, mean: np.ndarray, sigma: np.ndarray,
                levels: tuple[_TailLevel, _TailLevel] | None = None) -> tuple[float, float, int]:
    """Share of customers above their p90, share below their p10 among those whose p10 is
    above 0, and how many those are, for the ZILN with probability ``p``, expected value
    ``mean`` and log spread ``sigma`` ([N] arrays). ``levels``: the p90's and p10's
    :class:`_TailLevel` of ``p``, when the caller holds them."""
    high, low = levels or (_TailLevel(p, 1.0 - TAIL_SHARE), _TailLevel(p, TAIL_SHARE))
    mu = np.log(np.maximum(mean, 1e-300) / np.maximum(p, 1e-300)) - 0.5 * sigma * sigma
    above = float(np.mean(actual > high.quantile(mu, sigma)))
    p10 = low.quantile(mu, sigma)
    positive = p10 > 0
    below = float(np.mean(actual[positive] < p10[positive])) if positive.any() else float("nan")
    return above, below, int(positive.sum())


def fit_sigma_scale(actual: np.ndarray, p: np.ndarray, mean: np.ndarray,
                    sigma: np.ndarray) -> float:
    """Rule 4: the factor on sigma (from :data:`SIGMA_SCALES`) that brings the share of the
    buyers (actual spend above 0) whose spend lies above the lognormal's 90th percentile, and
    the share below its 10th, closest to 10% each, with the expected value ``mean`` held fixed;
    the factor nearest 1 on ties, and 1 with fewer than :data:`MIN_BUYERS` buyers."""
    actual = np.asarray(actual, dtype=np.float64)
    buyers = actual > 0
    if int(buyers.sum()) < MIN_BUYERS:
        return 1.0
    log_actual = np.log(actual[buyers])
    log_mean = np.log(np.maximum(np.asarray(mean, dtype=np.float64)[buyers], 1e-300)
                      / np.maximum(np.asarray(p, dtype=np.float64)[buyers], 1e-300))
    spread = np.asarray(sigma, dtype=np.float64)[buyers]
    z = float(ndtri(1.0 - TAIL_SHARE))
    best, best_loss = 1.0, float("inf")
    for scale in sorted(SIGMA_SCALES, key=lambda s: abs(np.log(s))):
        scaled = spread * scale
        mu = log_mean - 0.5 * scaled * scaled
        above = float(np.mean(log_actual > mu + z * scaled))
        below = float(np.mean(log_actual < mu - z * scaled))
        loss = (above - TAIL_SHARE) ** 2 + (below - TAIL_SHARE) ** 2
        if loss < best_loss - 1e-12:
            best, best_loss = float(scale), loss
    return best


def apply(calibration: Calibration, spend: np.ndarray, logit: np.ndarray,
          sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The calibrated ``(p, expected spend, mu, sigma)`` from the network's uncalibrated
    expected spend, purchase logit and sigma ([N] each), in float64: what
    :class:`CalibratedNetwork` computes inside the graph."""
    z = calibration.probability_map(logit)
    if calibration.purchase_rate_factor == 1.0:
        log_p = np.maximum(z - np.logaddexp(0.0, z), LOG_PROBABILITY_FLOOR)
        p = np.exp(log_p)
    else:  # 1 - (1 - p)^factor, with log(1 - p) = -softplus(z)
        rate = np.maximum(calibration.purchase_rate_factor * np.logaddexp(0.0, z), 1e-30)
        p = -np.expm1(-rate)
        log_p = np.log(p)
    log_spend = log_spend_map(np.log(np.maximum(np.asarray(spend, dtype=np.float64), SPEND_FLOOR)),
                              np.asarray(calibration.knots_x), np.asarray(calibration.knots_y))
    scaled = np.asarray(sigma, dtype=np.float64) * calibration.sigma_scale
    mu = log_spend - log_p - 0.5 * scaled * scaled
    return p, np.exp(log_spend), mu, scaled


def fit(predicted: np.ndarray, logit: np.ndarray, sigma: np.ndarray,
        actual: np.ndarray, purchase_rate_factor: float = 1.0) -> Calibration:
    """Rules 1, 2 and 4 fitted on one set of rows: the network's expected spend, purchase logit
    and sigma ([N] each, before calibration) against the actual spend ([N]); rule 3's factor,
    estimated elsewhere, is carried into the result (the quantile scale is fitted without it:
    the rows it is fitted on are in the calibration window's season)."""
    actual = np.asarray(actual, dtype=np.float64)
    knots_x, knots_y = fit_knots(predicted, actual)
    bends = fit_probability_bends(logit, actual > 0)
    without_scale = Calibration(tuple(map(float, knots_x)), tuple(map(float, knots_y)),
                                bends.slope, bends.intercept, probability_knots=bends.knots,
                                probability_slope_changes=bends.changes)
    p, mean, _, _ = apply(without_scale, predicted, logit, sigma)
    scale = fit_sigma_scale(actual, p, mean, np.asarray(sigma, dtype=np.float64))
    return replace(without_scale, sigma_scale=scale,
                   purchase_rate_factor=float(purchase_rate_factor))


class CalibratedNetwork(nn.Module):
    """A trained :class:`ClvNetwork` (or ensemble) whose outputs pass through the three maps.

    With ``l0`` the purchase logit and ``spend`` the ZILN mean of the base network:
        p'     = sigmoid(g(l0)) (as the exp of its log, see clv.loss), then
                 1 - (1 - p')^rate_factor when the purchase rate factor is not 1,
                 g(l) = slope * l + intercept + sum_k change_k * relu(l - knot_k)
        spend' = exp(h(log spend)),  h linear between the knots (x_k, y_k), slope 1 outside:
                 h(x) = y_0 + (x - x_0) + sum_k (slope_k - slope_{k-1}) * relu(x - x_k)
        sigma' = sigma_scale * sigma
        mu'    = log spend' - log p' - sigma'^2 / 2
    so ``p' * exp(mu' + sigma'^2 / 2) = spend'``: one distribution. The defaults of the last
    three arguments leave the probability and sigma as the base network's.
    """

    def __init__(self, base: ClvNetwork | EnsembleNetwork, knots_x: np.ndarray,
                 knots_y: np.ndarray, probability_slope: float = 1.0,
                 probability_intercept: float = 0.0, sigma_scale: float = 1.0,
                 purchase_rate_factor: float = 1.0,
                 probability_knots: tuple[float, ...] = (),
                 probability_slope_changes: tuple[float, ...] = ()) -> None:
        super().__init__()
        # A plain number, not a buffer: with 1 the graph has no operations for it at all.
        self.purchase_rate_factor = float(purchase_rate_factor)
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
        self.register_buffer("probability_slope", torch.tensor(float(probability_slope)))
        self.register_buffer("probability_intercept", torch.tensor(float(probability_intercept)))
        self.register_buffer("sigma_scale", torch.tensor(float(sigma_scale)))
        self.register_buffer("probability_knots",
                             torch.tensor(probability_knots, dtype=torch.float32))
        self.register_buffer("probability_slope_changes",
                             torch.tensor(probability_slope_changes, dtype=torch.float32))

    @classmethod
    def from_calibration(cls, base: ClvNetwork | EnsembleNetwork,
                         calibration: Calibration) -> CalibratedNetwork:
        return cls(base, np.asarray(calibration.knots_x), np.asarray(calibration.knots_y),
                   calibration.probability_slope, calibration.probability_intercept,
                   calibration.sigma_scale, calibration.purchase_rate_factor,
                   calibration.probability_knots, calibration.probability_slope_changes)

    def logits(self, static: Tensor, sequence: Tensor) -> Tensor:
        return self.base.logits(static, sequence)

    def log_spend_map(self, x: Tensor) -> Tensor:
        """h(x) for x [B]; returns [B].

        The bends are added one knot at a time, elementwise: a row's sum then rounds the same
        wherever the row sits in its batch, where onnxruntime's ReduceSum over a row rounds
        with the row's alignment in memory, so a customer scored in another batch would differ
        in the last bit."""
        total = self.y0 + (x - self.x0)
        for k in range(self.knots.shape[0]):
            total = total + torch.relu(x - self.knots[k]) * self.slope_changes[k]
        return total

    def purchase_logit(self, logit: Tensor) -> Tensor:
        """g(l) for the base network's purchase logit [B]; returns [B]. Without knots the
        graph holds the straight line alone; the bends are added elementwise, one knot at a
        time, as in :meth:`log_spend_map`."""
        total = logit * self.probability_slope + self.probability_intercept
        for k in range(self.probability_knots.shape[0]):
            total = total + torch.relu(logit - self.probability_knots[k]) * (
                self.probability_slope_changes[k])
        return total

    def forward(self, static: Tensor,
                sequence: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Returns purchase_probability, network_clv, mu, sigma, log_no_purchase (log(1 -
        purchase_probability), from the logit, so exact where the probability rounds to 1),
        each [B]."""
        logits = self.base.logits(static, sequence)
        _, _, sigma = ziln_parameters(logits)
        # In log space (no sigmoid in the graph, see clv.loss), with the floor fit_knots and
        # apply put on the raw spend, so the graph maps every spend as the calibration did.
        calibrated = self.log_spend_map(ziln_log_mean(logits).clamp_min(LOG_SPEND_FLOOR))
        purchase_logit = self.purchase_logit(logits[:, 0])
        if self.purchase_rate_factor == 1.0:
            # At least exp(-80): the compiled SQL's series stay above PostgreSQL's underflow.
            log_probability = log_sigmoid(purchase_logit).clamp_min(LOG_PROBABILITY_FLOOR)
            probability = torch.exp(log_probability)
            log_no_purchase = F.softplus(purchase_logit) * -1.0
        else:
            # 1 - (1 - p)^factor = 1 - exp(-rate), rate = factor * softplus(z); below 1e-3 the
            # series rate - rate^2 / 2 keeps float32 digits that 1 - exp(-rate) would lose.
            rate = (F.softplus(purchase_logit) * self.purchase_rate_factor).clamp_min(1e-30)
            small = rate * (1.0 - 0.5 * rate)
            probability = torch.where(rate > 1e-3, 1.0 - torch.exp(rate * -1.0), small)
            log_probability = torch.log(probability)
            log_no_purchase = rate * -1.0
        scaled = sigma * self.sigma_scale
        mu_calibrated = calibrated - log_probability - 0.5 * scaled * scaled
        return probability, torch.exp(calibrated), mu_calibrated, scaled, log_no_purchase
