"""The monotone spend calibration: decile means matched, order kept, consistent outputs."""

from __future__ import annotations

import numpy as np
import torch

from clv.calibration import CalibratedNetwork, _pool_adjacent_violators, fit_knots
from clv.loss import ziln_mean
from clv.network import ClvNetwork


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
        _, spend, _, _ = base(static, sequence)
        p, calibrated, mu, sigma = model(static, sequence)
    order = torch.argsort(spend)
    assert torch.all(torch.diff(calibrated[order]) >= 0), "calibration must keep the ranking"
    torch.testing.assert_close(calibrated, ziln_mean(p, mu, sigma), rtol=1e-4, atol=1e-6)
    knot = model.log_spend_map(torch.log(torch.tensor([10.0])))
    torch.testing.assert_close(knot, torch.log(torch.tensor([8.0])))
