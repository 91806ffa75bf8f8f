"""The p10-p90 range of a segment's total (clv_segment_summary; its formula in
tests/reference.py, which the SQL must equal, tests/test_public_marts.py) on simulated
segments whose customers spend exactly as their ZILN says and whose level is off by a known
lognormal factor: the range is what it claims, give or take what a two-moment approximation
of a sum of heavy-tailed spends allows.

Measured here (seeded): with 20 to 2,000 customers each tail holds 5-10% of the simulated
totals (80-90% inside: the range errs wide, since the variance of a sum of lognormals comes
from rare large spends); with 5 customers 15% fall below p10."""

from __future__ import annotations

import numpy as np
import pytest
from reference import segment_total_range

from clv.score import ziln_variance_numpy

DRAWS = 10_000


def _simulate(customers: int, level_log_sd: float | None, seed: int):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, customers)
    sigma = rng.uniform(0.5, 1.5, customers)
    mu = rng.normal(3.0, 1.0, customers)
    mean = p * np.exp(mu + sigma**2 / 2)
    totals = np.zeros(DRAWS)
    for start in range(0, DRAWS, 1000):  # in slices: DRAWS x customers draws at most 2M
        buys = rng.random((1000, customers)) < p
        spends = np.exp(mu + sigma * rng.standard_normal((1000, customers)))
        totals[start:start + 1000] = (buys * spends).sum(axis=1)
    if level_log_sd:
        totals *= np.exp(rng.normal(-level_log_sd**2 / 2, level_log_sd, DRAWS))
    return mean, ziln_variance_numpy(p, mean, sigma), p, totals


def test_the_variance_is_the_ziln_spends():
    rng = np.random.default_rng(3)
    p, mu, sigma = np.array([0.3, 0.9, 1.0]), np.array([2.0, 0.5, 1.0]), np.array([0.6, 0.4, 0.0])
    mean = p * np.exp(mu + sigma**2 / 2)
    draws = (rng.random((400_000, 3)) < p) * np.exp(mu + sigma * rng.standard_normal((400_000, 3)))
    np.testing.assert_allclose(ziln_variance_numpy(p, mean, sigma), draws.var(axis=0), rtol=0.03,
                               atol=1e-9)
    assert ziln_variance_numpy(np.array([0.0]), np.array([0.0]), np.array([1.0]))[0] == 0.0


def test_a_bound_on_the_amount_tames_a_location_read_off_a_tiny_probability():
    # A lapsed customer: a purchase with a chance of 1e-6 and an expected value of 0.13 reads
    # an amount of 130,000. Bounded at 500, the purchase reads as 0.13 / 500 = 2.6e-4 likely,
    # with an amount of 500: the expected value stays 0.13. A customer whose amount
    # (mean / p = 200) is under the bound keeps their variance.
    p, mean, sigma = np.array([1e-6, 0.5]), np.array([0.13, 100.0]), np.array([1.0, 1.0])
    unbounded = ziln_variance_numpy(p, mean, sigma)
    bounded = ziln_variance_numpy(p, mean, sigma, bound=500.0)
    assert unbounded[0] == pytest.approx(0.13**2 * (np.e / 1e-6 - 1))
    assert bounded[0] == pytest.approx(0.13**2 * (np.e / 2.6e-4 - 1))
    assert bounded[1] == unbounded[1]
    # the draws of that purchase: the mean is the customer's, the variance the bounded one
    rng = np.random.default_rng(5)
    draws = (rng.random(20_000_000) < 2.6e-4) * np.exp(np.log(500.0) - 0.5
                                                        + rng.standard_normal(20_000_000))
    assert draws.mean() == pytest.approx(0.13, rel=0.05)
    assert draws.var() == pytest.approx(bounded[0], rel=0.1)
    # an amount above the bound even at a certain purchase: p reads as 1
    certain = ziln_variance_numpy(np.array([0.9]), np.array([900.0]), np.array([1.0]), 500.0)
    assert certain[0] == pytest.approx(900.0**2 * (np.e - 1))


@pytest.mark.parametrize("customers", [20, 200, 2000])
@pytest.mark.parametrize("level_log_sd", [None, 0.1, 0.3])
def test_each_tail_holds_about_a_tenth_of_the_totals(customers, level_log_sd):
    mean, variance, p, totals = _simulate(customers, level_log_sd, seed=customers)
    p10, p90 = segment_total_range(mean, variance, p, level_log_sd)
    assert abs(totals.mean() / mean.sum() - 1) < 0.03  # the simulation is the model
    below, above = np.mean(totals < p10), np.mean(totals > p90)
    assert 0.04 <= below <= 0.12 and 0.04 <= above <= 0.12, (below, above)


def test_a_segment_that_may_not_buy_at_all_has_a_p10_of_zero():
    # four customers at 30%: nobody buys with probability 0.7^4 = 24%
    mean, p = np.full(4, 60.0), np.full(4, 0.3)
    variance = ziln_variance_numpy(p, mean, np.full(4, 1.0))
    p10, p90 = segment_total_range(mean, variance, p, 0.1)
    assert p10 == 0.0 and p90 > mean.sum()
    # one customer at 5%: nobody buys 95% of the time, so the 90th percentile is 0 as well
    assert segment_total_range([5.0], [400.0], [0.05], None) == (0.0, 0.0)
