"""The best prediction of future spend achievable from the observed history of generated data.

    python bench/history_reference.py      # metrics on the two generated sets of bench_accuracy

:func:`clv.synthetic.oracle.oracle` knows each customer's latent parameters (purchase rate,
dropout rate, death time, order value level, refund share); no model that sees only transactions
can reach it.
:func:`history_posterior_spend` is the honest ceiling instead: the posterior expected net spend in
``(as_of, as_of + horizon]`` given each customer's usable transactions up to the end of the as-of
day, under the generator's true population distributions (``GeneratorSettings``). Its ranking
metrics show how much headroom a history-based model has; it never reads ``data.latent``.

The generator's process and the posterior used here (times in days, ``S(a, b)`` the integrated
seasonal intensity month x weekday x hour of day between ``a`` and ``b``, in effective days):

* purchase rate ``lambda = f_k * Gamma(r, rate=alpha)`` with age band ``k`` (factor ``f_k``)
  unknown, i.e. a mixture of ``Gamma(r, rate=alpha / f_k)`` weighted by the age band shares;
  dropout rate ``mu ~ Gamma(s, rate=beta)``; lifetime ``Exponential(mu)`` after the first purchase
  at ``t0``; repeat purchases Poisson with intensity ``lambda * seasonality(t)`` while alive.
* With ``x`` repeats, the last at ``tx``, and the as-of end ``T`` the likelihood is, up to factors
  that do not depend on the parameters,
  ``lambda^x [exp(-lambda S(t0, T) - mu (T - t0)) + int_tx^T mu exp(-mu (tau - t0) -
  lambda S(t0, tau)) dtau]``: alive at ``T``, or dead at some ``tau`` after the last purchase.
  Both Gamma priors are conjugate to this, so lambda and mu are integrated out in closed form;
  only the death time ``tau`` needs a numerical integral (a per-customer grid, denser near ``tx``).
* Given (lambda, mu) and alive at ``T``, the expected orders in the horizon are
  ``lambda * D(mu)``, ``D`` the seasonality discounted by survival exactly as in the oracle
  (``_discounted_seasonality`` x ``_intraday_discount``); its expectation over mu's posterior is
  a generalized Gauss-Laguerre quadrature.
* Order values: ``log(value) = log(m) - sigma^2 / 2 + sigma * z`` around the customer level ``m``,
  ``log(m) ~ N(log(median) + log(country factor), sigma_c^2)`` with the country unknown (a
  mixture). The posterior of ``log(m)`` is normal per country (conjugate) and the countries are
  re-weighted by the marginal likelihood of the customer's mean log order value.
* Refunds: refund share ``p ~ Beta``; the posterior mean uses the customer's refund rows up to as-of
  against the orders whose refund would already be visible (a refund follows its order by a
  uniform 1-30 days, so orders of the last month count partially). This treats the count as
  binomial with that effective number of orders, a slight simplification of the exact
  Poisson-binomial likelihood. The refunded fraction of a refunded order is population-level.

The three parts are independent a priori and their data do not overlap, so the posterior expected
spend is the product of the expected orders, the expected order value and ``1 - E[p] * fraction``,
the same net-of-refunds definition as the oracle (refunds attributed to their order). The
customer attributes (country, age band) are ignored unless ``use_attributes`` is set, because the
benchmarks give the project only the transactions.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import gammaln, roots_genlaguerre

from clv import metrics
from clv.synthetic import (
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    GeneratedData,
    GeneratorSettings,
    daily_seasonality,
    generate,
    hour_profile,
    oracle,
)

# the oracle's private helpers: the horizon term matches it exactly
from clv.synthetic.oracle import _discounted_seasonality, _intraday_discount

HOURS_PER_DAY = 24
CHUNK_CUSTOMERS = 2_000  # customers per vectorised block (bounds the death-time grid's memory)
DEATH_GRID_POINTS = 400  # points of the per-customer death-time integral
LAGUERRE_NODES = 32  # nodes of the quadrature over the dropout rate's posterior


# --------------------------------------------------------------------------------------------
# observed history
# --------------------------------------------------------------------------------------------


def usable_transactions(transactions: pd.DataFrame) -> pd.DataFrame:
    """Parsed rows that the project would use: customer_id, seconds (since 1970), amount.

    Drops what the project's classification excludes: a missing customer, an unparseable
    timestamp or amount, and later copies of a transaction id.
    """
    customer = transactions["customer_id"]
    stamps = pd.to_datetime(
        transactions["transacted_at"], format="%Y-%m-%d %H:%M:%S", errors="coerce"
    )
    amount = pd.to_numeric(transactions["amount"], errors="coerce").to_numpy(dtype=np.float64)
    usable = (
        customer.notna().to_numpy()
        & (customer.fillna("") != "").to_numpy()
        & stamps.notna().to_numpy()
        & np.isfinite(amount)
    )
    frame = pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"].to_numpy()[usable],
            "customer_id": customer.to_numpy()[usable],
            "seconds": stamps.to_numpy()[usable].astype("datetime64[s]").astype(np.int64),
            "amount": amount[usable],
        }
    )
    frame = frame.sort_values("seconds", kind="stable").drop_duplicates("transaction_id")
    return frame.drop(columns="transaction_id").reset_index(drop=True)


def holdout_spend(data: GeneratedData, as_of: date, horizon_days: int) -> pd.DataFrame:
    """Actual net spend in (as_of, as_of + horizon_days], floored at 0, as bench_accuracy.py does.

    One row per customer with a usable transaction on or before the as-of date (customer_id,
    actual); refunds count on their own dates.
    """
    rows = usable_transactions(data.transactions)
    day = rows["seconds"].to_numpy() // SECONDS_PER_DAY
    as_of_day = _day_number(as_of)
    customers = np.unique(rows["customer_id"].to_numpy()[day <= as_of_day])
    window = rows[(day > as_of_day) & (day <= as_of_day + horizon_days)]
    spend = window.groupby("customer_id")["amount"].sum().clip(lower=0.0)
    frame = pd.DataFrame({"customer_id": customers})
    frame["actual"] = frame["customer_id"].map(spend).fillna(0.0).to_numpy(dtype=np.float64)
    return frame


def _day_number(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - date(1970, 1, 1)).days


def _summaries(rows: pd.DataFrame, settings: GeneratorSettings, end_s: int) -> pd.DataFrame:
    """Per-customer summary of the rows before ``end_s`` (seconds), in customer_id order.

    first_s / last_s: first and last order; repeats: orders - 1; orders and mean_log_value of the
    order amounts; refunds: refund rows; refund_exposure: expected share of the orders whose refund
    would be visible by ``end_s`` if they were refunded (summed over orders).
    """
    rows = rows[rows["seconds"] < end_s]
    orders = rows[rows["amount"] > 0]
    delay_low, delay_high = settings.refund_delay_days
    age_days = (end_s - orders["seconds"].to_numpy()) / SECONDS_PER_DAY
    visible = np.clip((age_days - delay_low) / (delay_high - delay_low), 0.0, 1.0)
    orders = orders.assign(log_value=np.log(orders["amount"].to_numpy()), visible=visible)
    grouped = orders.groupby("customer_id", sort=True)
    summary = pd.DataFrame(
        {
            "first_s": grouped["seconds"].min(),
            "last_s": grouped["seconds"].max(),
            "orders": grouped["seconds"].size(),
            "mean_log_value": grouped["log_value"].mean(),
            "refund_exposure": grouped["visible"].sum(),
        }
    )
    refunds = rows[rows["amount"] < 0].groupby("customer_id").size()
    summary["refunds"] = refunds.reindex(summary.index, fill_value=0).to_numpy()
    summary["repeats"] = summary["orders"] - 1
    return summary.rename_axis("customer_id").reset_index()


# --------------------------------------------------------------------------------------------
# posterior parts
# --------------------------------------------------------------------------------------------


def _cumulative_intensity(settings: GeneratorSettings, n_days: int) -> NDArray[np.float64]:
    """Integrated seasonal intensity (effective days) at every whole hour from the start.

    Linear within each hour, exactly like the generator's time scale.
    """
    days = np.datetime64(settings.start_date, "D") + np.arange(n_days)
    hourly = daily_seasonality(days, settings)[:, None] * hour_profile(settings)[None, :]
    return np.concatenate(([0.0], np.cumsum(hourly.ravel() / HOURS_PER_DAY)))


def _horizon_discount(
    settings: GeneratorSettings, as_of: date, horizon_days: int, rate: NDArray[np.float64]
) -> NDArray[np.float64]:
    """E[D(mu)] for mu ~ Gamma(s, rate) (per customer), D the oracle's discounted seasonality.

    Generalized Gauss-Laguerre: int mu^(s-1) e^(-rate mu) D(mu) dmu / (Gamma(s) rate^-s)
    = sum_i w_i D(x_i / rate) / Gamma(s).
    """
    shape = settings.dropout_shape
    nodes, weights = roots_genlaguerre(LAGUERRE_NODES, shape - 1.0)
    days = np.datetime64(as_of + timedelta(days=1), "D") + np.arange(horizon_days)
    seasonality = daily_seasonality(days, settings)
    mu = (nodes[None, :] / rate[:, None]).ravel()
    discount = _discounted_seasonality(seasonality, mu) * _intraday_discount(mu, settings)
    return discount.reshape(rate.size, -1) @ weights / np.exp(gammaln(shape))


def _expected_orders(
    summary: pd.DataFrame,
    settings: GeneratorSettings,
    as_of: date,
    horizon_days: int,
    band_weights: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Posterior expected orders in the horizon and probability alive at as-of, per customer.

    ``band_weights`` (customers x age bands, or 1 x age bands) is the prior over the age band,
    whose factor scales the purchase rate. Everything is relative to a per-customer reference
    (the largest integrand) so that customers with hundreds of orders do not underflow.
    """
    r, alpha = settings.purchase_shape, settings.purchase_rate
    s, beta = settings.dropout_shape, settings.dropout_rate
    start_s = _day_number(settings.start_date) * SECONDS_PER_DAY
    end_days = _day_number(as_of) + 1 - _day_number(settings.start_date)
    knots = _cumulative_intensity(settings, end_days)
    knot_hours = np.arange(knots.size, dtype=np.float64)
    end_hours = float(end_days * HOURS_PER_DAY)

    first = (summary["first_s"].to_numpy() - start_s) / SECONDS_PER_HOUR
    last = (summary["last_s"].to_numpy() - start_s) / SECONDS_PER_HOUR
    shape_post = r + summary["repeats"].to_numpy(dtype=np.float64)  # r + x
    age_days = (end_hours - first) / HOURS_PER_DAY  # T - t0
    base = np.interp(first, knot_hours, knots)
    exposure = knots[-1] - base  # S(t0, T)
    exposure_last = np.interp(last, knot_hours, knots) - base  # S(t0, tx)

    band_rates = alpha / np.asarray(settings.age_band_rate_factors, dtype=np.float64)  # (K,)
    with np.errstate(divide="ignore"):
        log_prior = np.log(band_weights) + r * np.log(band_rates)  # (n or 1, K)

    def log_rate_term(covered: NDArray[np.float64]) -> NDArray[np.float64]:
        """log of w_k alpha_k^r (alpha_k + S)^-(r + x): S (n,) gives (n, K), S (n, G) (n, K, G)."""
        if covered.ndim == 1:
            return log_prior - shape_post[:, None] * np.log(band_rates + covered[:, None])
        return log_prior[:, :, None] - shape_post[:, None, None] * np.log(
            band_rates[None, :, None] + covered[:, None, :]
        )

    # alive at T: lambda and mu integrated in closed form
    reference = np.max(log_rate_term(exposure_last), axis=1)  # integrand maximum, at tau = tx
    alive_rate = np.exp(log_rate_term(exposure) - reference[:, None])  # (n, K)
    survival = (beta / (beta + age_days)) ** s  # E[exp(-mu (T - t0))]
    alive = alive_rate.sum(axis=1) * survival
    # expected horizon orders while alive: E[lambda] brings (r + x) / (alpha_k + S(t0, T))
    rate_factor = shape_post[:, None] / (band_rates + exposure[:, None])
    # and mu's posterior given survival to T is Gamma(s, beta + T - t0)
    future = (
        (alive_rate * rate_factor).sum(axis=1)
        * survival
        * _horizon_discount(settings, as_of, horizon_days, beta + age_days)
    )

    # dead at tau in (tx, T]: E[mu exp(-mu u)] = s beta^s (beta + u)^-(s + 1), tau on a grid that
    # is dense near tx (tau - tx grows with the square of a uniform midpoint grid)
    u = (np.arange(DEATH_GRID_POINTS) + 0.5) / DEATH_GRID_POINTS
    span = end_hours - last
    tau = last[:, None] + span[:, None] * u**2  # hours, (n, G)
    step_days = span[:, None] * (2.0 * u / DEATH_GRID_POINTS) / HOURS_PER_DAY
    death_density = s * beta**s * (beta + (tau - first[:, None]) / HOURS_PER_DAY) ** -(s + 1.0)
    covered = np.interp(tau, knot_hours, knots) - base[:, None]
    rate_terms = np.exp(log_rate_term(covered) - reference[:, None, None])  # (n, K, G)
    dead = np.einsum("nkg,ng->n", rate_terms, death_density * step_days)

    total = alive + dead
    return future / total, alive / total


def _expected_order_value(
    summary: pd.DataFrame, settings: GeneratorSettings, country_weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Posterior mean of the customer's order value level m, per customer.

    Per country c: log(m) ~ N(mu_c, sigma_c^2) a priori and each order's log value + sigma^2 / 2
    is N(log(m), sigma^2). The mean of n of them is sufficient; it re-weights the countries by
    N(mean; mu_c, sigma_c^2 + sigma^2 / n).
    """
    sigma_c2 = settings.order_value_customer_sigma**2
    sigma2 = settings.order_value_order_sigma**2
    prior_mean = np.log(settings.order_value_median) + np.log(
        np.asarray(settings.country_order_value_factors, dtype=np.float64)
    )  # (C,)
    n = summary["orders"].to_numpy(dtype=np.float64)[:, None]
    observed = summary["mean_log_value"].to_numpy()[:, None] + sigma2 / 2.0
    precision = 1.0 / sigma_c2 + n / sigma2
    post_mean = (prior_mean / sigma_c2 + n * observed / sigma2) / precision  # (n, C)
    spread = sigma_c2 + sigma2 / n
    with np.errstate(divide="ignore"):
        log_weight = np.log(country_weights) - (observed - prior_mean) ** 2 / (2.0 * spread)
    weight = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
    level = np.exp(post_mean + 0.5 / precision)
    return (weight * level).sum(axis=1) / weight.sum(axis=1)


def _expected_refund_fraction(
    summary: pd.DataFrame, settings: GeneratorSettings
) -> NDArray[np.float64]:
    """Posterior mean of the refund share p times the mean refunded fraction of a refund.

    Beta(a + k, b + n_eff - k) with k visible refunds and n_eff the orders whose refund would be
    visible by as-of (a binomial approximation; see the module docstring).
    """
    a = settings.refund_probability * settings.refund_concentration
    b = (1.0 - settings.refund_probability) * settings.refund_concentration
    refunds = summary["refunds"].to_numpy(dtype=np.float64)
    exposure = np.maximum(summary["refund_exposure"].to_numpy(), refunds)
    share = (a + refunds) / (a + b + exposure)
    return share * settings.mean_refund_fraction_if_refunded


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------


def _one_hot(labels: pd.Series, names: tuple[str, ...]) -> NDArray[np.float64]:
    """Customers x names indicator matrix."""
    index = pd.Categorical(labels, categories=list(names)).codes
    matrix = np.zeros((index.size, len(names)))
    matrix[np.arange(index.size), index] = 1.0
    return matrix


def history_posterior_spend(
    data: GeneratedData, as_of: date, horizon_days: int, use_attributes: bool = False
) -> pd.DataFrame:
    """Posterior expected net spend in (as_of, as_of + horizon_days] given the observed history.

    One row per customer with a usable transaction on or before the as-of date, in customer_id
    order: customer_id, expected_spend, expected_orders, probability_alive (at the end of the
    as-of day), expected_order_value (gross) and expected_refund_fraction. Uses only the usable
    transaction rows up to as-of and ``data.settings``; with ``use_attributes`` also each
    customer's country and age band from ``data.customers``.
    """
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    settings = data.settings
    if not settings.start_date <= as_of <= settings.end_date:
        raise ValueError("as_of must lie within the generated period")
    end_s = (_day_number(as_of) + 1) * SECONDS_PER_DAY
    summary = _summaries(usable_transactions(data.transactions), settings, end_s)

    if use_attributes:
        attributes = summary[["customer_id"]].merge(data.customers, on="customer_id", how="left")
        band_weights = _one_hot(attributes["age_band"], settings.age_bands)
        country_weights = _one_hot(attributes["country"], settings.countries)
    else:
        band_weights = _normalised(settings.age_band_weights)[None, :]
        country_weights = _normalised(settings.country_weights)[None, :]

    orders, alive = np.zeros(len(summary)), np.zeros(len(summary))
    for lo in range(0, len(summary), CHUNK_CUSTOMERS):
        part = summary.iloc[lo : lo + CHUNK_CUSTOMERS]
        weights = band_weights[lo : lo + CHUNK_CUSTOMERS] if use_attributes else band_weights
        orders[lo : lo + len(part)], alive[lo : lo + len(part)] = _expected_orders(
            part, settings, as_of, horizon_days, weights
        )
    value = _expected_order_value(summary, settings, country_weights)
    refund = _expected_refund_fraction(summary, settings)

    frame = summary[["customer_id"]].copy()
    frame["expected_spend"] = orders * value * (1.0 - refund)
    frame["expected_orders"] = orders
    frame["probability_alive"] = alive
    frame["expected_order_value"] = value
    frame["expected_refund_fraction"] = refund
    return frame


def _normalised(weights: tuple[float, ...]) -> NDArray[np.float64]:
    """Weights scaled to sum to one."""
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()


# --------------------------------------------------------------------------------------------
# command line: the generated sets of bench_accuracy.py
# --------------------------------------------------------------------------------------------


def _report(name: str, closed_cohort: bool) -> None:
    """Print the reference's and the oracle's metrics on one generated set."""
    as_of, horizon = date(2023, 12, 31), 365
    settings = GeneratorSettings(
        n_customers=10_000, start_date=date(2021, 1, 1), end_date=date(2024, 12, 31),
        seed=2024, closed_cohort=closed_cohort, with_events=False,
    )
    data = generate(settings)
    started = time.perf_counter()
    reference = history_posterior_spend(data, as_of, horizon)
    seconds = time.perf_counter() - started
    with_attributes = history_posterior_spend(data, as_of, horizon, use_attributes=True)
    actual = holdout_spend(data, as_of, horizon)
    predictors = {
        "history reference": reference,
        "history reference + country, age band": with_attributes,
        "oracle (latent parameters)": oracle(data, as_of, horizon),
    }
    y = actual["actual"].to_numpy()
    print(f"\n### {name}: as of {as_of}, horizon {horizon} days, {len(actual):,} customers, "
          f"actual total {y.sum():,.0f} (reference computed in {seconds:.1f} s)\n")
    print("| model | norm. Gini | aggregate error | decile MAPE | total |")
    print("|---|---|---|---|---|")
    for label, frame in predictors.items():
        aligned = actual[["customer_id"]].merge(frame, on="customer_id", how="left")
        predicted = aligned["expected_spend"].fillna(0.0).to_numpy(dtype=np.float64)
        scores = metrics.evaluate(y, predicted)
        print(f"| {label} | {scores['normalized_gini']:.3f} | {scores['aggregate_error']:+.1%} | "
              f"{scores['decile_mape']:.3f} | {predicted.sum():,.0f} |")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    for name, closed_cohort in (("generated", False), ("closed_cohort", True)):
        _report(name, closed_cohort)


if __name__ == "__main__":
    main()
