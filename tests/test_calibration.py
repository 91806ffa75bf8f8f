"""The calibration rules (clv.calibration): spend map, purchase-probability map and quantile
scale, each against an independent recomputation, and the wrapper that puts them in the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import lognorm

from clv.calibration import (
    PROBABILITY_SLOPE_BOUNDS,
    CalibratedNetwork,
    Calibration,
    _pool_adjacent_violators,
    apply,
    fit,
    fit_knots,
    fit_probability_bends,
    fit_probability_map,
    fit_sigma_scale,
    log_spend_map,
    tail_shares,
)
from clv.loss import ziln_mean
from clv.metrics import expected_calibration_error
from clv.network import ClvNetwork
from clv.sql_scoring.graph import check_operators


def test_pool_adjacent_violators_matches_brute_force_on_small_cases():
    values = np.array([1.0, 3.0, 2.0, 2.0, 5.0, 4.0])
    fitted = _pool_adjacent_violators(values, np.ones(6))
    np.testing.assert_allclose(fitted, [1.0, 7 / 3, 7 / 3, 7 / 3, 4.5, 4.5])
    assert np.all(np.diff(fitted) >= 0)


def test_knots_map_each_decile_to_its_actual_mean():
    rng = np.random.default_rng(0)
    predicted = rng.lognormal(3, 1, 5000)
    actual = 0.5 * predicted * rng.gamma(2.0, 0.5, 5000)  # twice too high on average
    knots_x, knots_y = fit_knots(predicted, actual)
    assert len(knots_x) == 10 and np.all(np.diff(knots_x) > 0) and np.all(np.diff(knots_y) > 0)
    np.testing.assert_allclose(np.exp(knots_y - knots_x), 0.5, rtol=0.15)


def test_calibrated_network_keeps_order_and_a_consistent_distribution():
    torch.manual_seed(0)
    base = ClvNetwork(n_static=3, n_periods=4, n_channels=2).eval()
    model = CalibratedNetwork(base, np.log([1.0, 10.0, 100.0]), np.log([0.5, 8.0, 150.0])).eval()
    static, sequence = torch.randn(256, 3) * 3, torch.randn(256, 4, 2)
    with torch.no_grad():
        _, spend, _, _, _ = base(static, sequence)
        p, calibrated, mu, sigma, _ = model(static, sequence)
    order = torch.argsort(spend)
    assert torch.all(torch.diff(calibrated[order]) >= 0), "calibration must keep the ranking"
    torch.testing.assert_close(calibrated, ziln_mean(p, mu, sigma), rtol=1e-4, atol=1e-6)
    knot = model.log_spend_map(torch.log(torch.tensor([10.0])))
    torch.testing.assert_close(knot, torch.log(torch.tensor([8.0])))


def test_probability_map_is_the_maximum_likelihood_recalibration():
    rng = np.random.default_rng(1)
    logit = rng.normal(0.0, 1.5, 20_000)
    bought = rng.uniform(size=logit.size) < expit(0.7 * logit - 0.4)
    slope, intercept = fit_probability_map(logit, bought)

    def log_loss(theta: np.ndarray) -> float:  # independent: scipy on the Bernoulli loss
        z = theta[0] * logit + theta[1]
        return float(np.mean(np.logaddexp(0.0, z) - bought * z))

    reference = minimize(log_loss, [1.0, 0.0], method="Nelder-Mead",
                         options={"xatol": 1e-9, "fatol": 1e-12}).x
    np.testing.assert_allclose([slope, intercept], reference, atol=1e-4)
    assert abs(slope - 0.7) < 0.05 and abs(intercept + 0.4) < 0.05


@pytest.mark.parametrize(("spread", "slope", "intercept"), [(3.0, 0.3, -0.3), (2.0, 0.5, -3.0),
                                                       (2.0, 0.0, 0.0)])
def test_probability_map_of_overconfident_logits_is_the_bounded_optimum(spread, slope,
                                                                        intercept):
    """Widely spread logits that overstate the network's confidence: undamped Newton steps
    from slope 1 swung ever wider and stopped at whichever bound they last passed. The line
    is the optimum with the slope held within its bounds (scipy's bounded search)."""
    rng = np.random.default_rng(3)
    logit = rng.normal(0.0, spread, 8_000)
    bought = rng.uniform(size=logit.size) < expit(slope * logit + intercept)

    def log_loss(theta: np.ndarray) -> float:
        z = theta[0] * logit + theta[1]
        return float(np.mean(np.logaddexp(0.0, z) - bought * z))

    reference = minimize(log_loss, [1.0, 0.0], method="L-BFGS-B",
                         bounds=[PROBABILITY_SLOPE_BOUNDS, (None, None)],
                         options={"ftol": 1e-15, "gtol": 1e-10}).x
    np.testing.assert_allclose(fit_probability_map(logit, bought), reference, atol=1e-4)
    mapped = fit_probability_bends(logit, bought)(logit)  # rule 2's map, which starts there
    assert np.mean(np.logaddexp(0.0, mapped) - bought * mapped) <= log_loss(reference) + 1e-9


def test_probability_map_identity_without_both_outcomes_and_bounded_slope():
    assert fit_probability_map(np.linspace(-2, 2, 50), np.ones(50)) == (1.0, 0.0)
    rng = np.random.default_rng(2)
    logit = rng.normal(0.0, 0.01, 5000)  # nearly constant logits: any slope fits
    slope, intercept = fit_probability_map(logit, rng.uniform(size=5000) < 0.3)
    low, high = PROBABILITY_SLOPE_BOUNDS
    assert low <= slope <= high
    assert expit(slope * logit + intercept).mean() == pytest.approx(0.3, abs=0.02)
    # every logit saturated (a probability of 1 in float32): the map still gives the rate
    for saturated in ([20.0, 20.0], [-30.0, -30.0, -30.0]):
        bought = np.arange(len(saturated)) == 0
        slope, intercept = fit_probability_map(np.array(saturated), bought)
        assert low <= slope <= high
        assert expit(slope * 13.8 * np.sign(saturated[0]) + intercept) == pytest.approx(
            bought.mean(), abs=1e-6)


def _s_shaped_outcomes(rng, n: int):
    """Network logits whose true purchase logit bends (steep in the middle, flat at both
    ends), as a straight line cannot mend."""
    logit = rng.normal(0.0, 1.5, n)
    true_logit = 0.5 * logit + 2.0 * np.tanh(1.5 * logit)
    return logit, rng.uniform(size=n) < expit(true_logit)


def test_probability_bends_are_the_maximum_likelihood_piecewise_map():
    rng = np.random.default_rng(5)
    logit, bought = _s_shaped_outcomes(rng, 20_000)
    bends = fit_probability_bends(logit, bought)
    assert len(bends.knots) == 4  # the logit's quintiles
    np.testing.assert_allclose(bends.knots, np.quantile(logit, [0.2, 0.4, 0.6, 0.8]), atol=1e-3)
    hinges = np.maximum(logit[:, None] - np.asarray(bends.knots)[None, :], 0.0)

    def log_loss(theta: np.ndarray) -> float:  # independent: scipy on the Bernoulli loss
        z = theta[0] * logit + theta[1] + hinges @ theta[2:]
        return float(np.mean(np.logaddexp(0.0, z) - bought * z))

    start = np.concatenate([fit_probability_map(logit, bought), np.zeros(4)])
    reference = minimize(log_loss, start, method="BFGS", options={"gtol": 1e-10}).x
    fitted = np.array([bends.slope, bends.intercept, *bends.changes])
    assert log_loss(fitted) <= log_loss(reference) + 1e-9
    np.testing.assert_allclose(fitted, reference, atol=2e-3)
    # the bends mend what the straight line leaves, and keep the order of customers
    line = expit(np.polyval(fit_probability_map(logit, bought), logit))
    bent = expit(bends(logit))
    assert expected_calibration_error(bought, bent) < 0.2 * expected_calibration_error(
        bought, line)
    assert np.all(np.diff(bends(np.sort(logit))) >= 0)
    low, high = PROBABILITY_SLOPE_BOUNDS
    assert np.all((bends.segment_slopes() >= low) & (bends.segment_slopes() <= high))


def test_probability_bends_fall_back_to_the_straight_line():
    rng = np.random.default_rng(6)
    logit, bought = _s_shaped_outcomes(rng, 900)  # under two segments of 500 rows
    line = fit_probability_map(logit, bought)
    bends = fit_probability_bends(logit, bought)
    assert (bends.slope, bends.intercept, bends.knots) == (*line, ())
    # a bend that would turn the map down (order reversed in the middle): the straight line
    logit = rng.normal(0.0, 1.0, 20_000)
    reversed_middle = np.where(np.abs(logit) < 0.5, -4.0 * logit, logit)
    bought = rng.uniform(size=logit.size) < expit(3.0 * reversed_middle)
    bends = fit_probability_bends(logit, bought)
    assert bends.knots == () and (bends.slope, bends.intercept) == fit_probability_map(
        logit, bought)


def _ziln_sample(rng, n: int, sigma: float):
    """Customers with known ZILN distributions and one draw of actual spend each."""
    p = rng.uniform(0.05, 0.97, n)
    mean = rng.lognormal(3.0, 1.0, n)
    mu = np.log(mean / p) - 0.5 * sigma**2
    actual = np.where(rng.uniform(size=n) < p, np.exp(mu + sigma * rng.normal(size=n)), 0.0)
    return p, mean, actual


def _tails_by_scipy(actual, p, mean, sigma):
    """Share above p90 and share below p10 (where p10 > 0), quantiles from scipy's lognormal."""
    mu = np.log(mean / p) - 0.5 * sigma**2
    q90 = np.where(p > 0.1, lognorm.ppf(np.clip((p - 0.1) / p, 1e-12, 1), s=sigma,
                                        scale=np.exp(mu)), 0.0)
    q10 = np.where(p > 0.9, lognorm.ppf(np.clip((p - 0.9) / p, 1e-12, 1), s=sigma,
                                        scale=np.exp(mu)), 0.0)
    positive = q10 > 0
    return np.mean(actual > q90), np.mean(actual[positive] < q10[positive])


def test_sigma_scale_restores_honest_tails():
    rng = np.random.default_rng(3)
    p, mean, actual = _ziln_sample(rng, 40_000, sigma=1.2)
    too_narrow = np.full(p.size, 0.6)
    scale = fit_sigma_scale(actual, p, mean, too_narrow)
    assert scale == pytest.approx(2.0, rel=0.08)
    above, below = _tails_by_scipy(actual, p, mean, too_narrow * scale)
    # a calibrated ZILN: customers whose p90 is 0 exceed it with their probability p < 0.1
    expected_above = np.mean(np.where(p > 0.1, 0.1, p))
    assert above == pytest.approx(expected_above, abs=0.01)
    assert below == pytest.approx(0.1, abs=0.02)
    shares = tail_shares(actual, p, mean, too_narrow * scale)
    assert shares[0] == pytest.approx(above) and shares[1] == pytest.approx(below)
    # honest sigma already: the scale stays near 1
    assert fit_sigma_scale(actual, p, mean, np.full(p.size, 1.2)) == pytest.approx(1.0, rel=0.05)


def test_sigma_scale_is_fitted_on_the_buyers_spend_not_the_mixture():
    """Half the customers all but certain not to buy (p 0.02), half all but certain to (p
    0.95), every ZILN honest: the lognormal's tails hold 10% of the buyers each at the
    network's own sigma, so the factor stays 1, although the share above p90 over everyone is
    6% (the unlikely buyers' p90 is 0)."""
    rng = np.random.default_rng(5)
    n, sigma = 40_000, 0.3
    p = np.where(rng.uniform(size=n) < 0.5, 0.02, 0.95)
    mean = rng.lognormal(4.0, 0.8, n)
    mu = np.log(mean / p) - 0.5 * sigma**2
    actual = np.where(rng.uniform(size=n) < p, np.exp(mu + sigma * rng.normal(size=n)), 0.0)
    scale = fit_sigma_scale(actual, p, mean, np.full(n, sigma))
    assert scale == pytest.approx(1.0, rel=0.03)
    scaled = sigma * scale
    buyers = actual > 0
    centre = np.exp(np.log(mean / p) - 0.5 * scaled**2)[buyers]
    above = np.mean(actual[buyers] > lognorm.ppf(0.9, s=scaled, scale=centre))
    below = np.mean(actual[buyers] < lognorm.ppf(0.1, s=scaled, scale=centre))
    assert above == pytest.approx(0.1, abs=0.01) and below == pytest.approx(0.1, abs=0.01)
    everyone, _ = _tails_by_scipy(actual, p, mean, np.full(n, scaled))
    assert everyone == pytest.approx(0.5 * 0.02 + 0.5 * 0.1, abs=0.01)
    # too few buyers to fit on: the network's own sigma
    assert fit_sigma_scale(np.where(np.arange(n) < 50, 1.0, 0.0), p, mean,
                           np.full(n, sigma)) == 1.0


def test_nearly_tied_bins_merge_so_float32_knots_keep_the_map():
    """7,000 customers predicted alike and two a hair above them: the top bin's mean is 1e-6
    above the tied ones'. Kept apart, the knots would make a slope of 1e5, which float32
    knots turn into percents of error above them; merged, the graph's float32 arithmetic
    gives the map within 1e-5."""
    rng = np.random.default_rng(3)
    predicted = np.concatenate([rng.uniform(5.0, 80.0, 2998), np.full(7000, 87.3),
                                np.full(2, 87.3 * 1.0005)])
    actual = predicted * rng.gamma(2.0, 0.5, predicted.size)
    actual[-1000:] *= 1.5  # the top bin spends more: a large step between close knots
    knots_x, knots_y = fit_knots(predicted, actual)
    assert np.diff(knots_x).min() > 1e-3
    spend = np.array([50.0, 87.3, 200.0, 1000.0])
    exact = log_spend_map(np.log(spend), knots_x, knots_y)
    # the graph's arithmetic: float32 knots and slope changes
    x = knots_x.astype(np.float32).astype(np.float64)
    slopes = np.concatenate([[1.0], np.diff(knots_y) / np.diff(knots_x), [1.0]])
    changes = np.diff(slopes).astype(np.float32).astype(np.float64)
    graph = (knots_y[0] + (np.log(spend) - knots_x[0])
             + np.maximum(np.log(spend)[:, None] - x[None, :], 0.0) @ changes)
    np.testing.assert_allclose(graph, exact, rtol=1e-5)


@pytest.mark.parametrize("rate_factor", [1.0, 2.3, 0.6])
@pytest.mark.parametrize("bends", [((), ()), ((-1.0, 0.5), (0.6, -0.9))],
                         ids=["straight", "bent"])
def test_calibrated_network_applies_the_same_maps_as_numpy(rate_factor, bends):
    torch.manual_seed(1)
    base = ClvNetwork(n_static=3, n_periods=4, n_channels=2).eval()
    fitted = Calibration((0.0, 2.0, 4.0), (-0.5, 2.2, 4.5), probability_slope=0.8,
                         probability_intercept=-0.3, sigma_scale=1.4,
                         purchase_rate_factor=rate_factor, probability_knots=bends[0],
                         probability_slope_changes=bends[1])
    model = CalibratedNetwork.from_calibration(base, fitted).eval()
    static, sequence = torch.randn(512, 3) * 3, torch.randn(512, 4, 2)
    static[:8] = torch.tensor([-40.0, 40.0, 0.0])  # extreme rows: tiny and certain purchases

    def mapped(logit: np.ndarray) -> np.ndarray:  # the probability map, written out
        hinges = [np.maximum(logit - knot, 0.0) * change for knot, change in
                  zip(*bends, strict=True)]
        return 0.8 * logit - 0.3 + sum(hinges, np.zeros_like(logit))

    with torch.no_grad():
        logits = base.logits(static, sequence)
        _, spend, _, sigma, _ = base(static, sequence)
        outputs = [o.double().numpy() for o in model(static, sequence)]
    expected = apply(fitted, spend.double().numpy(), logits[:, 0].double().numpy(),
                     sigma.double().numpy())
    for got, want in zip(outputs[:4], expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    p, calibrated, mu, scaled, log_no_purchase = outputs
    np.testing.assert_allclose(p * np.exp(mu + scaled**2 / 2), calibrated, rtol=2e-4)
    # a purchase rate scaled by the factor: P(buy) = 1 - (1 - p)^factor of the mapped p
    map_logit = mapped(logits[:, 0].double().numpy())
    np.testing.assert_allclose(p, 1 - expit(-map_logit) ** rate_factor, rtol=2e-4, atol=1e-7)
    # log(1 - p) = factor * log(1 - mapped p), also where p is 1 in float32
    np.testing.assert_allclose(log_no_purchase, -rate_factor * np.logaddexp(0.0, map_logit),
                               rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        base.head[-1].bias[0] += 60.0
        p, _, _, _, log_no_purchase = (o.double().numpy() for o in model(static, sequence))
        map_logit = mapped(base.logits(static, sequence)[:, 0].double().numpy())
    assert (p == 1.0).all()
    np.testing.assert_allclose(log_no_purchase, -rate_factor * np.logaddexp(0.0, map_logit),
                               rtol=1e-5)


@pytest.mark.parametrize("shift", [-80.0, -150.0])
def test_graph_and_numpy_floor_the_spend_and_the_probability_alike(shift):
    """Customers who almost surely do not buy: a raw spend below the 1e-12 floor maps to the
    lowest knot's calibrated mean, as fit_knots measured it, and the probability stops at
    exp(-80), in the graph as in numpy (the reported metrics and the level read numpy)."""
    torch.manual_seed(2)
    base = ClvNetwork(n_static=3, n_periods=4, n_channels=2).eval()
    with torch.no_grad():
        base.head[-1].bias[0] += shift
    fitted = Calibration((float(np.log(1e-12)), 0.0, 2.0), (-1.0, 0.5, 2.5))
    model = CalibratedNetwork.from_calibration(base, fitted).eval()
    static, sequence = torch.randn(64, 3), torch.randn(64, 4, 2)
    with torch.no_grad():
        logits = base.logits(static, sequence)
        _, spend, _, sigma, _ = base(static, sequence)
        outputs = [o.double().numpy() for o in model(static, sequence)]
    assert float(spend.max()) < 1e-12
    expected = apply(fitted, spend.double().numpy(), logits[:, 0].double().numpy(),
                     sigma.double().numpy())
    for got, want in zip(outputs[:4], expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4)
    np.testing.assert_allclose(outputs[1], np.exp(-1.0), rtol=1e-5)
    assert (outputs[0] >= np.exp(-80.0) * (1 - 1e-5)).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("rate_factor", [1.0, 1.8])
def test_calibrated_graph_uses_only_operators_the_sql_compiler_knows(tmp_path, rate_factor):
    base = ClvNetwork(n_static=3, n_periods=4, n_channels=2).eval()
    model = CalibratedNetwork.from_calibration(
        base, Calibration((0.0, 2.0), (0.1, 2.5), 1.1, 0.2, 0.9, rate_factor, (-0.5,),
                          (0.4,))).eval()
    path = tmp_path / "calibrated.onnx"
    torch.onnx.export(model, (torch.randn(2, 3), torch.randn(2, 4, 2)), str(path),
                      input_names=["static", "sequence"], opset_version=18, dynamo=False,
                      dynamic_axes={"static": {0: "batch"}, "sequence": {0: "batch"}})
    check_operators(onnx.load(str(path)))


def test_fit_calibrates_spend_probability_and_quantiles_together():
    rng = np.random.default_rng(4)
    p, mean, actual = _ziln_sample(rng, 30_000, sigma=1.0)
    # the network: spend 1.6x too high, logits too confident, sigma too wide
    logit = 1.5 * np.log(p / (1 - p)) + 0.3
    fitted = fit(1.6 * mean, logit, np.full(p.size, 1.6), actual)
    calibrated_p, calibrated_mean, _, sigma = apply(fitted, 1.6 * mean, logit,
                                                    np.full(p.size, 1.6))
    assert calibrated_mean.sum() == pytest.approx(actual.sum(), rel=0.03)
    assert expected_calibration_error(actual, calibrated_p) < 0.01
    assert sigma[0] == pytest.approx(1.0, rel=0.1)
