"""Tests of the learned networks: streaming parity, causality, the MDN head, PyG equivalence."""

import numpy as np
import pytest
import torch

from listener_head_ros.features import extract_features
from listener_head_ros.models.frame_features import (
    FEATURE_DIM,
    feature_matrix,
    feature_statistics,
    feature_vector,
)
from listener_head_ros.models.networks import (
    ActiveListenerConfig,
    build_network,
    CausalActiveListener,
    CausalGaussianSmoothing,
    CausalGRUListener,
    count_parameters,
    gaussian_weights,
    GRUListenerConfig,
    mdn_log_likelihood,
    mdn_nll,
    mixture_mean,
    mixture_moments,
    sample_mixture,
)

INPUT_DIM = 6


def _tiny(kind, **overrides):
    if kind == 'gru':
        config = dict(input_dim=INPUT_DIM, conv_channels=8, conv_kernel=3, hidden_size=12,
                      num_layers=2, num_mixtures=3, dropout=0.0)
        network = CausalGRUListener(GRUListenerConfig(**{**config, **overrides}))
    else:
        config = dict(input_dim=INPUT_DIM, hidden_dim=8, num_layers=2, past_neighbors=3,
                      smoothing_size=4, smoothing_sigma=1.0, dropout=0.0)
        network = CausalActiveListener(ActiveListenerConfig(**{**config, **overrides}))
    network.norm.set_statistics(torch.randn(INPUT_DIM), torch.rand(INPUT_DIM) + 0.5)
    return network.eval()


def _stream(network, x):
    """Step ``network`` over the frames of ``x`` (B, T, F); stack outputs along time."""
    state, outputs = network.init_state(x.shape[0]), []
    for t in range(x.shape[1]):
        out, state = network.step(x[:, t], state)
        outputs.append(out)
    if isinstance(outputs[0], tuple):
        return tuple(torch.stack(parts, dim=1) for parts in zip(*outputs))
    return torch.stack(outputs, dim=1)


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def test_feature_rows_match_between_batch_and_frame():
    """Assemble the same rows from a FeatureBatch and from its frames; encode voicing."""
    t = np.arange(16000) / 16000.0
    audio = (0.3 * np.sin(2 * np.pi * 150.0 * t) * (t < 0.5)).astype(np.float32)
    batch = extract_features(audio)
    matrix = feature_matrix(batch)
    assert matrix.shape == (len(batch), FEATURE_DIM) and matrix.dtype == np.float32
    rows = np.stack([feature_vector(batch.frame(i)) for i in range(len(batch))])
    np.testing.assert_allclose(rows, matrix, rtol=0, atol=0)
    voiced = batch.f0_hz > 0
    assert voiced.any() and (~voiced).any()
    np.testing.assert_array_equal(matrix[:, -1], voiced.astype(np.float32))
    np.testing.assert_array_equal(matrix[~voiced, -3], 0.0)
    np.testing.assert_allclose(matrix[voiced, -3], np.log2(batch.f0_hz[voiced] / 100.0),
                               rtol=1e-5)
    mean, std = feature_statistics([matrix[:10], matrix[10:]])
    np.testing.assert_allclose(mean, matrix.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, np.maximum(matrix.std(0), 1e-3), rtol=1e-3, atol=1e-4)


def test_gaussian_smoothing_is_normalised_and_causal():
    """Sum the kernel to 1, decay with lag, and never respond before an impulse."""
    weights = gaussian_weights(5, 1.5)
    assert torch.isclose(weights.sum(), torch.tensor(1.0))
    assert bool((weights[1:] < weights[:-1]).all())
    smoothing = CausalGaussianSmoothing(5, 1.5)
    impulse = torch.zeros(1, 12, 3)
    impulse[0, 4] = 1.0
    response = smoothing(impulse)[0, :, 0]
    assert torch.all(response[:4] == 0.0)
    torch.testing.assert_close(response[4:9], weights)
    assert torch.all(response[9:] == 0.0)


@pytest.mark.parametrize('kind', ['gru', 'active'])
def test_streaming_step_equals_batched_forward(kind):
    """Step frame by frame through the stream state and match the batched pass."""
    torch.manual_seed(0)
    network = _tiny(kind)
    x = torch.randn(3, 40, INPUT_DIM) * 2.0 + 1.0
    with torch.no_grad():
        batched, streamed = _as_tuple(network(x)), _as_tuple(_stream(network, x))
    for expected, actual in zip(batched, streamed):
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('kind', ['gru', 'active'])
def test_future_frames_do_not_change_past_outputs(kind):
    """Perturb the future of the input: every output before it stays bit-for-bit close."""
    torch.manual_seed(1)
    network = _tiny(kind)
    x = torch.randn(2, 30, INPUT_DIM)
    changed = x.clone()
    changed[:, 17:] += 5.0 * torch.randn(2, 13, INPUT_DIM)
    with torch.no_grad():
        before, after = _as_tuple(network(x)), _as_tuple(network(changed))
    for a, b in zip(before, after):
        torch.testing.assert_close(a[:, :17], b[:, :17], atol=1e-6, rtol=0)
        assert not torch.allclose(a[:, 17:], b[:, 17:])


def test_non_causal_variant_looks_ahead_and_cannot_stream():
    """Show that the look-ahead variant does see the future, which is why it cannot stream."""
    torch.manual_seed(2)
    network = _tiny('active', future_neighbors=2)
    x = torch.randn(1, 20, INPUT_DIM)
    changed = x.clone()
    changed[:, 10:] += 3.0
    with torch.no_grad():
        assert not torch.allclose(network(x)[:, 8:10], network(changed)[:, 8:10])
        with pytest.raises(ValueError, match='cannot stream'):
            network.step(x[:, 0], network.init_state(1))


def test_mdn_nll_matches_a_single_gaussian():
    """Reduce to the diagonal normal log-density for one component; mask out padding."""
    torch.manual_seed(3)
    means, log_stds = torch.randn(4, 7, 1, 3), 0.3 * torch.randn(4, 7, 1, 3)
    target = torch.randn(4, 7, 3)
    expected = torch.distributions.Normal(means[..., 0, :], log_stds[..., 0, :].exp()).log_prob(
        target).sum(-1)
    logits = torch.zeros(4, 7, 1)
    torch.testing.assert_close(mdn_log_likelihood(logits, means, log_stds, target), expected)
    mask = torch.zeros(4, 7, dtype=torch.bool)
    mask[:, :3] = True
    torch.testing.assert_close(mdn_nll(logits, means, log_stds, target, mask),
                               -expected[:, :3].mean())


def test_sampling_is_seeded_and_follows_the_mixture():
    """Repeat with one seed, differ across seeds; match the mixture's mean and variance."""
    torch.manual_seed(4)
    network = _tiny('gru')
    x = torch.randn(1, 25, INPUT_DIM)
    with torch.no_grad():
        draws = [network.sample(x, torch.Generator().manual_seed(seed)) for seed in (7, 7, 8)]
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)
    assert not torch.allclose(draws[0], draws[2])

    logits = torch.tensor([0.0, 1.0, -1.0])
    means = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.5, 0.0], [3.0, 0.0, -2.0]])
    log_stds = torch.log(torch.tensor([[0.1], [0.3], [0.2]])).expand(3, 3)
    noise = torch.randn(40000, 4, generator=torch.Generator().manual_seed(0))
    samples = sample_mixture(logits.expand(40000, 3), means.expand(40000, 3, 3),
                             log_stds.expand(40000, 3, 3), noise)
    torch.testing.assert_close(samples.mean(0), mixture_mean(logits, means), atol=0.03, rtol=0)
    torch.testing.assert_close(samples.var(0), mixture_moments(logits, means, log_stds)[1],
                               atol=0.05, rtol=0.03)
    cold = sample_mixture(logits.expand(2000, 3), means.expand(2000, 3, 3),
                          log_stds.expand(2000, 3, 3), noise[:2000], temperature=0.05)
    assert (cold - means[1]).abs().max() < 0.3  # low temperature: the likeliest component


@pytest.fixture
def one_thread():
    """Run torch on one thread: faster for tiny models, and steady on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gru_mdn_learns_a_lagged_causal_mapping_quickly(one_thread):
    """Fit a 3-frame-lagged linear target in 200 CPU steps (~1.5 s): the NLL falls, MAE is low."""
    torch.manual_seed(5)
    network = CausalGRUListener(GRUListenerConfig(
        input_dim=2, conv_channels=16, conv_kernel=3, hidden_size=24, num_layers=1,
        num_mixtures=2, dropout=0.0))
    x = torch.randn(16, 48, 2)
    lagged = torch.nn.functional.pad(x[:, :-3, :1], (0, 0, 3, 0))
    target = torch.cat((0.8 * lagged, -0.5 * lagged, 0.3 * lagged), dim=-1)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    losses = []
    network.train()
    for _ in range(200):
        optimizer.zero_grad()
        loss = network.training_loss(x, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    network.eval()
    with torch.no_grad():
        mae = (network.predict_mean(x) - target).abs().mean().item()
    assert losses[-1] < losses[0] - 3.0
    # Against the neutral prediction's MAE: 200 steps at this rate land between 0.04x and
    # 0.21x of it depending on the CPU's float rounding (seeds 0..5 measured), so the bound
    # asserts the mapping was learned without depending on the trajectory's details.
    assert mae < 0.35 * target.abs().mean().item(), mae


def test_active_listener_training_loss_is_masked_mae():
    """Average the absolute error over unmasked frames only."""
    network = _tiny('active')
    x = torch.randn(2, 6, INPUT_DIM)
    with torch.no_grad():
        prediction = network(x)
        mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
        expected = (prediction - 1.0).abs().mean(-1)[mask].mean()
        torch.testing.assert_close(network.training_loss(x, torch.ones(2, 6, 3), mask), expected)


def test_build_network_validates_and_default_sizes():
    """Build both architectures by name, refuse unknown settings, and report default sizes."""
    assert isinstance(build_network('causal_gru_mdn'), CausalGRUListener)
    network = build_network('causal_active_listener', {'hidden_dim': 16})
    assert network.config.hidden_dim == 16
    with pytest.raises(ValueError, match='unknown'):
        build_network('causal_gru_mdn', {'hidden': 3})
    with pytest.raises(ValueError, match='unknown architecture'):
        build_network('transformer')
    with pytest.raises(ValueError):
        GRUListenerConfig(num_mixtures=0)
    assert 200_000 < count_parameters(CausalActiveListener()) < 1_000_000
    assert 200_000 < count_parameters(CausalGRUListener()) < 2_000_000


def test_non_causal_layers_equal_torch_geometric_sageconv_lstm():
    """Match a stack of PyG SAGEConv(aggr='lstm') on the frame chain, away from the ends."""
    pyg_nn = pytest.importorskip('torch_geometric.nn')
    torch.manual_seed(6)
    past, future, layers, steps = 3, 2, 2, 24
    network = _tiny('active', past_neighbors=past, future_neighbors=future, num_layers=layers)
    sources, targets = [], []
    for t in range(steps):  # sorted by target, neighbours in time order
        for s in list(range(t - past, t)) + list(range(t + 1, t + future + 1)):
            if 0 <= s < steps:
                sources.append(s)
                targets.append(t)
    edge_index = torch.tensor([sources, targets])
    convs = []
    for layer in network.layers:
        conv = pyg_nn.SAGEConv(8, 8, aggr='lstm')
        conv.aggr_module.lstm.load_state_dict(layer.lstm.state_dict())
        conv.lin_l.load_state_dict(layer.lin_l.state_dict())
        conv.lin_r.load_state_dict(layer.lin_r.state_dict())
        convs.append(conv)
    x = torch.randn(1, steps, INPUT_DIM)
    with torch.no_grad():
        ours = network.encode(x)[0]
        h = torch.relu(network.input_proj(network.norm(x[0])))
        for conv in convs:
            h = torch.relu(conv(h, edge_index))
    interior = slice(layers * past, steps - layers * future)
    torch.testing.assert_close(ours[interior], h[interior], atol=1e-5, rtol=1e-5)
