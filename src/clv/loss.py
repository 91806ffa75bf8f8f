"""Zero-inflated lognormal (ZILN) loss and predictions (Wang, Liu & Miao, 2019).

The network emits three logits per customer: ``l0`` for whether the customer buys at all in the
horizon, and ``l1``, ``l2`` for the lognormal spend given a purchase:

    p = sigmoid(l0),  mu = l1,  sigma = max(softplus(l2), SIGMA_FLOOR)

``SIGMA_FLOOR`` is 1e-3: far below any realistic spread of log-spend (a sigma of 1e-3 means
+-0.1 % around the median), yet it keeps ``1 / sigma`` and ``log sigma`` finite so a collapsed
scale cannot produce an infinite likelihood.

The probability is computed as ``exp(l0 - softplus(l0))`` (the log of the sigmoid, finite for any
logit), not with a sigmoid: onnxruntime's float32 ``Sigmoid`` loses all precision below a
logit of about -16 (and 0.5 % at -12), where ``Softplus`` and ``Exp`` keep it, so the exported
graph agrees with PyTorch for customers who almost surely do not buy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

SIGMA_FLOOR = 1e-3
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_logits(logits: Tensor) -> None:
    assert logits.ndim == 2 and logits.shape[1] == 3, f"logits must be [B, 3], got {logits.shape}"


def log_sigmoid(logit: Tensor) -> Tensor:
    """log sigmoid(z) = z - softplus(z), elementwise: finite for every logit, and made of
    operations onnxruntime computes to float32 precision (no Neg, no Sigmoid)."""
    return logit - F.softplus(logit)


def ziln_log_mean(logits: Tensor) -> Tensor:
    """log of the expected value, log p + mu + sigma^2 / 2, for logits [B, 3]; returns [B].
    Finite where the expected value under- or overflows float32."""
    _, mu, sigma = ziln_parameters(logits)
    return log_sigmoid(logits[:, 0]) + mu + 0.5 * sigma * sigma


def ziln_parameters(logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Split ZILN logits into distribution parameters.

    Args:
        logits: [B, 3] raw network outputs.
    Returns:
        p: [B] purchase probability; mu: [B] log-scale location; sigma: [B] log-scale spread,
        floored at ``SIGMA_FLOOR``.
    """
    _check_logits(logits)
    p = torch.exp(log_sigmoid(logits[:, 0]))
    mu = logits[:, 1]
    sigma = F.softplus(logits[:, 2]).clamp_min(SIGMA_FLOOR)
    return p, mu, sigma


def ziln_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean ZILN negative log-likelihood.

    loss = BCE(1[y > 0], l0) + mean_b( -1[y_b > 0] * log LogNormal(y_b; mu_b, sigma_b) ),
    both terms averaged over the whole batch (rows with y = 0 add 0 to the second term).

    Args:
        logits: [B, 3] raw network outputs.
        labels: [B] non-negative spend in the horizon.
    Returns:
        scalar tensor.
    """
    _check_logits(logits)
    assert labels.shape == logits.shape[:1], f"labels must be [B], got {labels.shape}"
    labels = labels.to(logits.dtype)
    positive = labels > 0
    classification = F.binary_cross_entropy_with_logits(logits[:, 0], positive.to(logits.dtype))
    _, mu, sigma = ziln_parameters(logits)
    # log(1) = 0 stands in for zero labels so no NaN reaches the gradient through the mask.
    log_y = torch.log(torch.where(positive, labels, torch.ones_like(labels)))
    z = (log_y - mu) / sigma
    log_pdf = -log_y - torch.log(sigma) - _HALF_LOG_2PI - 0.5 * z * z
    regression = -(torch.where(positive, log_pdf, torch.zeros_like(log_pdf))).mean()
    return classification + regression


def ziln_mean(p: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    """Expected value p * exp(mu + sigma^2 / 2); all tensors [B]."""
    return p * torch.exp(mu + 0.5 * sigma * sigma)


def ziln_expected_value(logits: Tensor) -> Tensor:
    """Expected spend under the ZILN distribution.

    Args:
        logits: [B, 3] raw network outputs.
    Returns:
        [B] p * exp(mu + sigma^2 / 2).
    """
    return ziln_mean(*ziln_parameters(logits))


def ziln_quantiles(logits: Tensor, quantiles: Sequence[float]) -> Tensor:
    """Quantiles of the ZILN distribution.

    The q-quantile is 0 when q <= 1 - p (the point mass at zero covers it), otherwise the
    ((q - 1 + p) / p)-quantile of the lognormal: exp(mu + sigma * Phi^-1((q - 1 + p) / p)).

    Args:
        logits: [B, 3] raw network outputs.
        quantiles: Q levels, each strictly between 0 and 1.
    Returns:
        [B, Q] tensor.
    """
    assert all(0.0 < q < 1.0 for q in quantiles), "quantile levels must be in (0, 1)"
    p, mu, sigma = ziln_parameters(logits)
    q = torch.tensor(list(quantiles), dtype=logits.dtype, device=logits.device)[None, :]
    p, mu, sigma = p[:, None], mu[:, None], sigma[:, None]
    positive = q > 1.0 - p
    level = torch.where(positive, (q - 1.0 + p) / torch.where(positive, p, torch.ones_like(p)),
                        torch.full_like(p * q, 0.5))
    value = torch.exp(mu + sigma * torch.special.ndtri(level))
    return torch.where(positive, value, torch.zeros_like(value))
