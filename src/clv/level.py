"""The spend level: every rule that decides the customers' total, and the one step that turns
the network's output into ``predicted_clv``.

The network (with its calibration, inside the ONNX graph, :mod:`clv.calibration`) decides how
spend is shared between customers: its expected spend per customer is ``network_clv``. The
total is decided here, by two coefficients estimated when the model is trained
(:func:`estimate_level`) and applied at every scoring run, with sums over every scored customer:

    spend_factor  = btyd_level_correction * sum(btyd_expected_spend) / sum(network_clv)
                    + network_level_weight
    predicted_clv = network_clv * spend_factor

(the sums as rule 7 counts them), and the purchase probability and the quantiles follow the
same level (rule 6), so the total is ``btyd_level_correction * (BG/NBD's total) +
network_level_weight * (the network's own total)``. The rules behind the two coefficients,
each of them tested in ``tests/test_level_rules.py``:

1. **Windows.** Every training cutoff's label window is fully observed by the as-of date.
   A window's history (its maturity below, and the two years seasonality needs) runs from the
   first purchase of its tenth oldest customer (:func:`history_days`), not a stray row's. On
   each, BG/NBD + Gamma-Gamma (fitted at that cutoff) and the network (before calibration; on
   the training cutoffs it has seen the labels, on the validation cutoff it has not) have a log
   ratio ``log(actual total / predicted total)``: their bias on that window.
2. **Source.** A bias is carried forward from the window one *lag* before the date predicted:
   the horizon (the latest window fully observed at the as-of date is the validation window),
   or a year when the history holds at least two full years and a window lies a year before
   the as-of date (:func:`seasonal_reference`): the same window of the previous year, which
   carries the season's effect on the total (a peak inside the horizon, and the season of the
   purchases just before the cutoff that BG/NBD reads as a rate).
3. **Backtests and shrinkage.** Each window with a source of its own (one lag earlier) is a
   backtest: how much of the source's bias recurred. The carried share ``lambda`` is the
   least-squares fit of ``target bias = lambda * source bias`` over the backtests, weighted by
   how mature the windows are (history at the cutoff over the horizon), with a ridge of
   :data:`SHRINK_RIDGE` towards a prior: 1 for a source from the same season (a seasonal bias
   recurs), 0 otherwise (no correction). So a bias that has been stable across windows is
   carried, an unstable one is shrunk away, and with no backtest the prior decides. The
   correction is ``exp(lambda * source bias)``, within :data:`LEVEL_CORRECTION_BOUNDS`.
   The network's backtests target only windows it was not trained on (the validation window):
   on a training cutoff it has fitted the labels, and its error there, near 0 whatever it
   does on new data, would win it the total in rule 4.
4. **Combination.** BG/NBD is the default: it follows how the customer base has aged since the
   last window (each customer's dropout), which a network trained on earlier cutoffs can only
   extrapolate. The network's corrected total gets the share ``evidence / (evidence +
   NETWORK_EVIDENCE_PRIOR)`` of its inverse-error weight against BG/NBD's (backtest mean
   squared errors after shrinkage): nothing without backtests, up to its inverse-error share
   with many. Its coefficient applies to ``network_clv``, the calibrated network, so its
   correction is that of the calibrated total (:func:`calibrated_correction`): the carried
   bias of the raw network over the calibration's scale on the source window, within
   :data:`LEVEL_CORRECTION_BOUNDS` (the raw network's own bounded correction, divided by that
   scale, would bring back what the calibration undid: a raw network far off on the window,
   whose inputs lie outside what it was trained on, multiplied every prediction).

5. **Season without a window a year back** (:func:`revenue_seasonal_factor`). When the history
   holds two full years but no training cutoff lies a year back (``clv_seasonal_backtests: 0``,
   or a single training cutoff), the season is read from revenue instead: the
   examples' activity sequences hold every customer's revenue per period for a year before each
   cutoff, so last year's revenue in the as-of window and in the window before it (the one the
   level is carried from) are known. Their ratio, less the business's growth over that time
   (from the trailing-year revenue at two cutoffs, which holds every season once), is the
   seasonal factor, within :data:`SEASONAL_FACTOR_BOUNDS`; it multiplies the total, and with
   it the purchase rate behind the purchase probability (rule 6).
6. **The distribution follows the level** (:func:`leveled_distribution`). A total the level
   moves is a purchase rate it moves: the network's probability is calibrated on the window
   the level is carried from, and a level that says the next window holds less (or more) spend
   than the network expects says that fewer (or more) customers buy in it. The purchase rate
   is scaled by the spend factor, the season of rule 5 included, for the customers still
   active (``a``, BG/NBD's probability that the customer is alive: a customer who has stopped
   buying does not buy more in a busy season), over BG/NBD's gamma posterior of each active
   customer's rate (shape ``k = r + x``): ``p' = a * (1 - (1 + f * ((1 - p / a)^(-1/k) -
   1))^(-k))``. The ZILN's location moves so that the expected value is ``predicted_clv``, and
   the quantiles are those of that distribution. (Models saved before this rule hold a season
   inside their probability, :mod:`clv.calibration` rule 3; it is not applied twice.) Without
   it, a level well below 1 (a quiet season after the calibration window) leaves the
   probabilities too high for the spend they come with.

7. **No customer sets the level alone** (:class:`CappedTotal`, tested in
   ``tests/test_level.py``). In the two totals the factor reads, the ``d`` customers whose
   values are each more than a tenth of the total (:data:`DOMINANT_SHARE`) count as a tenth
   of the capped total: it is the other customers' total over ``1 - d / 10``, so however far
   above the rest such a customer lies, the total follows the rest. A wholesaler among
   shoppers would otherwise carry the network's error on that one customer into every other
   customer's value, and one freak order BG/NBD extrapolates would scale everyone's. Below
   that share nothing changes; when such customers hold the whole total (nobody else has a
   value), it is counted in full. The customer's own
   prediction is still ``network_clv * spend_factor``; ``dbt build`` warns about such
   customers (``clv_predictions_no_customer_holds_a_tenth``). The backtest windows of rule 3
   leave such customers out (:func:`others`): a customer above a tenth of a window's actual,
   BG/NBD or network total is left out of all three, so the bias carried to everyone is the
   others' bias, not the wholesaler's (left out of one column only, the ratio would be
   biased by the customer's share).

8. **How sure the level is** (:func:`level_log_sd`). The backtests of rule 3 measure how far
   a carried correction missed the next window, each predicted as if unseen: the carried
   share fitted on the other backtests (the prior alone for a single one,
   :func:`held_out_errors`; a miss beyond :data:`LEVEL_CORRECTION_BOUNDS` counts as the
   bound), since a share fitted on a backtest predicts that backtest well by construction
   (one backtest window of a young shop put the level at 2% where it missed by 12%). Their
   mean squared error of ``log(actual total / predicted total)``, weighted by the shares of
   rule 4, has a square root that is the level's own uncertainty, a factor on
   every customer's value at once. ``clv_segment_summary`` combines it with the customers'
   own randomness (the variance of each customer's ZILN) and the network's bias per value
   decile on the validation window into the p10-p90 range of a segment's total. With few
   backtests it is a rough figure. Without any, how far the level misses is unknown: the
   biases of every window the predictor is measured on stand in (weighted by maturity, each
   within :data:`LEVEL_CORRECTION_BOUNDS`, beyond which a window says more about itself), not
   the one bias on the window the level is carried from, which can be 0 by chance.

9. **A seasonal level follows the scoring date** (:func:`season_shift`). A seasonal level
   (rule 2 or 5) is the season of the window after the model's own as-of date ``T``; scored at
   another date ``d`` (``clv_retrain: never``, a backfill), the window is another season. The
   model saves the revenue per period that its training examples hold (``season_revenue``),
   and both coefficients are multiplied by last year's revenue in ``d``'s window over last
   year's revenue in ``T``'s, less the trend over ``d - T`` days (within
   :data:`SEASONAL_FACTOR_BOUNDS`): a model trained at the end of September for the peak
   (October to December), scored at the end of December, reads last year's quiet January to
   March instead of carrying the peak into it. A date whose
   window last year the saved revenue does not cover keeps ``T``'s level, with a log line
   saying to retrain. At ``d = T``, and for a level without season, the factor is 1.

Why it generalises: nothing is tuned to a data set. Every number comes from the data's own
windows, a correction has to have held in earlier windows to be applied, and the network's
level, which can drift far when the as-of population differs from the training cutoffs' (a
short history), only counts as far as backtests show it held. The estimate and everything
behind it are saved in the model metadata (``spend_level``).

Sums are exact over values rounded to micro-units, so they do not depend on the order customers
are scored in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

# Bounds of a correction factor: a window that far off says more about that window (a tiny or
# freak one) than about a predictor's bias.
LEVEL_CORRECTION_BOUNDS = (0.5, 2.0)
_LOG_BOUNDS = tuple(math.log(bound) for bound in LEVEL_CORRECTION_BOUNDS)
# Ridge of the carried share lambda, in squared log ratios: a source bias of 0.1 (10%) seen in
# one fully mature backtest counts as much as the prior.
SHRINK_RIDGE = 0.01
# Backtests (in fully mature window pairs) the network's share is shrunk with towards 0.
NETWORK_EVIDENCE_PRIOR = 1.0
# Seasonality: the history must hold two full years, so the window a year back is not the
# data's first months (whose customers are all new): days from the first purchase day to the
# as-of date, both counted (2022-01-01 to 2023-12-31 holds 730; its t_days are 729).
SEASONAL_MIN_HISTORY_DAYS = 730
YEAR_DAYS = 365
# A seasonal factor from revenue beyond these says more about the data than about a season.
SEASONAL_FACTOR_BOUNDS = (0.25, 4.0)
# Backtest errors below this (a 1% bias) are not told apart: keeps inverse-error weights finite.
_MSE_FLOOR = 1e-4
_MICRO = 1_000_000
# A value beyond this (about 2**63 micro-units), or not finite, counts as 0 in a total: its
# micro-units would overflow the 64-bit integers an engine rounds into. Real spend never comes
# near it; the compiled SQL and Spark apply the same bound.
MICRO_BOUND = 9.2e12
# The history at a cutoff starts at the first purchase of its HISTORY_CUSTOMERS-th oldest
# customer: stray rows of fewer customers do not move it.
HISTORY_CUSTOMERS = 10
# Rule 7: a customer above 1/DOMINANT_SHARE of a total counts as that share of it.
DOMINANT_SHARE = 10
# Rule 6's arithmetic: series below this, logarithms floored at TINY, exponents within
# EXP_LIMIT (PostgreSQL raises on an exp that underflows), as the compiled SQL does.
SERIES_BELOW = 1e-4
TINY = 1e-300
EXP_LIMIT = 700.0
GROWTH_LIMIT = 600.0  # exp(600) times any spend factor stays finite; past it, logarithms


# --------------------------------------------------------------------------------------------
# Rules: windows, source, backtests, combination
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Totals on one fully observed window (a training cutoff and the horizon after it)."""

    cutoff: date
    customers: int
    history_days: int  # the data's history at the cutoff (:func:`history_days`)
    actual_total: float  # the customers' actual spend in the window
    btyd_total: float  # BG/NBD + Gamma-Gamma fitted at the cutoff
    network_total: float  # the network before calibration
    # the network was trained on this window's labels (a training cutoff): its bias here is
    # in-sample, near 0 by construction, so the window is no backtest target of the network's
    network_trained_on: bool = False

    def maturity(self, horizon_days: int) -> float:
        """How far the history at the cutoff spans the horizon predicted, from 0 to 1."""
        return float(min(1.0, max(self.history_days, 0) / max(horizon_days, 1)))

    def log_ratio(self, predictor: str) -> float | None:
        """``log(actual / predicted)`` of ``btyd`` or ``network``; None when undefined (a total
        that is not a positive finite number: a network's expected spend can overflow)."""
        predicted = self.btyd_total if predictor == "btyd" else self.network_total
        if not (0 < self.actual_total < math.inf and 0 < predicted < math.inf):
            return None
        return math.log(self.actual_total / predicted)


@dataclass(frozen=True)
class SeasonalReference:
    """How far back a window's bias is carried from, and why."""

    lag_days: int  # the source lies this many days before the date predicted
    same_season: bool  # the source is a whole number of years back
    seasonal: bool  # the seasonal rule (a year back) is in use
    reason: str  # what was decided, in words (saved in the model metadata)


def spacing_days(windows: Sequence[Window], horizon_days: int) -> float:
    """Median days between consecutive cutoffs (an eighth of the horizon with one window)."""
    ordinals = sorted(w.cutoff.toordinal() for w in windows)
    if len(ordinals) < 2:
        return max(horizon_days / 8.0, 1.0)
    return float(np.median(np.diff(ordinals)))


def _tolerance(windows: Sequence[Window], horizon_days: int) -> float:
    """How near a cutoff must lie to the date it stands for: half the cutoff spacing."""
    return max(spacing_days(windows, horizon_days) / 2.0, 3.0)


def source_window(windows: Sequence[Window], target: date, lag_days: int,
                  horizon_days: int) -> Window | None:
    """The window closest to ``target - lag_days`` (within half a cutoff spacing) whose label
    window has ended by ``target`` (within the same tolerance); None if there is none."""
    tolerance = _tolerance(windows, horizon_days)
    wanted = target.toordinal() - lag_days
    candidates = [w for w in windows
                  if abs(w.cutoff.toordinal() - wanted) <= tolerance
                  and w.cutoff.toordinal() + horizon_days <= target.toordinal() + tolerance
                  and w.cutoff < target]
    if not candidates:
        return None
    return min(candidates, key=lambda w: (abs(w.cutoff.toordinal() - wanted), w.cutoff))


def holds_two_years(history_days: int) -> bool:
    """Whether a history of ``history_days`` (days since the first purchase, as t_days counts
    them: 0 on the first purchase day) spans :data:`SEASONAL_MIN_HISTORY_DAYS` days with the
    first day counted."""
    return history_days + 1 >= SEASONAL_MIN_HISTORY_DAYS


def _short_history(history_days: int) -> str:
    return (f"history of {history_days} days at the as-of date, under the "
            f"{SEASONAL_MIN_HISTORY_DAYS} (two full years) seasonality needs: no seasonal "
            "adjustment; the level is carried from the latest window")


def seasonal_reference(windows: Sequence[Window], horizon_days: int, as_of: date,
                       history_days: int) -> SeasonalReference:
    """Whether the level is carried from the same window of the previous year (and why not).

    A horizon of a year or more holds every season: the lag is the horizon, itself a whole
    number of years when it is 365 days. A shorter horizon uses the window a year back when the
    history at the as-of date holds :data:`SEASONAL_MIN_HISTORY_DAYS` and a training cutoff lies
    a year before the as-of date; otherwise the lag is the horizon (the latest window) and the
    reason says what is missing.
    """
    def whole_years(days: int) -> bool:
        return days >= YEAR_DAYS and abs(days - YEAR_DAYS * round(days / YEAR_DAYS)) <= (
            _tolerance(windows, horizon_days))

    if horizon_days >= YEAR_DAYS:
        return SeasonalReference(horizon_days, whole_years(horizon_days), False,
                                 f"horizon of {horizon_days} days holds every season: the level "
                                 f"is carried from the window {horizon_days} days earlier")
    if not holds_two_years(history_days):
        return SeasonalReference(horizon_days, False, False, _short_history(history_days))
    if source_window(windows, as_of, YEAR_DAYS, horizon_days) is None:
        missing = (f"no training cutoff lies a year before the as-of date (the earliest is "
                   f"{(as_of - min(w.cutoff for w in windows)).days} days before it): no "
                   "seasonal adjustment; ")
        if len(windows) < 2:
            # a single training cutoff has no spacing, and gets no cutoff a year back
            return SeasonalReference(
                horizon_days, False, False,
                missing + "the cutoffs a year back are added with more than one training "
                "cutoff: clv_training_cutoffs of at least 2, with clv_seasonal_backtests above 0")
        spacing = spacing_days(windows, horizon_days)
        needed = math.ceil((YEAR_DAYS - horizon_days - _tolerance(windows, horizon_days))
                           / max(spacing, 1.0)) + 1
        return SeasonalReference(
            horizon_days, False, False,
            missing + "clv_seasonal_backtests above 0 (the default 3) adds the cutoffs a year "
            f"back, as do clv_training_cutoffs of at least {needed} at a cutoff spacing of "
            f"{spacing:.0f} days")
    return SeasonalReference(YEAR_DAYS, True, True,
                             "seasonal: the level is carried from the same window of the "
                             "previous year")


@dataclass(frozen=True)
class RevenuePeriods:
    """Revenue of every customer per period before one cutoff, summed (a cutoff's activity
    sequence): ``revenue[j - 1]`` is the revenue in ``(cutoff - j * period_days,
    cutoff - (j - 1) * period_days]``."""

    cutoff: date
    period_days: int
    revenue: tuple[float, ...]

    def covers(self, start: date, end: date) -> bool:
        first = self.cutoff - timedelta(days=self.period_days * len(self.revenue))
        return first <= start and end <= self.cutoff

    def between(self, start: date, end: date) -> float:
        """Revenue in ``(start, end]``, a period's revenue spread evenly over its days."""
        total = 0.0
        for j, value in enumerate(self.revenue, start=1):
            period_end = self.cutoff - timedelta(days=(j - 1) * self.period_days)
            period_start = period_end - timedelta(days=self.period_days)
            overlap = (min(period_end, end) - max(period_start, start)).days
            if overlap > 0:
                total += value * overlap / self.period_days
        return total


@dataclass(frozen=True)
class SeasonalFactor:
    """The seasonal factor from revenue (rule 5) and what it was computed from."""

    factor: float  # 1.0 when not applied
    applied: bool
    reason: str
    last_year_window: float | None = None  # revenue in the as-of window a year back
    last_year_source: float | None = None  # revenue in the source window a year back
    growth_per_year: float | None = None  # trend removed, as a yearly factor


def revenue_seasonal_factor(periods: Sequence[RevenuePeriods], horizon_days: int, as_of: date,
                            history_days: int, reference: SeasonalReference,
                            growth_per_day: float | None) -> SeasonalFactor:
    """Rule 5: last year's revenue in the as-of window over that in the window before it,
    less the trend, for a short horizon whose level is carried from the latest window."""
    if reference.seasonal or horizon_days >= YEAR_DAYS:
        return SeasonalFactor(1.0, False, "not needed: " + reference.reason)
    if not holds_two_years(history_days):
        return SeasonalFactor(1.0, False, _short_history(history_days))
    window_end = as_of - timedelta(days=YEAR_DAYS)
    window = (window_end, window_end + timedelta(days=horizon_days))
    source = (window_end - timedelta(days=horizon_days), window_end)
    covering = [p for p in periods if p.covers(source[0], window[1])]
    if not covering or growth_per_day is None:
        return SeasonalFactor(1.0, False, reference.reason + "; the activity sequences do not "
                              "reach back a year and a horizon to read the season from revenue")
    chosen = max(covering, key=lambda p: p.cutoff)
    in_window, in_source = chosen.between(*window), chosen.between(*source)
    if not (in_window > 0 and in_source > 0):
        return SeasonalFactor(1.0, False, reference.reason + "; no revenue a year back")
    trend = math.exp(growth_per_day * horizon_days)
    low, high = SEASONAL_FACTOR_BOUNDS
    factor = float(np.clip(in_window / in_source / trend, low, high))
    return SeasonalFactor(
        factor, True,
        f"seasonal from revenue: no training cutoff lies a year before the as-of date, so the "
        f"season is last year's revenue in the as-of window over the window before it "
        f"({in_window:,.0f} / {in_source:,.0f}, less growth of "
        f"{math.exp(growth_per_day * YEAR_DAYS) - 1:+.1%} a year): factor {factor:.3f}",
        in_window, in_source, math.exp(growth_per_day * YEAR_DAYS))


def growth_per_day(trailing_year: Sequence[tuple[date, float]]) -> float | None:
    """Daily log growth of revenue from ``(cutoff, revenue in the year before it)`` pairs
    (each a full year, so free of season): between the earliest and the latest cutoff."""
    usable = sorted((c, r) for c, r in trailing_year if r > 0)
    if len(usable) < 2 or usable[-1][0] == usable[0][0]:
        return None
    (first, first_revenue), (last, last_revenue) = usable[0], usable[-1]
    return math.log(last_revenue / first_revenue) / (last - first).days


@dataclass(frozen=True)
class Backtest:
    """One predictor's backtests and the correction carried to the as-of date."""

    predictor: str  # btyd | network
    pairs: list[dict[str, Any]]  # target, source, target/source log ratio, weight
    carried_share: float  # lambda: the share of a source's bias that recurs
    mean_squared_error: float  # of the target biases after shrinkage (inf without backtests)
    evidence: float  # summed pair weights
    source: str | None  # cutoff (ISO) the as-of date's correction is carried from
    source_log_ratio: float  # that window's bias (0 without a source)
    correction: float  # exp(lambda * source bias), within LEVEL_CORRECTION_BOUNDS
    # rule 8: each backtest's squared error with lambda fitted on the other backtests, weighted
    # mean (inf without backtests)
    out_of_sample_error: float = math.inf
    # rule 8 without backtests: the squared biases of the windows the predictor is measured on,
    # each within the correction bounds, weighted by maturity (inf without any)
    stand_in_error: float = math.inf
    stand_in_windows: int = 0  # the windows stand_in_error is read from


def carried_share(targets: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                  prior: float) -> float:
    """lambda in [0, 1]: weighted least squares of ``targets ~ lambda * sources`` with a ridge
    of :data:`SHRINK_RIDGE` towards ``prior`` (all arrays [P] log ratios; P may be 0)."""
    numerator = float(np.sum(weights * targets * sources)) + SHRINK_RIDGE * prior
    denominator = float(np.sum(weights * sources * sources)) + SHRINK_RIDGE
    return float(np.clip(numerator / denominator, 0.0, 1.0))


def held_out_errors(targets: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                    prior: float) -> np.ndarray:
    """Rule 8: each backtest's error ``target - lambda * source`` with lambda fitted on the
    other backtests only (leave one out; the prior alone for a single backtest), [P], each
    within the log of :data:`LEVEL_CORRECTION_BOUNDS`. A share fitted on a backtest predicts
    that backtest well by construction: with one backtest, its own error is near 0 whatever
    the next window does. A miss beyond the bounds says more about its window than about the
    level: a source a few days into the data, where BG/NBD missed eightfold, predicted with the
    share the other backtests carry, missed by a factor of four and alone made up most of the
    error of the sample's level."""
    everyone = np.arange(len(targets))
    errors = np.array([targets[i] - carried_share(targets[everyone != i], sources[everyone != i],
                                                  weights[everyone != i], prior) * sources[i]
                       for i in everyone], dtype=np.float64)
    return log_bounded(errors)


def log_bounded(log_ratios: Any) -> Any:
    """Log ratios within the logs of :data:`LEVEL_CORRECTION_BOUNDS` (arrays or floats)."""
    return np.clip(log_ratios, *_LOG_BOUNDS)


def bounded(factor: float) -> float:
    """``factor`` within :data:`LEVEL_CORRECTION_BOUNDS` (1.0 when not finite)."""
    low, high = LEVEL_CORRECTION_BOUNDS
    return float(np.clip(factor, low, high)) if math.isfinite(factor) else 1.0


def backtest(windows: Sequence[Window], predictor: str, horizon_days: int, as_of: date,
             reference: SeasonalReference) -> Backtest:
    """Backtests of carrying ``predictor``'s bias one lag forward, and its correction."""
    pairs = []
    for target in windows:
        source = source_window(windows, target.cutoff, reference.lag_days, horizon_days)
        if source is None or source is target:
            continue
        if predictor == "network" and target.network_trained_on:
            continue
        t, s = target.log_ratio(predictor), source.log_ratio(predictor)
        if t is None or s is None:
            continue
        weight = min(target.maturity(horizon_days), source.maturity(horizon_days))
        pairs.append({"target": target.cutoff.isoformat(), "source": source.cutoff.isoformat(),
                      "target_log_ratio": t, "source_log_ratio": s, "weight": weight})
    t = np.array([p["target_log_ratio"] for p in pairs], dtype=np.float64)
    s = np.array([p["source_log_ratio"] for p in pairs], dtype=np.float64)
    w = np.array([p["weight"] for p in pairs], dtype=np.float64)
    prior = 1.0 if reference.same_season else 0.0
    share = carried_share(t, s, w, prior)
    evidence = float(w.sum())
    mse, held_out = math.inf, math.inf
    if evidence > 0:
        mse = float(np.sum(w * (t - share * s) ** 2) / evidence)
        held_out = float(np.sum(w * held_out_errors(t, s, w, prior) ** 2) / evidence)
    source = source_window(windows, as_of, reference.lag_days, horizon_days)
    bias = source.log_ratio(predictor) if source is not None else None
    stand_in, measured = math.inf, 0
    if evidence <= 0:
        # no backtest: the as-of window's miss is unknown; the biases of every window the
        # predictor is measured on stand in for its size (each within the correction bounds:
        # a window further off says more about that window, a tiny or young one)
        biased = [(window.maturity(horizon_days), window.log_ratio(predictor))
                  for window in windows
                  if not (predictor == "network" and window.network_trained_on)]
        biased = [(weight, ratio) for weight, ratio in biased if ratio is not None and weight > 0]
        if biased:
            weights = np.array([weight for weight, _ in biased])
            ratios = log_bounded(np.array([ratio for _, ratio in biased]))
            stand_in = float(np.sum(weights * ratios**2) / weights.sum())
            measured = len(biased)
    return Backtest(predictor=predictor, pairs=pairs, carried_share=share,
                    mean_squared_error=mse, evidence=evidence,
                    source=source.cutoff.isoformat() if source is not None else None,
                    source_log_ratio=bias or 0.0,
                    correction=bounded(math.exp(share * (bias or 0.0))),
                    out_of_sample_error=held_out, stand_in_error=stand_in,
                    stand_in_windows=measured)


def network_share(btyd: Backtest, network: Backtest) -> float:
    """The network's share of the total: its inverse-error weight against BG/NBD's, shrunk
    towards 0 by ``evidence / (evidence + NETWORK_EVIDENCE_PRIOR)``; 0 without backtests."""
    if not (network.evidence > 0 and math.isfinite(network.mean_squared_error)):
        return 0.0
    inverse_network = 1.0 / max(network.mean_squared_error, _MSE_FLOOR)
    inverse_btyd = (1.0 / max(btyd.mean_squared_error, _MSE_FLOOR)
                    if math.isfinite(btyd.mean_squared_error) else 0.0)
    trust = network.evidence / (network.evidence + NETWORK_EVIDENCE_PRIOR)
    return float(trust * inverse_network / (inverse_network + inverse_btyd))


@dataclass(frozen=True)
class LevelEstimate:
    """The two coefficients of the spend factor and everything they were estimated from."""

    btyd_level_correction: float  # coefficient of BG/NBD's total
    network_level_weight: float  # coefficient of the network's own total (network_clv)
    network_share: float  # of the total, before the corrections
    btyd: Backtest
    network: Backtest
    calibration_scale: float  # calibrated over raw network total on the calibration window
    reference: SeasonalReference
    windows: list[Window] = field(default_factory=list)
    seasonal_factor: SeasonalFactor = field(
        default_factory=lambda: SeasonalFactor(1.0, False, "not computed"))

    @property
    def reason(self) -> str:
        """What was decided about the season, in words."""
        return (self.seasonal_factor.reason if self.seasonal_factor.applied
                else self.reference.reason)

    def to_metadata(self) -> dict[str, Any]:
        """The estimate as saved in the model metadata (``spend_level``)."""
        return {
            "btyd_level_correction": self.btyd_level_correction,
            "network_level_weight": self.network_level_weight,
            "network_share": self.network_share,
            "calibration_scale": self.calibration_scale,
            "seasonal": self.reference.seasonal or self.seasonal_factor.applied,
            "lag_days": self.reference.lag_days,
            "seasonal_factor": self.seasonal_factor.factor,
            "reason": self.reason,
            "seasonal_from_revenue": asdict(self.seasonal_factor),
            "btyd": asdict(self.btyd),
            "network": asdict(self.network),
            "windows": [{**asdict(w), "cutoff": w.cutoff.isoformat()} for w in self.windows],
        }


def history_days(t_days: np.ndarray) -> int:
    """The data's history at a cutoff, from its customers' ages (days since each one's first
    purchase): the age of the :data:`HISTORY_CUSTOMERS`-th oldest, so that a stray row years
    before the rest (a mistyped year) does not make two years of history, and with them a
    seasonal level, out of a few months; the oldest's with fewer customers."""
    ages = np.sort(np.asarray(t_days, dtype=np.float64)[~np.isnan(t_days)])[::-1]
    if not len(ages):
        return 0
    return int(ages[HISTORY_CUSTOMERS - 1] if len(ages) >= HISTORY_CUSTOMERS else ages[0])


def _history_days(windows: Sequence[Window], as_of: date) -> int:
    """Days of history at the as-of date, from the windows' own histories: those of the
    windows with :data:`HISTORY_CUSTOMERS` customers or more where there are any (an early
    window that holds only a stray row years before the rest counts that row's age, which would
    make two years of history out of it; int_clv__cutoffs counts from the tenth oldest
    customer's first purchase as well)."""
    counted = [w for w in windows if w.customers >= HISTORY_CUSTOMERS] or list(windows)
    return max((w.history_days + (as_of - w.cutoff).days for w in counted), default=0)


def reference_for(windows: Iterable[Window], horizon_days: int,
                  as_of: date) -> tuple[SeasonalReference, int]:
    """Rule 2's decision for these windows, and the history (days) at the as-of date."""
    ordered = sorted((w for w in windows if w.customers > 0), key=lambda w: w.cutoff)
    history = _history_days(ordered, as_of)
    return seasonal_reference(ordered, horizon_days, as_of, history), history


def level_source(windows: Iterable[Window], horizon_days: int, as_of: date) -> Window | None:
    """The window the as-of date's level is carried from (rule 2): the same window of the
    previous year in seasonal mode, else the window one horizon back (the validation window).
    The network's calibration is fitted on the same window, so that the season it carries is
    the one the level is corrected for."""
    ordered = sorted((w for w in windows if w.customers > 0), key=lambda w: w.cutoff)
    reference = seasonal_reference(ordered, horizon_days, as_of, _history_days(ordered, as_of))
    return source_window(ordered, as_of, reference.lag_days, horizon_days)


def calibrated_correction(network: Backtest, calibration_scale: float) -> float:
    """Rule 4: the network's carried correction relative to its calibrated total
    (``network_clv``), within :data:`LEVEL_CORRECTION_BOUNDS`: the carried bias of the raw
    network, ``exp(lambda * source bias)`` before its own bounds, over the calibration's scale on
    the source window. A raw network steadily ``K`` times too high has a calibration that scales
    it by about ``1 / K``; carried whole, its correction on the calibrated total is about 1."""
    carried = math.exp(network.carried_share * network.source_log_ratio)
    return bounded(carried / calibration_scale)


def estimate_level(windows: Iterable[Window], horizon_days: int, as_of: date,
                   calibration_scale: float = 1.0,
                   seasonal_factor: SeasonalFactor | None = None) -> LevelEstimate:
    """The spend level's coefficients from the fully observed windows (rules 1-4 above).

    Args:
        windows: every training cutoff's window, validation cutoff included.
        horizon_days: the horizon predicted.
        as_of: the date predicted from (the validation cutoff plus the horizon).
        calibration_scale: the calibrated network's total over its raw total on the window
            the calibration was fitted on (:func:`level_source`): the network's correction is
            relative to its raw total, ``network_clv`` is calibrated.
        seasonal_factor: rule 5's factor (:func:`revenue_seasonal_factor`), which multiplies
            both coefficients; none by default.
    """
    windows = sorted((w for w in windows if w.customers > 0), key=lambda w: w.cutoff)
    reference = seasonal_reference(windows, horizon_days, as_of,
                                   _history_days(windows, as_of))
    btyd = backtest(windows, "btyd", horizon_days, as_of, reference)
    network = backtest(windows, "network", horizon_days, as_of, reference)
    share = network_share(btyd, network)
    scale = calibration_scale if calibration_scale > 0 and math.isfinite(calibration_scale) \
        else 1.0
    season = seasonal_factor or SeasonalFactor(1.0, False, reference.reason)
    return LevelEstimate(
        btyd_level_correction=(1.0 - share) * btyd.correction * season.factor,
        network_level_weight=share * calibrated_correction(network, scale) * season.factor,
        network_share=share, btyd=btyd, network=network, calibration_scale=scale,
        reference=reference, windows=list(windows), seasonal_factor=season)


def _level_error(tested: Mapping[str, Any]) -> tuple[float | None, bool]:
    """Rule 8's squared log error of one predictor's level as saved, and whether backtests
    measured it: the backtests' out-of-sample error (for a model saved before it was kept, their
    in-sample one); without backtests the stand-in, or for a model saved before it was kept the
    source window's bias squared; None when there is nothing."""
    backtested = tested.get("out_of_sample_error" if "out_of_sample_error" in tested
                            else "mean_squared_error")
    if backtested is not None and math.isfinite(float(backtested)):
        return float(backtested), True
    error = tested.get("stand_in_error")
    if error is not None and math.isfinite(float(error)):
        return float(error), False
    if tested.get("source") is None or "stand_in_error" in tested:
        return None, False
    return float(tested.get("source_log_ratio") or 0.0) ** 2, False


def level_log_sd(metadata: Mapping[str, Any]) -> float | None:
    """Rule 8: the standard deviation of ``log(actual total / predicted total)`` that a saved
    model's level showed in its backtests: the out-of-sample squared errors of BG/NBD's and the
    network's carried corrections (each backtest predicted with the share fitted on the others,
    :func:`held_out_errors`) weighted by their shares of the total (each at least
    ``_MSE_FLOOR``). A predictor without backtests counts the squared biases it showed on the
    windows it is measured on (maturity-weighted, each within the correction bounds), or for a
    model saved before those were kept, the one on the window the level is carried from; None
    when it has none of these (or the model was saved before backtests were kept)."""
    spend = metadata.get("spend_level") or {}
    share = float(spend.get("network_share") or 0.0)
    variance = 0.0
    for predictor, weight in (("btyd", 1.0 - share), ("network", share)):
        if weight <= 0.0:
            continue
        error, _ = _level_error(spend.get(predictor) or {})
        if error is None:
            return None
        variance += weight * max(error, _MSE_FLOOR)
    return math.sqrt(variance) if variance > 0.0 else None


def capped_correction_note(metadata: Mapping[str, Any]) -> str | None:
    """Which carried corrections reached :data:`LEVEL_CORRECTION_BOUNDS` and were cut to them,
    in words (the bias carried was larger than the bound lets through, so the level follows it
    only part of the way): for BG/NBD ``exp(lambda * source bias)``, for the network the same
    over the calibration's scale (rule 4), each only when it has a share. None when neither."""
    spend = metadata.get("spend_level") or {}
    share = float(spend.get("network_share") or 0.0)
    scale = float(spend.get("calibration_scale") or 1.0)
    notes = []
    for predictor, weight, name, over in (("btyd", 1.0 - share, "BG/NBD", 1.0),
                                          ("network", share, "the network", scale)):
        tested = spend.get(predictor) or {}
        if weight <= 0.0 or not tested.get("source") or over <= 0.0:
            continue
        exponent = float(tested.get("carried_share") or 0.0) * float(
            tested.get("source_log_ratio") or 0.0)
        carried = math.exp(min(exponent, 700.0)) / over
        if carried != bounded(carried):
            notes.append(f"{name}'s carried correction of {carried:.2f} is cut to "
                         f"{bounded(carried):.2f}")
    if not notes:
        return None
    low, high = LEVEL_CORRECTION_BOUNDS
    return (" and ".join(notes) + f" (a correction lies within {low:g} and {high:g}: the level "
            "follows the bias it carries only that far)")


def level_log_sd_note(metadata: Mapping[str, Any]) -> str | None:
    """What :func:`level_log_sd` rests on, in words, decided as it decides: the backtest windows
    counted for the predictors with a share and a backtest error (a window both predictors were
    backtested on counts once), or the biases that stand in for a predictor without (which make
    every range about as wide as those biases), and what would give backtests. None when there
    is no figure."""
    if level_log_sd(metadata) is None:
        return None
    spend = metadata.get("spend_level") or {}
    share = float(spend.get("network_share") or 0.0)
    targets: set[str] = set()
    stand_ins, in_sample, plural = [], False, False
    for predictor, weight, name in (("btyd", 1.0 - share, "BG/NBD"),
                                    ("network", share, "the network")):
        tested = spend.get(predictor) or {}
        if weight <= 0.0:
            continue
        _, backtested = _level_error(tested)
        if backtested:
            # a pair of no weight (a window without history at either end) counted for nothing
            targets.update(str(pair.get("target")) for pair in tested.get("pairs") or []
                           if pair.get("weight") is None or float(pair["weight"]) > 0)
            in_sample = in_sample or "out_of_sample_error" not in tested  # saved before
            continue
        # a source whose bias was undefined (an empty or overflowing total) was saved as 0
        ratio = float(tested.get("source_log_ratio") or 0.0)
        bias = f"{math.expm1(ratio):+.0%}" if ratio else "not measurable"
        counted = float(log_bounded(ratio))
        if "stand_in_error" in tested and counted != ratio:
            # the stand-in counts a bias within the correction bounds
            bias += f", counted as {math.expm1(counted):+.0%}"
        windows = int(tested.get("stand_in_windows") or 1)
        if windows > 1:
            plural = True
            stand_ins.append(f"{name}'s biases on the {windows} training windows (on the one "
                             f"it is carried from, {tested.get('source')}: {bias})")
        else:
            stand_ins.append(f"{name}'s bias on the window it is carried from "
                             f"({tested.get('source')}: {bias})")
    if not stand_ins:
        tests = len(targets)
        if in_sample and tests:
            return f"level_log_sd from {tests} backtest{'' if tests == 1 else 's'} of the level"
        if tests == 1:
            return ("level_log_sd from 1 backtest of the level, predicted without its own fit "
                    "(with the prior's share)")
        return (f"level_log_sd from {tests} backtests of the level, each predicted without its "
                "own fit" if tests else "level_log_sd from the level's backtests")
    lag = spend.get("lag_days")
    span = f"the {int(lag)}-day lag" if lag is not None else "the lag"
    remedy = ("training cutoffs a year before the latest training windows give backtests "
              "(clv_seasonal_backtests, by default 3)" if spend.get("seasonal") else
              "training cutoffs that span more than the lag, where the history holds them, "
              "give backtests")
    return ("level_log_sd: no backtest of the level (no two training windows with history lie "
            + span
            + " apart): " + " and ".join(stand_ins)
            + (" stand in, so every p10-p90 range is about as wide as those biases; "
               if plural else " stands in, so every p10-p90 range is about as wide as that "
               "bias; ") + remedy)


def season_revenue(periods: Sequence[RevenuePeriods], growth_per_day_: float | None,
                   as_of: date) -> dict[str, Any]:
    """What rule 9 reads at scoring, as saved in the model metadata (``spend_level``)."""
    return {"as_of": as_of.isoformat(), "growth_per_day": growth_per_day_,
            "periods": [{"cutoff": p.cutoff.isoformat(), "period_days": p.period_days,
                         "revenue": list(p.revenue)} for p in periods]}


@dataclass(frozen=True)
class SeasonShift:
    """Rule 9's factor on a saved model's level at a scoring date, and why."""

    factor: float
    note: str | None = None  # a log line when the date is not the model's own


def season_shift(metadata: Mapping[str, Any], as_of: date | None) -> SeasonShift:
    """Rule 9: the factor on a seasonal level for scoring at ``as_of`` (see the module
    docstring); 1 at the model's own as-of date, without a seasonal level, or for a model
    saved before the revenue was kept."""
    spend = metadata.get("spend_level") or {}
    saved = spend.get("season_revenue")
    horizon = int(metadata.get("horizon_days") or 0)
    if as_of is None or not spend.get("seasonal") or not saved or horizon >= YEAR_DAYS:
        return SeasonShift(1.0)
    trained = date.fromisoformat(saved["as_of"])
    shift = (as_of - trained).days
    if shift == 0:
        return SeasonShift(1.0)
    year = timedelta(days=YEAR_DAYS)
    windows = [(day - year, day - year + timedelta(days=horizon)) for day in (as_of, trained)]
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    periods = [RevenuePeriods(date.fromisoformat(p["cutoff"]), int(p["period_days"]),
                              tuple(float(v) for v in p["revenue"])) for p in saved["periods"]]
    covering = [p for p in periods if p.covers(start, end)]
    growth = saved.get("growth_per_day")
    if not covering or growth is None:
        return SeasonShift(1.0, f"the seasonal level is the season of the model's as-of date "
                                f"{trained}; the revenue it was trained on does not reach "
                                f"last year's window of {as_of}, so the level is left as it is: "
                                "retrain for this date (clv_retrain 'auto' or 'always')")
    chosen = max(covering, key=lambda p: p.cutoff)
    now, then = chosen.between(*windows[0]), chosen.between(*windows[1])
    if not (now > 0 and then > 0):
        return SeasonShift(1.0, f"no revenue a year before {as_of} or {trained}: the seasonal "
                                f"level of {trained} is left as it is")
    low, high = SEASONAL_FACTOR_BOUNDS
    factor = float(np.clip(now / then / math.exp(growth * shift), low, high))
    return SeasonShift(factor, f"the seasonal level of the model's as-of date {trained} moved "
                               f"to {as_of}: last year's revenue in the two windows "
                               f"({now:,.0f} / {then:,.0f}, less the trend over {shift} days): "
                               f"factor {factor:.4f} (clv.level rule 9)")


def level_coefficients(metadata: Mapping[str, Any],
                       as_of: date | None = None) -> tuple[float, float]:
    """``(btyd_level_correction, network_level_weight)`` of a saved model, for scoring at
    ``as_of`` (rule 9; none: the model's own date); a model saved before the network's
    weight existed has none (0), one without a correction 1.0."""
    correction = metadata.get("btyd_level_correction")
    weight = metadata.get("network_level_weight")
    factor = season_shift(metadata, as_of).factor
    return (float(correction) * factor if correction is not None else factor,
            float(weight) * factor if weight is not None else 0.0)


def model_rate_factor(metadata: Mapping[str, Any]) -> float:
    """The purchase-rate factor inside a saved model's probability (the production
    calibration's ``purchase_rate_factor``; 1.0 when it has none)."""
    production = (metadata.get("distribution_calibration") or {}).get("production") or {}
    factor = production.get("purchase_rate_factor")
    return float(factor) if factor is not None else 1.0


# --------------------------------------------------------------------------------------------
# Applying the level at a scoring run
# --------------------------------------------------------------------------------------------


def micro_units(values: np.ndarray) -> int:
    """Exact sum of ``values`` rounded to micro-units (halves away from zero, as a SQL cast to
    ``decimal(38, 6)`` rounds; NaN, infinities and values beyond :data:`MICRO_BOUND` as 0), as
    an integer count of micro-units: the same whatever the order the values are added in, so
    an engine can add them up in SQL."""
    return exact_sum(micro_values(values))


def micro_values(values: np.ndarray) -> np.ndarray:
    """Each of ``values`` in whole micro-units, rounded as :func:`micro_units` rounds."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        values = np.where(np.abs(values) <= MICRO_BOUND, values, 0.0)  # NaN compares False
    return (np.sign(values) * np.floor(np.abs(values) * _MICRO + 0.5)).astype(np.int64)


def exact_sum(micro: np.ndarray) -> int:
    """The sum of 64-bit integers as a Python integer, which does not overflow: a total of
    a few million customers' micro-units can pass 2**63 (spend in a currency of small units),
    so the high and low 32 bits are added apart, each within 64 bits."""
    micro = np.asarray(micro, dtype=np.int64)
    high = int(np.sum(micro >> 32, dtype=np.int64))  # |high| < 2**31 each
    low = int(np.sum(micro & 0xFFFFFFFF, dtype=np.int64))  # < 2**32 each
    return (high << 32) + low


@dataclass(frozen=True)
class SpendLevel:
    """The totals behind one scoring run's spend factor (sums over every scored customer)."""

    btyd_total: float  # sum of btyd_expected_spend at the as-of date (rule 7 applied)
    network_total: float  # sum of network_clv (rule 7 applied)
    btyd_level_correction: float  # the model's coefficient of BG/NBD's total
    network_level_weight: float = 0.0  # the model's coefficient of the network's own total
    # The purchase-rate factor already inside the model's probability (the season read from
    # revenue, clv.calibration rule 3); None for a run saved before the probability followed
    # the level, which keeps the network's probability.
    model_rate_factor: float | None = None
    # Customers counted as a tenth of each capped total (rule 7); the totals above are after
    # it.
    btyd_dominant: int = 0
    network_dominant: int = 0

    @property
    def spend_factor(self) -> float:
        if not self.network_total > 0:
            return 1.0
        return (self.btyd_total * self.btyd_level_correction / self.network_total
                + self.network_level_weight)

    def leveled_bound(self, bound: float | None) -> float | None:
        """An amount ``bound`` of the model's (:func:`clv.score.spend_bound`) at this spend
        level; None without one, or at a factor that is not positive."""
        factor = self.spend_factor
        return bound * factor if bound is not None and factor > 0 else None

    @property
    def purchase_rate_factor(self) -> float:
        """The factor on the purchase rate behind ``purchase_probability`` (rule 6): the spend
        factor, less what the model's probability already holds."""
        if self.model_rate_factor is None or not self.model_rate_factor > 0:
            return 1.0
        return max(self.spend_factor, 0.0) / self.model_rate_factor

    def dominance_note(self) -> str:
        """``; ...`` naming the customers rule 7 counted as a tenth of a total; empty if none."""
        if not (self.btyd_dominant or self.network_dominant):
            return ""
        return (f"; customers counted as a tenth of the total (each above a tenth of the plain "
                f"total): "
                f"{self.network_dominant} of the network's, {self.btyd_dominant} of BG/NBD's")

    def to_dict(self) -> dict[str, float | None]:
        return {**asdict(self), "spend_factor": self.spend_factor,
                "purchase_rate_factor": self.purchase_rate_factor}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpendLevel:
        rate = values.get("model_rate_factor")
        return cls(btyd_total=float(values["btyd_total"]),
                   network_total=float(values["network_total"]),
                   btyd_level_correction=float(values["btyd_level_correction"]),
                   network_level_weight=float(values.get("network_level_weight") or 0.0),
                   model_rate_factor=float(rate) if rate is not None else None,
                   btyd_dominant=int(values.get("btyd_dominant") or 0),
                   network_dominant=int(values.get("network_dominant") or 0))


@dataclass(frozen=True)
class CappedTotal:
    """One column's total as rule 7 reads it, from exact sums in micro-units: ``total`` over
    every customer, and ``dominant`` customers, each above a tenth of it, whose values add up
    to ``dominant_sum``."""

    total: int
    dominant_sum: int = 0
    dominant: int = 0

    @property
    def capped(self) -> float:
        """The total with each dominant customer counted as a tenth of the capped total: the
        others' total over ``1 - dominant / 10``, in currency; the plain total when the dominant
        customers hold all of it. In floats as the compiled SQL computes it."""
        rest = self.total - self.dominant_sum
        if rest <= 0:
            return float(self.total) / float(_MICRO)
        return float(DOMINANT_SHARE * rest) / float((DOMINANT_SHARE - self.dominant) * _MICRO)


def others(*columns: np.ndarray) -> np.ndarray:
    """Which rows to count in a backtest window (rule 7): all but those whose value in any of
    the non-negative ``columns`` is above :data:`DOMINANT_SHARE`'s share of that column's
    total; every row when the others have no value (such customers hold the whole total, as at
    scoring). A column whose total is not a finite number (an overflowing network total, which
    gives no backtest) leaves no one out."""
    values = [np.asarray(column, dtype=np.float64) for column in columns]
    keep = np.ones(len(values[0]), dtype=bool)
    for column in values:
        total = float(column.sum())
        if math.isfinite(total):
            keep &= ~(DOMINANT_SHARE * column > total)
    if not any(float(column[keep].sum()) > 0 for column in values):
        return np.ones(len(keep), dtype=bool)
    return keep


class MicroTotal:
    """A column's exact sum in micro-units, added batch by batch, with its largest values: a
    value above a tenth of a total of non-negative values is among its nine largest."""

    def __init__(self) -> None:
        self.total = 0
        self.largest = np.zeros(0, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        micro = micro_values(values)
        self.total += exact_sum(micro)
        both = np.concatenate([self.largest, micro])
        self.largest = np.sort(both)[::-1][:DOMINANT_SHARE]

    def result(self) -> CappedTotal:
        dominant = [int(v) for v in self.largest if DOMINANT_SHARE * int(v) > self.total]
        return CappedTotal(self.total, sum(dominant), len(dominant))


class LevelAccumulator:
    """Adds up the two totals batch by batch, exactly."""

    def __init__(self) -> None:
        self.btyd = MicroTotal()
        self.network = MicroTotal()

    def add(self, btyd_expected_spend: np.ndarray, network_clv: np.ndarray) -> None:
        self.btyd.add(btyd_expected_spend)
        self.network.add(network_clv)

    def level(self, btyd_level_correction: float, network_level_weight: float = 0.0,
              model_rate_factor: float | None = None) -> SpendLevel:
        return from_totals(self.btyd.result(), self.network.result(), btyd_level_correction,
                           network_level_weight, model_rate_factor)


def from_totals(btyd: CappedTotal, network: CappedTotal, btyd_level_correction: float,
                network_level_weight: float = 0.0,
                model_rate_factor: float | None = None) -> SpendLevel:
    """The spend level from the two columns' totals (rule 7 applied)."""
    return SpendLevel(btyd_total=btyd.capped, network_total=network.capped,
                      btyd_level_correction=float(btyd_level_correction),
                      network_level_weight=float(network_level_weight),
                      model_rate_factor=(float(model_rate_factor)
                                         if model_rate_factor is not None else None),
                      btyd_dominant=btyd.dominant, network_dominant=network.dominant)


def apply(network_values: np.ndarray, level: SpendLevel) -> np.ndarray:
    """``network_values`` (network_clv) at the spend level."""
    return np.asarray(network_values, dtype=np.float64) * level.spend_factor


def leveled_distribution(p: np.ndarray, mu: np.ndarray, level: SpendLevel,
                         alive: np.ndarray | None = None, frequency: np.ndarray | None = None,
                         shape: float | None = None, log_no_purchase: np.ndarray | None = None,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Rule 6: the network's ZILN (purchase probability ``p``, log-scale location ``mu``; [N]
    arrays, the spread sigma unchanged) at the spend level: ``(p', mu')`` with

        a   = min(max(alive, p), 1)       the share of the customer still active
        q   = p / a                       the probability that an active customer buys
        k   = shape + frequency           BG/NBD's gamma posterior of the customer's rate
        q'  = 1 - (1 + r * ((1 - q)^(-1/k) - 1))^(-k),  r = level.purchase_rate_factor
        p'  = a * q'
        mu' = mu + log(spend_factor) + log(p) - log(p')

    so ``p' * exp(mu' + sigma^2 / 2) = spend_factor * network_clv``: the expected value is
    ``predicted_clv``, and the quantiles are the leveled distribution's. ``q'`` is the chance of
    a purchase when every rate the gamma posterior allows is multiplied by ``r`` (a purchase
    rate known exactly, ``k`` without bound, gives ``1 - (1 - q)^r``, the form used when
    ``shape`` is None). ``alive`` is BG/NBD's probability that the customer is still active
    (``btyd_probability_alive``; 1 when not given or not finite), ``frequency`` the repeat
    purchases of the BTYD summary and ``shape`` the fit's ``r``. ``log_no_purchase`` is the
    network's log(1 - p) (its graph output of that name), which gives log(1 - q) as
    ``log(((1 - p) - (1 - a)) / a)``: from the logit, it keeps the digits that p, a float32
    output, loses where it rounds to 1 (1 - p would read no chance of not buying) or nears
    ``a`` (``a - p`` would cancel); where it is not given or not finite, 1 - q stands. Below
    :data:`SERIES_BELOW` logarithms and exponentials are short series, and exponents are
    bounded (the compiled SQL evaluates the same expressions, :mod:`clv.sql_scoring.query`)."""
    p = np.asarray(p, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    rate_factor = level.purchase_rate_factor
    if rate_factor == 1.0:
        leveled = p
    else:
        # np.where computes both branches: the one not taken may overflow, harmlessly
        with np.errstate(over="ignore", invalid="ignore"):
            leveled = _leveled_probability(p, alive, frequency, shape, rate_factor,
                                           log_no_purchase)
    shift = (math.log(max(level.spend_factor, TINY)) + np.log(np.maximum(p, TINY))
             - np.log(np.maximum(leveled, TINY)))
    return leveled, mu + shift


def _leveled_probability(p: np.ndarray, alive: np.ndarray | None,
                         frequency: np.ndarray | None, shape: float | None,
                         rate_factor: float, log_no_purchase: np.ndarray | None) -> np.ndarray:
    """``p'`` of :func:`leveled_distribution` for a purchase-rate factor other than 1."""
    alive = np.ones_like(p) if alive is None else np.asarray(alive, dtype=np.float64)
    alive = np.where(np.isfinite(alive), alive, 1.0)
    active = np.minimum(np.maximum(alive, p), 1.0)
    q = p / np.maximum(active, TINY)
    complement = np.log(np.maximum(1.0 - q, TINY))
    if log_no_purchase is not None:
        # 1 - q = (a - p) / a, with 1 - p from the network's own log(1 - p), L: the digits a
        # float32 p loses where it nears 1 (1 - p reads 0) or nears a below 1 (a - p cancels).
        # a - p is (1 - p) - (1 - a) from a half on (1 - a exact there), else a + (e^L - 1)
        # (1 - a would round away a small a). Not where p is above an alive below 1: q is then
        # 1 either way.
        exact = np.asarray(log_no_purchase, dtype=np.float64)
        bounded = np.maximum(exact, math.log(TINY))
        not_buying = np.exp(bounded)  # 1 - p
        grown = np.where(np.abs(bounded) > SERIES_BELOW, not_buying - 1.0,
                         bounded * (1.0 + bounded / 2.0 + bounded * bounded / 6.0))
        remaining = (np.where(active >= 0.5, not_buying - (1.0 - active), active + grown)
                     / np.maximum(active, TINY))
        complement = np.where(np.isfinite(exact) & ((q < 1.0) | (alive >= 1.0)),
                              np.log(np.maximum(remaining, TINY)), complement)
    # -log(1 - q), exact to float64 rounding at any size
    gap = -np.where(q > SERIES_BELOW, complement, -(q + q * q / 2.0 + q * q * q / 3.0))
    if shape is None:
        rate = rate_factor * gap
    else:
        repeat = np.zeros_like(p) if frequency is None else np.clip(
            np.nan_to_num(np.asarray(frequency, dtype=np.float64), nan=0.0), 0.0, 1e100)
        k = shape + repeat
        e = gap / k
        grown = np.where(e > SERIES_BELOW, np.exp(np.minimum(e, GROWTH_LIMIT)) - 1.0,
                         e * (1.0 + e / 2.0 + e * e / 6.0))
        g = rate_factor * grown
        log_growth = np.where(g > SERIES_BELOW, np.log(1.0 + g), g * (1.0 - g / 2.0 + g * g / 3.0))
        if rate_factor > 0.0:
            # past GROWTH_LIMIT, log(1 + f (e^e - 1)) = e + log f + log(1 + e^-e (1/f - 1)):
            # a small r (BG/NBD's shape, 0.001 where nearly all customers bought once) makes e
            # large for a likely buyer, and a capped e^e would take their probability to ~0
            tail = np.exp(-np.minimum(e, EXP_LIMIT)) * (1.0 / rate_factor - 1.0)
            log_growth = np.where(e > GROWTH_LIMIT, e + math.log(rate_factor) + np.log1p(tail),
                                  log_growth)
        rate = k * log_growth
    bought = np.where(rate > SERIES_BELOW, 1.0 - np.exp(-np.minimum(rate, EXP_LIMIT)),
                      rate * (1.0 - rate / 2.0 + rate * rate / 6.0))
    return active * bought
