"""Network shapes, feature transforms inside the module, and the written-out GRU."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clv.loss import ziln_mean, ziln_parameters
from clv.network import ClvNetwork, init_output_bias

N_STATIC, N_PERIODS, N_CHANNELS = 5, 6, 3


def raw_inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    static = rng.gamma(0.5, 200.0, (n, N_STATIC)) * np.where(rng.random((n, N_STATIC)) < 0.1, -1, 1)
    static[:, 3] = 7.0  # a constant column
    sequence = rng.poisson(1.5, (n, N_PERIODS, N_CHANNELS)) * rng.gamma(1.0, 30.0, (n, 1, 1))
    return static.astype(np.float32), sequence.astype(np.float32)


@pytest.fixture
def model() -> ClvNetwork:
    torch.manual_seed(0)
    net = ClvNetwork(N_STATIC, N_PERIODS, N_CHANNELS, conv_channels=4, gru_hidden=5,
                     mlp_hidden=(16, 8))
    net.set_normalisation(*raw_inputs(500))
    return net.eval()


def test_output_shapes(model):
    static, sequence = raw_inputs(7, seed=1)
    s, q = torch.from_numpy(static), torch.from_numpy(sequence)
    assert model.logits(s, q).shape == (7, 3)
    outputs = model(s, q)
    assert len(outputs) == 5 and all(o.shape == (7,) for o in outputs)
    p, value, mu, sigma, log_no_purchase = outputs
    assert torch.all((p > 0) & (p < 1)) and torch.all(sigma > 0)
    torch.testing.assert_close(value, p * torch.exp(mu + sigma**2 / 2))
    torch.testing.assert_close(log_no_purchase, torch.log1p(-p))


def test_log_no_purchase_holds_where_the_probability_rounds_to_one(model):
    static, sequence = raw_inputs(3, seed=1)
    with torch.no_grad():
        model.head[-1].bias[0] = 40.0  # a purchase logit of about 40: p is 1 in float32
        p, _, _, _, log_no_purchase = model(torch.from_numpy(static), torch.from_numpy(sequence))
    assert torch.all(p == 1.0)
    assert torch.all(torch.isfinite(log_no_purchase) & (log_no_purchase < -30))


def test_normalisation_statistics_are_training_moments():
    static, sequence = raw_inputs(400, seed=2)
    net = ClvNetwork(N_STATIC, N_PERIODS, N_CHANNELS)
    stats = net.set_normalisation(static, sequence)
    transformed = np.sign(static) * np.log1p(np.abs(static.astype(np.float64)))
    np.testing.assert_allclose(stats["static_mean"], transformed.mean(0), rtol=1e-5, atol=1e-6)
    expected_std = transformed.std(0)
    expected_std[3] = 1.0  # constant column: centred, not scaled
    np.testing.assert_allclose(stats["static_std"], expected_std, rtol=1e-5)
    seq = np.log1p(sequence.astype(np.float64)).reshape(-1, N_CHANNELS)
    np.testing.assert_allclose(stats["sequence_mean"], seq.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["sequence_std"], seq.std(0), rtol=1e-5)


def test_raw_inputs_equal_manual_transform(model):
    """Feeding raw columns gives the same logits as transforming by hand outside the network."""
    static, sequence = raw_inputs(32, seed=3)
    s_mean, s_std = model.static_mean.numpy(), model.static_std.numpy()
    q_mean, q_std = model.sequence_mean.numpy(), model.sequence_std.numpy()
    s_manual = (np.sign(static) * np.log1p(np.abs(static)) - s_mean) / s_std
    q_manual = (np.log1p(sequence) - q_mean) / q_std
    with torch.no_grad():
        manual = model.head(torch.cat([torch.from_numpy(s_manual.astype(np.float32)),
                                       model._encode_sequence(torch.from_numpy(
                                           q_manual.astype(np.float32)))], dim=1))
        direct = model.logits(torch.from_numpy(static), torch.from_numpy(sequence))
    torch.testing.assert_close(direct, manual, rtol=1e-5, atol=1e-5)
    # the transforms are buffers: saved with the weights, moved with the module
    assert {"static_mean", "static_std", "sequence_mean", "sequence_std"} <= set(
        dict(model.named_buffers()))


def test_written_out_gru_matches_nn_gru(model):
    _, sequence = raw_inputs(16, seed=4)
    x = torch.from_numpy(np.log1p(sequence))
    with torch.no_grad():
        ours = model._encode_sequence(x)
        conv = F.relu(model.conv(x.transpose(1, 2))).transpose(1, 2)
        _, reference = model.gru(conv)
    torch.testing.assert_close(ours, reference[-1], rtol=1e-5, atol=1e-6)


def test_banded_convolution_trains_the_conv_weights(model):
    """The convolution runs as a matrix product gathered from ``conv.weight``: its gradient
    must be the one a plain Conv1d + nn.GRU gives."""
    _, sequence = raw_inputs(16, seed=5)
    x = torch.from_numpy(np.log1p(sequence))
    model.zero_grad()
    model._encode_sequence(x).sum().backward()
    ours = model.conv.weight.grad.clone()
    model.zero_grad()
    _, reference = model.gru(F.relu(model.conv(x.transpose(1, 2))).transpose(1, 2))
    reference[-1].sum().backward()
    theirs = model.conv.weight.grad.clone()
    model.zero_grad()
    assert torch.count_nonzero(theirs) > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_output_bias_starts_at_label_moments():
    net = ClvNetwork(N_STATIC, N_PERIODS, N_CHANNELS)
    labels = np.array([0.0, 0.0, 0.0, 10.0, 100.0])
    init_output_bias(net, labels)
    net.head[-1].weight.data.zero_()  # isolate the bias
    with torch.no_grad():
        p, mu, sigma = ziln_parameters(net.logits(torch.zeros(1, N_STATIC),
                                                  torch.zeros(1, N_PERIODS, N_CHANNELS)))
    assert float(p) == pytest.approx(0.4, rel=1e-5)
    assert float(mu) == pytest.approx(np.log([10.0, 100.0]).mean(), rel=1e-5)
    assert float(sigma) == pytest.approx(np.log([10.0, 100.0]).std(), rel=1e-5)
    assert float(ziln_mean(p, mu, sigma)) > 0
