"""ZILN loss and predictions against an independent numpy/scipy computation."""

import numpy as np
import pytest
import torch
from scipy import stats

from clv.loss import (
    SIGMA_FLOOR,
    ziln_expected_value,
    ziln_loss,
    ziln_parameters,
    ziln_quantiles,
)


def reference_parameters(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
    sigma = np.maximum(np.logaddexp(0.0, logits[:, 2]), SIGMA_FLOOR)  # softplus, floored
    return p, logits[:, 1], sigma


def reference_loss(logits: np.ndarray, y: np.ndarray) -> float:
    positive = y > 0
    # explicit BCE with logits: -log sigmoid(l) = log(1 + e^-l), -log(1 - sigmoid(l)) = log(1 + e^l)
    bce = np.where(positive, np.logaddexp(0.0, -logits[:, 0]), np.logaddexp(0.0, logits[:, 0]))
    _, mu, sigma = reference_parameters(logits)
    log_pdf = np.zeros_like(y)
    log_pdf[positive] = stats.lognorm.logpdf(y[positive], s=sigma[positive],
                                             scale=np.exp(mu[positive]))
    return float(bce.mean() - log_pdf.mean())


def make_case(seed: int, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = np.stack([rng.normal(0, 2, n), rng.normal(3, 2, n), rng.normal(0, 1.5, n)], axis=1)
    y = np.where(rng.random(n) < 0.4, 0.0, np.exp(rng.normal(3, 1.5, n)))
    return logits, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_scipy(seed):
    logits, y = make_case(seed)
    got = ziln_loss(torch.from_numpy(logits), torch.from_numpy(y))
    assert got.dtype == torch.float64 and got.ndim == 0
    assert float(got) == pytest.approx(reference_loss(logits, y), rel=1e-5, abs=1e-5)


def test_loss_tiny_huge_and_zero_labels():
    logits, _ = make_case(3, n=8)
    y = np.array([0.0, 1e-12, 1e-6, 0.5, 1.0, 1e6, 1e12, 0.0])
    got = float(ziln_loss(torch.from_numpy(logits), torch.from_numpy(y)))
    assert np.isfinite(got)
    assert got == pytest.approx(reference_loss(logits, y), rel=1e-5, abs=1e-5)


def test_loss_float32_close_to_float64_reference():
    logits, y = make_case(4, n=256)
    got = ziln_loss(torch.from_numpy(logits).float(), torch.from_numpy(y).float())
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(reference_loss(logits.astype(np.float32).astype(float),
                                                      y.astype(np.float32).astype(float)),
                                       rel=1e-5)


def test_all_zero_labels_is_pure_bce_with_finite_gradients():
    logits, _ = make_case(5, n=16)
    y = np.zeros(16)
    t = torch.from_numpy(logits).requires_grad_(True)
    loss = ziln_loss(t, torch.from_numpy(y))
    bce = float(np.logaddexp(0.0, logits[:, 0]).mean())
    assert float(loss.detach()) == pytest.approx(bce, rel=1e-12)
    loss.backward()
    assert torch.isfinite(t.grad).all()
    assert torch.all(t.grad[:, 1:] == 0)  # mu and sigma get no signal from zero labels


def test_sigma_floor():
    logits = torch.tensor([[0.0, 1.0, -50.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    _, _, sigma = ziln_parameters(logits)
    assert float(sigma[0]) == SIGMA_FLOOR
    assert float(sigma[1]) == pytest.approx(np.log(2.0))
    assert np.isfinite(float(ziln_loss(logits, torch.tensor([2.7, 0.0], dtype=torch.float64))))


def test_expected_value_matches_scipy_mean():
    logits, _ = make_case(6)
    p, mu, sigma = reference_parameters(logits)
    expected = p * stats.lognorm.mean(s=sigma, scale=np.exp(mu))
    got = ziln_expected_value(torch.from_numpy(logits)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_quantiles_match_scipy():
    logits, _ = make_case(7)
    levels = [0.1, 0.5, 0.9]
    p, mu, sigma = reference_parameters(logits)
    got = ziln_quantiles(torch.from_numpy(logits), levels).numpy()
    assert got.shape == (len(logits), 3)
    for j, q in enumerate(levels):
        inside = q > 1 - p
        expected = np.zeros(len(p))
        expected[inside] = stats.lognorm.ppf((q - 1 + p[inside]) / p[inside], s=sigma[inside],
                                             scale=np.exp(mu[inside]))
        np.testing.assert_allclose(got[:, j], expected, rtol=1e-5, atol=1e-12)
    assert np.all(np.diff(got, axis=1) >= 0)


def test_shape_asserts():
    with pytest.raises(AssertionError):
        ziln_loss(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(AssertionError):
        ziln_loss(torch.zeros(4, 3), torch.zeros(4, 1))
    with pytest.raises(AssertionError):
        ziln_expected_value(torch.zeros(3))
