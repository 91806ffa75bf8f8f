"""Classic "buy till you die" models: BG/NBD for purchase counts and Gamma-Gamma for order value.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):

* while alive, a customer buys according to a Poisson process with rate ``lambda``,
  ``lambda ~ Gamma(shape=r, rate=alpha)`` across customers;
* after every repeat purchase the customer drops out with probability ``p``,
  ``p ~ Beta(a, b)`` across customers.

Each customer is summarised by ``frequency`` (number of repeat purchases, ``x``), ``recency``
(time from first to last purchase, ``t_x``) and ``T`` (time from first purchase to the end of the
observation window). Any time unit may be used as long as it is used consistently; ``alpha`` is
expressed in that unit and ``r``, ``a``, ``b`` are unit free. Internally, times are rescaled to a
data-driven unit for better conditioning and the parameters are converted back.

Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the values of a customer's transactions
are ``Gamma(shape=p, rate=nu)`` with ``nu ~ Gamma(shape=q, rate=v)`` across customers, and the
model is fitted to each repeat customer's number of transactions and mean transaction value.

All functions are vectorised over customers; arrays of per-customer values have shape ``(n,)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.linalg import eigh_tridiagonal
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

# Bounds for the log-parameters during optimisation (parameters in internal, rescaled units).
_LOG_BOUND = 18.0
# Number of Gauss-Jacobi nodes used when the closed form of the expected purchases is unusable.
_QUADRATURE_NODES = 160
# Below this distance from a = 1 the closed form divides two tiny numbers; quadrature is used.
_A_NEAR_ONE = 1e-4


# --------------------------------------------------------------------------------------------
# Parameter containers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters.

    Attributes:
        r, alpha: shape and rate of the Gamma distribution of purchase rates (``alpha`` is in the
            time unit of the data the model was fitted on).
        a, b: parameters of the Beta distribution of the dropout probability.
        converged: whether the optimiser reported convergence (or the projected gradient was
            negligible). Parameters are returned even when this is ``False``.
        log_likelihood: total (weighted) log-likelihood at the returned parameters, in the
            fitting time unit, without the penalty term; ``nan`` if unknown.
    """

    r: float
    alpha: float
    a: float
    b: float
    converged: bool = True
    log_likelihood: float = float("nan")

    def rescale_time(self, factor: float) -> BGNBDParams:
        """Parameters for times measured in a unit ``factor`` times smaller.

        For example ``params_in_weeks.rescale_time(7.0)`` gives parameters for times in days.
        Only ``alpha`` changes; the log-likelihood depends on the time unit and is reset to nan.
        """
        if not factor > 0:
            raise ValueError("factor must be positive")
        return replace(self, alpha=self.alpha * float(factor), log_likelihood=float("nan"))


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters.

    Attributes:
        p: shape of the per-transaction value distribution.
        q, v: shape and rate of the Gamma distribution of the per-customer rate ``nu``
            (``v`` is in the currency unit of the data).
        converged: whether the optimiser reported convergence.
        log_likelihood: total (weighted) log-likelihood at the returned parameters; nan if unknown.
    """

    p: float
    q: float
    v: float
    converged: bool = True
    log_likelihood: float = float("nan")

    @property
    def population_mean(self) -> float:
        """Population mean transaction value ``p * v / (q - 1)``; nan when ``q <= 1`` (infinite)."""
        if self.q <= 1.0:
            return float("nan")
        return self.p * self.v / (self.q - 1.0)


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _dot(u: FloatArray, v: FloatArray) -> float:
    """Inner product of two ``(n,)`` arrays without BLAS (whose threading is slow for the
    repeated medium-sized products of the likelihood on a busy machine)."""
    return float(np.sum(u * v))


def _as_1d(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _check_rft(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = _as_1d("frequency", frequency)
    tx = _as_1d("recency", recency)
    big_t = _as_1d("T", T)
    if not (x.shape == tx.shape == big_t.shape):
        raise ValueError("frequency, recency and T must have the same length")
    if x.size == 0:
        raise ValueError("at least one customer is required")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must contain non-negative integers")
    if np.any(tx < 0) or np.any(big_t < 0):
        raise ValueError("recency and T must be non-negative")
    tol = 1e-9 * np.maximum(1.0, np.abs(big_t))
    if np.any(tx > big_t + tol):
        raise ValueError("recency must not exceed T")
    return x, np.minimum(tx, big_t), big_t


def _check_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = _as_1d("weights", weights)
    if w.shape != (n,):
        raise ValueError("weights must have one value per customer")
    if np.any(w < 0) or not np.sum(w) > 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return w


# --------------------------------------------------------------------------------------------
# BG/NBD likelihood
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FrequencyIndex:
    """Distinct frequencies ``values`` (shape ``(k,)``) and ``inverse`` (shape ``(m,)``) with
    ``values[inverse] == x``; functions of ``x`` alone are evaluated once per distinct value."""

    values: FloatArray
    inverse: npt.NDArray[np.intp]

    @staticmethod
    def of(x: FloatArray) -> _FrequencyIndex:
        values, inverse = np.unique(x, return_inverse=True)
        return _FrequencyIndex(values, inverse.reshape(-1))


def _bgnbd_loglik_terms(
    r: float,
    alpha: float,
    a: float,
    b: float,
    fx: _FrequencyIndex,
    tx: FloatArray,
    T: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-customer log-likelihood and the pieces needed for its gradient.

    Returns ``(ll, w4, log_alpha_t, log_alpha_tx)``, each of shape ``(m,)``: ``w4`` is the share of
    the likelihood coming from the "dropped out right after the last purchase" branch (0 when
    ``x == 0``); the last two are ``log(alpha + T)`` and ``log(alpha + recency)``.
    """
    xu = fx.values
    pos_u = xu > 0
    head_u = (
        gammaln(r + xu)
        - gammaln(r)
        + gammaln(a + b)
        + gammaln(b + xu)
        - gammaln(b)
        - gammaln(a + b + xu)
    )
    log_dead_u = np.where(pos_u, np.log(a) - np.log(np.where(pos_u, b + xu - 1.0, 1.0)), -np.inf)
    rx = (r + xu)[fx.inverse]
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + tx)
    alive_branch = -rx * log_at
    dead_branch = log_dead_u[fx.inverse] - rx * log_atx
    top = np.maximum(alive_branch, dead_branch)
    mix = top + np.log1p(np.exp(-np.abs(alive_branch - dead_branch)))
    w4 = np.exp(dead_branch - mix)
    ll = head_u[fx.inverse] + r * np.log(alpha) + mix
    return ll, w4, log_at, log_atx


def bgnbd_log_likelihood(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-customer BG/NBD log-likelihood, shape ``(n,)``, in the time unit of ``params``."""
    x, tx, big_t = _check_rft(frequency, recency, T)
    fx = _FrequencyIndex.of(x)
    ll, _, _, _ = _bgnbd_loglik_terms(params.r, params.alpha, params.a, params.b, fx, tx, big_t)
    return ll


def _bgnbd_objective(
    log_params: FloatArray,
    fx: _FrequencyIndex,
    tx: FloatArray,
    T: FloatArray,
    w: FloatArray,
    penalizer: float,
    time_scale: float,
    beta_prior: float = 0.0,
) -> tuple[float, FloatArray]:
    """Mean weighted negative log-likelihood (+ penalty) and its gradient in log-parameters.

    ``log_params`` (shape ``(4,)``) are the logs of ``(r, alpha, a, b)`` with ``alpha`` in the
    internal time unit; ``tx``, ``T`` and ``w`` have shape ``(m,)``. The penalty
    ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` uses ``alpha`` in the caller's time unit;
    ``beta_prior * ((log a)^2 + (log b)^2)`` is a normal prior on the logs of the dropout
    Beta's parameters, centred on ``a = b = 1`` (unit free, so no time scale enters).
    """
    with np.errstate(all="ignore"):
        r, alpha, a, b = np.exp(log_params)
        ll, w4, log_at, log_atx = _bgnbd_loglik_terms(r, alpha, a, b, fx, tx, T)
        xu = fx.values
        pos_u = xu > 0
        wu = np.bincount(fx.inverse, weights=w, minlength=xu.size)  # weight per distinct x
        ww4 = w * w4
        ww3 = w - ww4
        wsum = w.sum()
        rx = (r + xu)[fx.inverse]
        # Parts that depend on x only are summed per distinct x.
        d_r = (
            _dot(wu, digamma(r + xu) - digamma(r) + np.log(alpha))
            - _dot(ww3, log_at)
            - _dot(ww4, log_atx)
        )
        d_alpha = r / alpha * wsum - _dot(ww3, rx / (alpha + T)) - _dot(ww4, rx / (alpha + tx))
        ww4u = np.bincount(fx.inverse, weights=ww4, minlength=xu.size)
        common_u = digamma(a + b) - digamma(a + b + xu)
        d_a = _dot(wu, common_u) + ww4u.sum() / a
        bx1_u = np.where(pos_u, b + xu - 1.0, 1.0)
        d_b = _dot(wu, common_u + digamma(b + xu) - digamma(b)) - _dot(ww4u, 1.0 / bx1_u)
        value = -float(_dot(w, ll)) / wsum
        grad = -np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b]) / wsum
        if penalizer > 0:
            caller = np.array([r, alpha * time_scale, a, b])
            value += penalizer * float(np.sum(caller**2))
            grad = grad + 2.0 * penalizer * caller**2
        if beta_prior > 0:
            value += beta_prior * float(log_params[2] ** 2 + log_params[3] ** 2)
            grad = grad + 2.0 * beta_prior * np.array([0.0, 0.0, log_params[2], log_params[3]])
    if not (np.isfinite(value) and np.all(np.isfinite(grad))):
        return 1e20, np.zeros(4)
    return value, grad


def _compress_rows(
    *columns: FloatArray, weights: FloatArray
) -> tuple[list[FloatArray], FloatArray]:
    """Collapse identical rows, summing their weights.

    Each column has shape ``(n,)``; returns the unique rows as columns of shape ``(m,)`` and the
    summed weights, shape ``(m,)``. Rows with zero weight are dropped.
    """
    keep = weights > 0
    cols = [c[keep] for c in columns]
    w = weights[keep]
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    change = np.zeros(order.size, dtype=bool)
    change[0] = True
    for c in sorted_cols:
        change[1:] |= c[1:] != c[:-1]
    group = np.cumsum(change) - 1
    summed = np.bincount(group, weights=w[order])
    return [c[change] for c in sorted_cols], summed


def _minimise_multistart(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    starts: list[FloatArray],
    n_params: int,
) -> tuple[FloatArray, float, bool]:
    """L-BFGS-B on log-parameters from a list of starting points (shape ``(n_params,)`` each).

    Starts are tried in order of their objective value; the remaining ones are only used when the
    previous runs did not converge. Returns the best ``(x, value, converged)`` found.
    """
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * n_params
    clipped = [np.clip(np.asarray(x0, dtype=np.float64), -_LOG_BOUND, _LOG_BOUND) for x0 in starts]
    clipped.sort(key=lambda x0: objective(x0)[0])
    best_x, best_val, best_ok = clipped[0], np.inf, False
    for x0 in clipped:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                objective,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8},
            )
        val, grad = objective(res.x)
        if not np.isfinite(val) or val >= 1e20:
            continue
        at_lower = (res.x <= -_LOG_BOUND + 1e-9) & (grad > 0)
        at_upper = (res.x >= _LOG_BOUND - 1e-9) & (grad < 0)
        projected = np.where(at_lower | at_upper, 0.0, grad)
        ok = bool(res.success) or float(np.max(np.abs(projected))) < 1e-6
        if val < best_val:
            best_x, best_val, best_ok = np.asarray(res.x, dtype=np.float64), val, ok
        if best_ok:
            break
    return best_x, best_val, best_ok


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
    beta_prior_sd: float | None = None,
    beta_prior_strength: float = 1.0,
) -> BGNBDParams:
    """Maximum-likelihood (or, with ``beta_prior_sd``, maximum a posteriori) fit of BG/NBD.

    Args:
        frequency: repeat purchases per customer, shape ``(n,)``, non-negative integers.
        recency: time from first to last purchase, shape ``(n,)``, ``0 <= recency <= T``
            (ignored for customers with ``frequency == 0``).
        T: time from first purchase to the end of observation, shape ``(n,)``.
        weights: optional non-negative customer weights, shape ``(n,)`` (e.g. counts of
            identical customers).
        penalizer: L2 penalty on ``(r, alpha, a, b)`` (``alpha`` in the caller's time unit) added to
            the mean negative log-likelihood.
        beta_prior_sd: when given, ``log a`` and ``log b`` get independent normal priors with
            mean 0 (``a = b = 1``) and this standard deviation, so a likelihood that is flat
            towards ``a, b -> 0`` (too little history to see dropout) stops at finite values.
        beta_prior_strength: how many customers the prior counts as (1: a proper prior, whose
            pull fades as data grow; the total weight: as strong as the data).

    Returns:
        Parameters in the caller's time unit. Optimisation problems never raise: the best point
        found is returned with ``converged=False``.
    """
    x, tx, big_t = _check_rft(frequency, recency, T)
    w = _check_weights(weights, x.size)
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")
    if beta_prior_sd is not None and not (beta_prior_sd > 0 and beta_prior_strength > 0):
        raise ValueError("beta_prior_sd and beta_prior_strength must be positive")
    tx = np.where(x > 0, tx, 0.0)  # recency carries no information for one-time buyers

    mean_t = float(_dot(w, big_t) / w.sum())
    time_scale = mean_t if mean_t > 0 else 1.0
    (ux, utx, ut), uw = _compress_rows(x, tx / time_scale, big_t / time_scale, weights=w)

    mean_x = float(_dot(uw, ux) / uw.sum())
    rate = max(mean_x, 1e-3)  # repeat purchases per (internal) unit of mean customer age

    fx = _FrequencyIndex.of(ux)

    # The prior's log-density over the total weight: the objective is a mean over customers.
    beta_prior = (0.0 if beta_prior_sd is None
                  else beta_prior_strength / (2.0 * beta_prior_sd**2 * float(uw.sum())))

    def objective(lp: FloatArray) -> tuple[float, FloatArray]:
        return _bgnbd_objective(lp, fx, utx, ut, uw, penalizer, time_scale, beta_prior)

    starts = [
        np.log([1.0, 1.0 / rate, 1.0, 1.0]),
        np.log([0.3, 0.3 / (2.0 * rate), 0.8, 2.5]),
        np.log([2.0, 2.0 / rate, 0.5, 5.0]),
    ]
    best, best_val, ok = _minimise_multistart(objective, starts, 4)
    r, alpha, a, b = np.exp(best)
    penalty = penalizer * (r**2 + (alpha * time_scale) ** 2 + a**2 + b**2) + beta_prior * float(
        best[2] ** 2 + best[3] ** 2)
    # Total log-likelihood in the caller's unit: rescaling time by s shifts it by -sum(w x) log s.
    ll_total = (-(best_val - penalty) * uw.sum()) - float(_dot(uw, ux)) * np.log(time_scale)
    return BGNBDParams(
        r=float(r),
        alpha=float(alpha * time_scale),
        a=float(a),
        b=float(b),
        converged=ok,
        log_likelihood=float(ll_total),
    )


# --------------------------------------------------------------------------------------------
# Degenerate BG/NBD fits
# --------------------------------------------------------------------------------------------

# A dropout Beta parameter below this puts nearly all of the distribution's mass at p = 0 or
# p = 1 (customers never drop out, or drop out at their first repeat purchase): the signature of
# a likelihood that keeps rising towards the boundary because the history is too short to show
# dropout (typical at early cutoffs). Fitted values on real data sets are 0.1 to 5.
DEGENERATE_BETA_BELOW = 0.01
# The refit's prior: log a, log b ~ Normal(0, sd^2), i.e. a and b within about e^(+-2 sd) of 1.
BETA_PRIOR_SD = 1.5
# Status of a checked fit (BGNBDFitCheck.status).
MAXIMUM_LIKELIHOOD, REGULARIZED, FALLBACK = "maximum_likelihood", "regularized", "fallback"


def bgnbd_degeneracy(params: BGNBDParams) -> str | None:
    """Why a BG/NBD fit is degenerate, or None when it is usable.

    Degenerate: a parameter that is not finite or sits at the optimiser's bounds, a dropout
    Beta parameter below :data:`DEGENERATE_BETA_BELOW`, or an optimiser that did not converge.
    """
    values = {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b}
    bad = [name for name, value in values.items() if not (np.isfinite(value) and value > 0)]
    if bad:
        return f"{', '.join(bad)} not a positive finite number"
    edge = np.exp(_LOG_BOUND - 1.0)
    at_bounds = [f"{name} = {value:.3g}" for name, value in values.items()
                 if name != "alpha" and not 1.0 / edge < value < edge]
    if at_bounds:
        return f"{', '.join(at_bounds)} at the optimiser's bounds"
    tiny = [f"{name} = {values[name]:.3g}" for name in ("a", "b")
            if values[name] < DEGENERATE_BETA_BELOW]
    if tiny:
        return (f"{' and '.join(tiny)}: the dropout distribution piles up at 0 and 1 (too "
                "little history to estimate dropout)")
    if not params.converged:
        return "the optimiser did not converge"
    return None


@dataclass(frozen=True)
class BGNBDFitCheck:
    """A BG/NBD fit with how it was obtained.

    Attributes:
        params: the parameters to use.
        status: ``maximum_likelihood`` (the plain fit was usable), ``regularized`` (it was
            degenerate; refitted with a weak prior on the dropout Beta) or ``fallback`` (the
            weak prior was not enough; refitted with a prior as strong as the data).
        reason: why the maximum-likelihood fit was not used (None when it was).
    """

    params: BGNBDParams
    status: str = MAXIMUM_LIKELIHOOD
    reason: str | None = None


def fit_bgnbd_checked(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> BGNBDFitCheck:
    """:func:`fit_bgnbd`, with a degenerate fit (:func:`bgnbd_degeneracy`) replaced.

    The replacement is a maximum a posteriori fit with ``log a, log b ~ N(0, BETA_PRIOR_SD^2)``
    counting as one customer: where the data say something about dropout it barely moves the
    fit, where they do not it keeps ``a`` and ``b`` finite. If that is still degenerate, the
    same prior counts as much as all the customers together (the fallback).
    """
    fitted = fit_bgnbd(frequency, recency, T, weights)
    reason = bgnbd_degeneracy(fitted)
    if reason is None:
        return BGNBDFitCheck(fitted)
    regularized = fit_bgnbd(frequency, recency, T, weights, beta_prior_sd=BETA_PRIOR_SD)
    if bgnbd_degeneracy(regularized) is None:
        return BGNBDFitCheck(regularized, REGULARIZED, reason)
    total = float(np.sum(_check_weights(weights, np.size(np.asarray(frequency)))))
    strong = fit_bgnbd(frequency, recency, T, weights, beta_prior_sd=BETA_PRIOR_SD,
                       beta_prior_strength=max(total, 1.0))
    return BGNBDFitCheck(strong, FALLBACK, reason)


# --------------------------------------------------------------------------------------------
# BG/NBD predictions
# --------------------------------------------------------------------------------------------


def bgnbd_probability_alive(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Probability that each customer is still alive at ``T``, shape ``(n,)``.

    Equals 1 for customers without repeat purchases (the model lets customers drop out only
    right after a repeat purchase).
    """
    x, tx, big_t = _check_rft(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    pos = x > 0
    with np.errstate(all="ignore"):
        log_odds_dead = (
            np.log(a)
            - np.log(np.where(pos, b + x - 1.0, 1.0))
            + (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))
        )
    return np.where(pos, expit(-log_odds_dead), 1.0)


def bgnbd_purchase_probability(
    params: BGNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Probability of at least one purchase in ``(T, T + t]``, shape ``(n,)``.

    A customer still active at ``T`` has the purchase rate's gamma posterior
    ``Gamma(r + x, alpha + T)`` and cannot drop out before buying again (BG/NBD lets customers
    drop out only right after a purchase), so the chance of no purchase is
    ``((alpha + T) / (alpha + T + t))^(r + x)``; a customer who has dropped out buys nothing:
    ``P(buy) = P(alive) * (1 - ((alpha + T) / (alpha + T + t))^(r + x))``.
    """
    x, tx, big_t = _check_rft(frequency, recency, T)
    horizon = np.broadcast_to(_as_1d("t", t), x.shape).astype(np.float64)
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    alive = bgnbd_probability_alive(params, x, tx, big_t)
    log_none = (params.r + x) * (np.log(params.alpha + big_t)
                                 - np.log(params.alpha + big_t + horizon))
    return alive * -np.expm1(log_none)


def _beta_gauss_rule(a: float, b: float, n: int) -> tuple[FloatArray, FloatArray]:
    """Gauss quadrature for the Beta(a, b) distribution on [0, 1].

    Returns nodes and weights, each of shape ``(n,)``, with weights summing to one, so that
    ``E[f(P)] ~= sum(weights * f(nodes))`` for ``P ~ Beta(a, b)``. Built with the Golub-Welsch
    algorithm from the recurrence of monic Jacobi polynomials with weight
    ``(1 - u)^(b - 1) (1 + u)^(a - 1)`` on [-1, 1]; the normalised weights avoid the overflow of
    the unnormalised moment for large ``b``.
    """
    al, be = b - 1.0, a - 1.0
    s = al + be
    k = np.arange(n, dtype=np.float64)
    diag = np.empty(n)
    diag[0] = (be - al) / (s + 2.0)
    kk = k[1:]
    diag[1:] = (be**2 - al**2) / ((2 * kk + s) * (2 * kk + s + 2.0))
    m = np.arange(1, n, dtype=np.float64)
    off_sq = np.empty(n - 1)
    off_sq[0] = 4.0 * (1.0 + al) * (1.0 + be) / ((2.0 + s) ** 2 * (3.0 + s))
    mm = m[1:]
    numerator = 4.0 * mm * (mm + al) * (mm + be) * (mm + s)
    off_sq[1:] = numerator / ((2 * mm + s) ** 2 * (2 * mm + s + 1.0) * (2 * mm + s - 1.0))
    nodes, vecs = eigh_tridiagonal(diag, np.sqrt(off_sq))
    weights = vecs[0] ** 2
    return (1.0 + nodes) / 2.0, weights / weights.sum()


def _expected_purchases_quadrature(
    params: BGNBDParams, t: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """Expected purchases of a customer known to be alive, by quadrature over the dropout rate.

    Given alive at ``T``, ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b + x)``
    independently, and ``E[Y(t) | lambda, p] = (1 - exp(-lambda p t)) / p``, so
    ``E[Y(t)] = E_p[(1 - (1 + p t / (alpha + T))^-(r + x)) / p]``. Inputs and output have the same
    shape ``(m,)``; the integral is grouped by distinct ``x``.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.empty(t.shape, dtype=np.float64)
    for xv in np.unique(x):
        sel = x == xv
        nodes, weights = _beta_gauss_rule(a, b + xv, _QUADRATURE_NODES)
        k = (t[sel] / (alpha + T[sel]))[:, None]
        f = -np.expm1(-(r + xv) * np.log1p(nodes[None, :] * k)) / nodes[None, :]
        out[sel] = np.sum(f * weights[None, :], axis=1)
    return out


def _given_alive_closed_form(
    r: float, alpha: float, a: float, b: float, t: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """Expected purchases in ``(T, T + t]`` for a customer alive at ``T``; arrays of shape ``(n,)``.

    Fader, Hardie & Lee (2005, eq. 10) without the probability-alive factor, with the Euler
    transformation ``2F1(r+x, b+x; c; z) = (1-z)^(c-r-x-b-x) 2F1(c-r-x, c-b-x; c; z)``,
    ``c = a + b + x - 1``. May contain non-finite values where the formula is unusable.
    """
    c = a + b + x - 1.0
    with np.errstate(all="ignore"):
        z = t / (alpha + T + t)
        log_1mz = np.log(alpha + T) - np.log(alpha + T + t)
        hyp = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        g = np.exp((a - 1.0) * log_1mz) * hyp
        return c * (1.0 - g) / (a - 1.0)


def bgnbd_expected_purchases(
    params: BGNBDParams,
    t: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Conditional expected number of repeat purchases in ``(T, T + t]``.

    Args:
        params: BG/NBD parameters (``alpha`` in the same time unit as ``t``, ``recency``, ``T``).
        t: horizon length, scalar or shape ``(n,)``.
        frequency, recency, T: customer summaries, shape ``(n,)``.

    Returns:
        Shape ``(n,)``, finite and non-negative. Uses the closed form of Fader, Hardie & Lee
        (2005, eq. 10) written with an Euler transformation of the hypergeometric function,
        ``2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)``, whose first two arguments do not grow
        with ``x``. For ``a`` within 1e-4 of 1 (where the formula is 0/0) it is interpolated
        linearly in ``a``. Where the closed form is not used (``a + b + x - 1 <= 0``, that is
        ``x = 0`` with ``a + b <= 1``, which the Euler form would also serve unless ``a + b - 1``
        is a whole number; a non-finite or out-of-bounds value) the same quantity is computed by
        Gauss-Jacobi quadrature over the dropout probability, which is accurate unless the
        horizon is thousands of times ``alpha + T`` or longer.
    """
    x, tx, big_t = _check_rft(frequency, recency, T)
    horizon = np.broadcast_to(_as_1d("t", t), x.shape).astype(np.float64)
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    alive = bgnbd_probability_alive(params, x, tx, big_t)

    if abs(a - 1.0) < _A_NEAR_ONE:
        # (1 - g) / (a - 1) is 0/0 at a = 1: interpolate linearly between a = 1 -/+ delta.
        lo = _given_alive_closed_form(r, alpha, 1.0 - _A_NEAR_ONE, b, horizon, x, big_t)
        hi = _given_alive_closed_form(r, alpha, 1.0 + _A_NEAR_ONE, b, horizon, x, big_t)
        share = (a - (1.0 - _A_NEAR_ONE)) / (2.0 * _A_NEAR_ONE)
        given_alive = lo + share * (hi - lo)
    else:
        given_alive = _given_alive_closed_form(r, alpha, a, b, horizon, x, big_t)
    # Without dropout the expectation would be (r + x) t / (alpha + T): an upper bound.
    upper = (r + x) * horizon / (alpha + big_t)
    bad = (
        ~np.isfinite(given_alive)
        | (a + b + x - 1.0 <= 0)
        | (given_alive < 0)
        | (given_alive > upper * (1.0 + 1e-8))
    )
    if np.any(bad):
        given_alive = given_alive.copy()
        given_alive[bad] = _expected_purchases_quadrature(params, horizon[bad], x[bad], big_t[bad])
    result = alive * np.maximum(given_alive, 0.0)
    return np.where(horizon > 0, result, 0.0)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


def _gg_check(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = _as_1d("frequency", frequency)
    m = _as_1d("monetary_value", monetary_value)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary_value must have the same length")
    if np.any(x < 0):
        raise ValueError("frequency must be non-negative")
    return x, m


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Per-customer Gamma-Gamma log-likelihood of the mean transaction value, shape ``(n,)``.

    Only meaningful for ``frequency > 0`` and ``monetary_value > 0``; other entries are nan.
    """
    x, m = _gg_check(frequency, monetary_value)
    ok = (x > 0) & (m > 0)
    xs, ms = np.where(ok, x, 1.0), np.where(ok, m, 1.0)
    ll = _gg_loglik(params.p, params.q, params.v, xs, ms)
    return np.where(ok, ll, np.nan)


def _gg_loglik(p: float, q: float, v: float, x: FloatArray, m: FloatArray) -> FloatArray:
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m)
    )


def _gg_objective(
    log_params: FloatArray,
    fx: _FrequencyIndex,
    x: FloatArray,
    log_m: FloatArray,
    m: FloatArray,
    w: FloatArray,
    penalizer: float,
    money_scale: float,
) -> tuple[float, FloatArray]:
    """Mean weighted negative log-likelihood and gradient in log ``(p, q, v)``.

    ``x``, ``log_m``, ``m`` and ``w`` have shape ``(n,)``; ``fx`` indexes the distinct ``x``. The
    penalty ``penalizer * (p^2 + q^2 + v^2)`` uses ``v`` in the caller's currency unit.
    """
    with np.errstate(all="ignore"):
        p, q, v = np.exp(log_params)
        xu = fx.values
        wu = np.bincount(fx.inverse, weights=w, minlength=xu.size)
        wsum = w.sum()
        pxu = p * xu
        log_x_u = np.log(xu)
        log_vxm = np.log(v + x * m)
        px = p * x
        # log-likelihood: terms in x only are summed per distinct x.
        head_u = gammaln(pxu + q) - gammaln(pxu) - gammaln(q) + pxu * log_x_u
        total = (
            _dot(wu, head_u)
            + wsum * q * np.log(v)
            + _dot(w, (px - 1.0) * log_m - (px + q) * log_vxm)
        )
        psi_all_u = digamma(pxu + q)
        d_p = _dot(wu, xu * (psi_all_u - digamma(pxu) + log_x_u)) + _dot(w * x, log_m - log_vxm)
        d_q = _dot(wu, psi_all_u) - wsum * (digamma(q) - np.log(v)) - _dot(w, log_vxm)
        d_v = wsum * q / v - _dot(w, (px + q) / (v + x * m))
        value = -float(total) / wsum
        grad = -np.array([d_p * p, d_q * q, d_v * v]) / wsum
        if penalizer > 0:
            caller = np.array([p, q, v * money_scale])
            value += penalizer * float(np.sum(caller**2))
            grad = grad + 2.0 * penalizer * caller**2
    if not (np.isfinite(value) and np.all(np.isfinite(grad))):
        return 1e20, np.zeros(3)
    return value, grad


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
) -> GammaGammaParams:
    """Maximum-likelihood fit of the Gamma-Gamma spend model.

    Args:
        frequency: number of (repeat) transactions per customer, shape ``(n,)``.
        monetary_value: mean value of those transactions, shape ``(n,)``.
        weights: optional non-negative customer weights, shape ``(n,)``.
        penalizer: L2 penalty on ``(p, q, v)`` added to the mean negative log-likelihood.

    Only customers with ``frequency > 0`` and ``monetary_value > 0`` are used; at least one is
    required. Monetary values are rescaled internally; ``v`` is returned in the caller's currency
    unit. Optimisation problems never raise (``converged=False`` instead).
    """
    x, m = _gg_check(frequency, monetary_value)
    w = _check_weights(weights, x.size)
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")
    use = (x > 0) & (m > 0) & (w > 0)
    if not np.any(use):
        raise ValueError("Gamma-Gamma needs at least one customer with frequency > 0 and spend > 0")
    x, m, w = x[use], m[use], w[use]
    money_scale = float(_dot(w, m) / w.sum())
    ms = m / money_scale

    fx = _FrequencyIndex.of(x)
    log_ms = np.log(ms)

    def objective(lp: FloatArray) -> tuple[float, FloatArray]:
        return _gg_objective(lp, fx, x, log_ms, ms, w, penalizer, money_scale)

    # Starting points with population mean spend p v / (q - 1) equal to the sample mean (1 here).
    starts = [np.log([p0, q0, (q0 - 1.0) / p0]) for p0, q0 in [(2.0, 3.0), (6.0, 4.0), (1.0, 10.0)]]
    best, best_val, ok = _minimise_multistart(objective, starts, 3)
    p, q, v = np.exp(best)
    penalty = penalizer * (p**2 + q**2 + (v * money_scale) ** 2)
    # Rescaling money by s shifts the log-likelihood of each mean by -log s.
    ll_total = -(best_val - penalty) * w.sum() - w.sum() * np.log(money_scale)
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        v=float(v * money_scale),
        converged=ok,
        log_likelihood=float(ll_total),
    )


def gamma_gamma_expected_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Conditional expected mean transaction value, shape ``(n,)``.

    ``E[Z | x, m] = p (v + x m) / (p x + q - 1)``: a weighted average of the population mean
    ``p v / (q - 1)`` and the customer's observed mean ``m``. Customers with ``frequency == 0``
    get the population mean (their ``monetary_value`` is ignored). Entries are nan where the
    expectation does not exist (``p x + q <= 1``, e.g. ``q <= 1`` for ``frequency == 0``).
    """
    x, m = _gg_check(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    m = np.where(x > 0, m, 0.0)
    denom = p * x + q - 1.0
    with np.errstate(all="ignore"):
        out = p * (v + x * m) / denom
    return np.where(denom > 0, out, np.nan)
