"""Tests of the flow-matching listener: streaming parity, causality, masks, modes, checkpoints."""

import numpy as np
import pytest
import torch

from listener_head_ros.features import extract_features
from listener_head_ros.models.checkpoint import load_listener_model
from listener_head_ros.models.flow import CausalGRUFlow, FlowListenerConfig, MAX_SAMPLE_STEPS
from listener_head_ros.models.frame_features import (
    FEATURE_DIM, feature_matrix, feature_statistics)
from listener_head_ros.models.learned import (
    InferenceConfig, save_learned_checkpoint, TorchListenerModel)
from listener_head_ros.models.registry import build_network, network_names
from listener_head_ros.streams import COEFFICIENTS, FACIAL_ATTRIBUTES, total_dim
import test_learned_models
import test_networks

TARGETS = (FACIAL_ATTRIBUTES.name, COEFFICIENTS.name)
FACE_DIM = total_dim(TARGETS)
TINY = dict(conv_channels=8, conv_kernel=3, hidden_size=12, num_layers=2, dropout=0.0,
            flow_width=16, flow_layers=2, time_dim=4)
SAMPLING = InferenceConfig(mode='sample', num_samples=3, noise_correlation=0.8, seed=5)
speech = test_learned_models.speech  # the fixtures of those tests
one_thread = test_networks.one_thread


def _face_network(speech_audio, **overrides):
    """Return a tiny face flow with feature and target statistics set, in eval mode."""
    torch.manual_seed(0)
    network = CausalGRUFlow(FlowListenerConfig(output_dim=FACE_DIM, **{**TINY, **overrides}))
    network.norm.set_statistics(*feature_statistics(
        [feature_matrix(extract_features(speech_audio))]))
    network.set_target_statistics(torch.randn(FACE_DIM), torch.rand(FACE_DIM) + 0.5)
    return network.eval()


def _stream(model, audio):
    model.reset()
    hop = model.hop_length
    return [model.step(audio[i:i + hop]) for i in range(0, audio.size - hop + 1, hop)]


def test_streaming_steps_equal_batched_predict_for_every_stream_and_sample(speech):
    """Step hop by hop and match predict() and run(): every stream, every one of 3 samples."""
    model = TorchListenerModel(_face_network(speech), inference=SAMPLING, targets=TARGETS)
    frames = _stream(model, speech)
    prediction = model.predict(feature_matrix(extract_features(speech)))
    for name, values in prediction.streams.items():
        assert values.shape == (len(frames), 3, total_dim([name]))
        stepped = np.stack([frame.samples[name] for frame in frames])
        np.testing.assert_allclose(stepped, values, atol=1e-5, rtol=1e-5)
        assert np.std(values, axis=1).mean() > 1e-3  # the samples differ
    ran = model.run(speech)
    np.testing.assert_allclose([f.confidence for f in ran], [f.confidence for f in frames],
                               atol=1e-6, rtol=1e-5)
    for a, b in zip(ran, frames):
        np.testing.assert_allclose(a.coefficients, b.coefficients, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(a.facial_attributes, b.facial_attributes, atol=1e-5,
                                   rtol=1e-5)


def test_future_frames_do_not_change_past_outputs(speech):
    """Perturb the input from frame 17 on: outputs and point predictions before it stay."""
    network = _face_network(speech)
    x = torch.randn(2, 30, FEATURE_DIM)
    changed = x.clone()
    changed[:, 17:] += 5.0 * torch.randn(2, 13, FEATURE_DIM)
    with torch.no_grad():
        before, after = network(x), network(changed)
        points = network.predict_mean(x), network.predict_mean(changed)
    for a, b in zip(before + (points[0],), after + (points[1],)):
        torch.testing.assert_close(a[:, :17], b[:, :17], atol=1e-6, rtol=0)
        assert not torch.allclose(a[:, 17:], b[:, 17:])


def test_loss_counts_only_masked_in_columns():
    """Split the mask: the losses add up as masked means; NaN masked-out targets stay out."""
    torch.manual_seed(1)
    network = CausalGRUFlow(FlowListenerConfig(input_dim=4, output_dim=5, **TINY))
    x, target, noise = torch.randn(2, 9, 4), torch.randn(2, 9, 5), torch.randn(2, 9, 6)
    mask = torch.ones(2, 9, 5, dtype=torch.bool)
    mask[1, 6:] = False  # padding
    first, rest = mask.clone(), mask.clone()
    first[..., 2:] = False
    rest[..., :2] = False
    with torch.no_grad():
        outputs = network(x)

        def loss(m, y=target):
            return network.loss(outputs, y, m, noise)

        total = (loss(first) * first.sum() + loss(rest) * rest.sum()) / mask.sum()
        torch.testing.assert_close(total, loss(mask))
        hidden = target.clone()
        hidden[1, 6:] = float('nan')
        torch.testing.assert_close(loss(mask, hidden), loss(mask))
        hidden[..., 2:] = float('nan')
        assert torch.isfinite(loss(first, hidden))
        assert loss(torch.zeros_like(mask)) == 0.0
        frames = mask.any(-1)
        torch.testing.assert_close(loss(frames), loss(frames[..., None].expand(mask.shape)))
        shifted = target.clone()
        shifted[0, 0, 0] += 3.0
        assert not torch.isclose(loss(first, shifted), loss(first))
        assert network.training_loss(x, target, mask, noise) == loss(mask)


def test_checkpoint_round_trip_through_load_listener_model(speech, tmp_path):
    """Save a sampling face model, load it by path, and reproduce every sample exactly."""
    model = TorchListenerModel(_face_network(speech), inference=SAMPLING, targets=TARGETS)
    save_learned_checkpoint(tmp_path / 'flow', model)
    loaded = load_listener_model(str(tmp_path / 'flow'))
    assert isinstance(loaded.network, CausalGRUFlow) and loaded.targets == TARGETS
    torch.testing.assert_close(loaded.network.target_norm.std, model.network.target_norm.std)
    rows = feature_matrix(extract_features(speech))
    expected, actual = model.predict(rows), loaded.predict(rows)
    for name in TARGETS:
        np.testing.assert_array_equal(actual.streams[name], expected.streams[name])
    np.testing.assert_array_equal(actual.confidence, expected.confidence)


def _modes(gen, batch, steps):
    """Return inputs (B, T, 2) and targets: column 0 is x0 + 1 or x0 - 1 at random."""
    x = torch.randn(batch, steps, 2, generator=gen)
    side = torch.where(torch.rand(batch, steps, generator=gen) < 0.5, -1.0, 1.0)
    return x, torch.stack((x[..., 0] + side, 0.5 * x[..., 1]), dim=-1)


def test_a_briefly_trained_flow_samples_both_modes_and_the_point_does_not(one_thread):
    """Fit a conditional two-mode target: samples split between modes, the point is one."""
    torch.manual_seed(2)
    network = CausalGRUFlow(FlowListenerConfig(
        input_dim=2, output_dim=2, conv_channels=16, conv_kernel=3, hidden_size=32,
        num_layers=1, dropout=0.0, flow_width=64, flow_layers=2, time_dim=8))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(3)
    network.train()
    for _ in range(250):
        x, y = _modes(gen, 16, 24)
        optimizer.zero_grad()
        network.training_loss(x, y).backward()
        optimizer.step()
    network.eval()
    x, _ = _modes(gen, 4, 24)
    noise = torch.randn(4, 24, 32, 2, generator=gen)
    with torch.no_grad():
        outputs = network(x)
        samples, cold = (network.draw(outputs, noise, t) for t in (1.0, 1e-12))
        point = network.predict_mean(x)
    offset = samples[..., 0] - x[..., 0, None]  # (B, T, S): near +1 or -1
    upper, lower = (offset > 0.5).float().mean(), (offset < -0.5).float().mean()
    assert 0.3 <= upper <= 0.7 and 0.3 <= lower <= 0.7, (upper, lower)
    both = ((offset > 0.5).float().mean(-1) >= 0.2) & ((offset < -0.5).float().mean(-1) >= 0.2)
    assert both.float().mean() >= 0.9  # nearly every frame's samples hold both modes
    # the point prediction is one value per frame, where cold samples all collapse
    assert (cold - point[..., None, :]).abs().max() < 1e-3
    assert (cold[..., 0] - x[..., 0, None]).std(-1).max() < 1e-3


def test_sample_steps_change_cost_not_the_interface():
    """Load the same weights with 1, 4 and 9 steps: same shapes, 2 MLP passes per step."""
    torch.manual_seed(4)
    networks = [CausalGRUFlow(FlowListenerConfig(input_dim=4, output_dim=3, sample_steps=n,
                                                 **TINY)).eval() for n in (1, 4, 9)]
    for network in networks[1:]:
        network.load_state_dict(networks[0].state_dict())
    x, noise = torch.randn(1, 7, 4), torch.randn(7, 5, 3)
    draws = []
    for network in networks:
        calls = []
        network.flow_out.register_forward_hook(lambda *args, c=calls: c.append(1))
        with torch.no_grad():
            outputs = tuple(o[0] for o in network(x))
            draws.append(network.draw(outputs, noise, 1.0))
        assert draws[-1].shape == (7, 5, 3)
        assert len(calls) == 2 * network.config.sample_steps
    assert (draws[2] - draws[1]).abs().max() < (draws[0] - draws[1]).abs().max()


def test_cold_temperature_collapses_samples_onto_the_zero_noise_path(speech):
    """Shrink the temperature: samples approach the point prediction, the spread shrinks."""
    network = _face_network(speech)
    with torch.no_grad():
        outputs = tuple(o[0] for o in network(torch.randn(1, 12, FEATURE_DIM)))
        point, std = network.predictive(outputs)
        noise = torch.randn(12, 6, FACE_DIM)
        spreads = [(network.draw(outputs, noise, t) - point[:, None]).abs().mean()
                   for t in (1.0, 0.1, 1e-10)]
    assert spreads[0] > spreads[1] > spreads[2] and spreads[2] < 1e-4
    assert std.shape == point.shape and bool((std > 0).all())
    with pytest.raises(ValueError, match='temperature'):
        network.draw(outputs, noise, 0.0)


@pytest.mark.parametrize('settings', [
    {'sample_steps': 0}, {'sample_steps': MAX_SAMPLE_STEPS + 1}, {'time_dim': 3},
    {'flow_width': 0}, {'flow_layers': 0}, {'dropout': 1.0}, {'output_dim': 0},
    {'min_log_std': 1.0, 'max_log_std': 0.0}])
def test_bad_configs_are_refused(settings):
    """Raise ValueError for out-of-range settings, built directly or by name."""
    with pytest.raises(ValueError):
        FlowListenerConfig(**settings)
    with pytest.raises(ValueError):
        build_network('causal_gru_flow', settings)


def test_registered_with_bounded_statistics():
    """Build by name; refuse unknown settings and unfit target statistics."""
    assert 'causal_gru_flow' in network_names()
    network = build_network('causal_gru_flow', {'output_dim': 4})
    assert network.noise_dim == 4 and network.config.sample_steps == 4
    with pytest.raises(ValueError, match='unknown'):
        build_network('causal_gru_flow', {'steps': 3})
    with pytest.raises(ValueError, match='target statistics'):
        network.set_target_statistics(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match='target statistics'):
        network.set_target_statistics(np.zeros(3), np.ones(3))
