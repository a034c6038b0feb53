"""Tests of the learned listener models: streaming contract, sampling, checkpoints, encoders."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from listener_head_ros.features import extract_features, FeatureConfig
from listener_head_ros.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    registered_model_types,
    WEIGHTS_NAME,
)
from listener_head_ros.models.frame_features import (
    FEATURE_DIM,
    feature_matrix,
    feature_statistics,
)
from listener_head_ros.models.learned import (
    InferenceConfig,
    save_learned_checkpoint,
    TorchListenerModel,
)
from listener_head_ros.models.networks import (
    ActiveListenerConfig,
    CausalActiveListener,
    CausalGRUListener,
    GRUListenerConfig,
)

SAMPLE_RATE = 16000


@pytest.fixture(scope='module')
def speech():
    """Return 1.2 s of speech-like audio: a gliding voiced tone, a pause, then noise."""
    t = np.arange(int(1.2 * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120.0 + 40.0 * np.sin(2 * np.pi * 1.5 * t)
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE) * (t < 0.6)
    noise = 0.05 * np.random.default_rng(0).standard_normal(t.size) * (t > 0.8)
    return (tone + noise).astype(np.float32)


def _network(kind, speech_audio):
    torch.manual_seed(0)
    if kind == 'gru':
        network = CausalGRUListener(GRUListenerConfig(
            conv_channels=8, conv_kernel=3, hidden_size=12, num_layers=2, num_mixtures=3))
    else:
        network = CausalActiveListener(ActiveListenerConfig(
            hidden_dim=8, num_layers=2, past_neighbors=3, smoothing_size=4))
    mean, std = feature_statistics([feature_matrix(extract_features(speech_audio))])
    network.norm.set_statistics(mean, std)
    return network


def _poses(frames):
    return np.array([[f.roll, f.pitch, f.yaw, f.confidence] for f in frames])


def _stream(model, audio):
    model.reset()
    hop = model.hop_length
    return [model.step(audio[i:i + hop]) for i in range(0, audio.size - hop + 1, hop)]


CASES = [
    ('gru', InferenceConfig()),
    ('gru', InferenceConfig(mode='sample', num_samples=3, noise_correlation=0.8, seed=4)),
    ('active', InferenceConfig()),
]


@pytest.mark.parametrize('kind,inference', CASES)
def test_streaming_steps_equal_batched_run(kind, inference, speech):
    """Step hop by hop through audio and match run(), samples included; twice in a row."""
    model = TorchListenerModel(_network(kind, speech), inference=inference)
    batched = _poses(model.run(speech))
    assert batched.shape == (speech.size // model.hop_length, 4)
    assert np.all(np.isfinite(batched)) and np.all((batched[:, 3] > 0) & (batched[:, 3] <= 1))
    streamed_frames = _stream(model, speech)
    streamed = _poses(streamed_frames)
    np.testing.assert_allclose(streamed, batched, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(_poses(_stream(model, speech)), streamed, atol=0, rtol=0)
    prediction = model.predict(feature_matrix(extract_features(speech)))
    for name, values in prediction.streams.items():  # every stream, every sample
        assert values.shape == (len(streamed_frames), model.num_samples, 3)
        stepped = np.stack([frame.samples[name] for frame in streamed_frames])
        np.testing.assert_allclose(stepped, values, atol=1e-5, rtol=1e-5)


def test_sampling_gives_several_seeded_reactions(speech):
    """Draw different reactions per seed and per sample, repeatable for one seed."""
    network = _network('gru', speech)
    rows = feature_matrix(extract_features(speech))

    def draw(seed, **settings):
        inference = InferenceConfig(mode='sample', num_samples=4, seed=seed, **settings)
        return TorchListenerModel(network, inference=inference).predict(rows).streams['head']

    first, again, other = draw(1), draw(1), draw(2)
    assert first.shape == (len(rows), 4, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert np.std(first, axis=1).mean() > 1e-3  # the reactions differ from each other
    smooth = draw(1, noise_correlation=0.95)
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(first, axis=0)).mean()
    mean_model = TorchListenerModel(network)
    assert mean_model.predict(rows).streams['head'].shape == (len(rows), 1, 3)


def test_invalid_settings_are_refused(speech):
    """Refuse sampling without a mixture head, bad inference values and feature mismatches."""
    with pytest.raises(ValueError, match='generative'):
        TorchListenerModel(_network('active', speech), inference=InferenceConfig(mode='sample'))
    with pytest.raises(ValueError):
        InferenceConfig(mode='argmax')
    with pytest.raises(ValueError):
        InferenceConfig(noise_correlation=1.0)
    with pytest.raises(ValueError, match='input columns'):
        TorchListenerModel(_network('gru', speech), FeatureConfig(n_mels=40))
    model = TorchListenerModel(_network('gru', speech))
    with pytest.raises(ValueError):
        model.step(np.zeros(model.hop_length + 1, dtype=np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU fallback')
def test_cuda_request_falls_back_to_cpu(speech):
    """Warn and run on the CPU when CUDA is asked for but absent."""
    with pytest.warns(RuntimeWarning, match='CUDA'):
        model = TorchListenerModel(_network('gru', speech), device='cuda')
    assert model.device == 'cpu'


@pytest.mark.parametrize('kind', ['gru', 'active'])
def test_checkpoint_round_trip_gives_identical_outputs(kind, speech, tmp_path):
    """Save, load through load_checkpoint, and reproduce every output exactly."""
    inference = InferenceConfig(mode='sample', num_samples=2, seed=3) if kind == 'gru' else None
    model = TorchListenerModel(_network(kind, speech), inference=inference)
    save_learned_checkpoint(tmp_path / 'ckpt', model)
    config = json.loads((tmp_path / 'ckpt' / 'config.json').read_text())
    assert config['model_type'] == model.name
    assert set(config['model_config']) == {'architecture', 'network', 'features', 'inference',
                                           'frame_inputs', 'targets', 'inputs'}
    assert config['model_config']['targets'] == ['head']
    assert config['model_config']['inputs'] == ['audio']
    loaded = load_checkpoint(tmp_path / 'ckpt', frame_rate=30.0)
    assert isinstance(loaded, TorchListenerModel) and loaded.name == model.name
    np.testing.assert_array_equal(_poses(loaded.run(speech)), _poses(model.run(speech)))
    assert torch.equal(loaded.network.norm.std, model.network.norm.std)


def test_bare_network_checkpoint_and_registration(speech, tmp_path):
    """Save a training-mode network as-is; list both architectures as loadable types."""
    network = _network('gru', speech).train()
    save_learned_checkpoint(tmp_path, network)
    assert network.training
    assert {'causal_gru_mdn', 'causal_active_listener'} <= set(registered_model_types())
    assert isinstance(load_checkpoint(tmp_path).network, CausalGRUListener)


def test_checkpoint_import_alone_loads_learned_models(speech, tmp_path):
    """Load a learned checkpoint in a fresh process that only imports the checkpoint module."""
    save_learned_checkpoint(tmp_path, _network('active', speech))
    code = ('import sys; from listener_head_ros.models.checkpoint import load_checkpoint; '
            'print(load_checkpoint(sys.argv[1]).name)')
    result = subprocess.run([sys.executable, '-c', code, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == 'causal_active_listener'


def test_inconsistent_checkpoints_are_refused(speech, tmp_path):
    """Refuse a frame-rate mismatch, missing weights and unknown settings with CheckpointError."""
    directory = save_learned_checkpoint(tmp_path / 'ok', _network('gru', speech))
    with pytest.raises(CheckpointError, match='frames/s'):
        load_checkpoint(directory, frame_rate=25.0)
    config_path = directory / 'config.json'
    config = json.loads(config_path.read_text())
    config['model_config']['network']['hidden_size'] = 13
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match='weights do not match'):
        load_checkpoint(directory)
    config['model_config']['network']['depth'] = 2
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match='unknown network settings'):
        load_checkpoint(directory)


def test_a_small_config_asking_for_a_huge_network_allocates_nothing(speech, tmp_path):
    """A config that implies gigabytes of weights the file lacks is refused before allocating."""
    directory = save_learned_checkpoint(tmp_path / 'huge', _network('gru', speech))
    config_path = directory / 'config.json'
    config = json.loads(config_path.read_text())
    config['model_config']['network']['hidden_size'] = 15000  # about 2.9 GB of float32
    config_path.write_text(json.dumps(config))
    code = ('import resource, sys; from listener_head_ros.models.checkpoint import '
            'CheckpointError, load_checkpoint\n'
            'before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
            'try:\n    load_checkpoint(sys.argv[1])\nexcept CheckpointError as error:\n'
            '    print(error)\n'
            'print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)')
    result = subprocess.run([sys.executable, '-c', code, str(directory)], capture_output=True,
                            text=True, timeout=120, check=True)
    message, grown_mb = result.stdout.strip().rsplit('\n', 1)
    assert 'the config implies (45000,)' in message
    assert int(grown_mb) < 100, f'loading grew the peak RSS by {grown_mb} MB'


def test_sample_counts_are_bounded():
    """A checkpoint cannot ask for millions of samples per frame."""
    with pytest.raises(ValueError, match='num_samples must be in 1..64'):
        InferenceConfig(mode='sample', num_samples=100_000_000)


class _Payload:
    """Would create a marker file if anything unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_crafted_pickle_in_the_weights_slot_is_refused(speech, tmp_path):
    """Refuse a pickle saved as model.safetensors, and never execute it."""
    directory = save_learned_checkpoint(tmp_path / 'ckpt', _network('gru', speech))
    marker = tmp_path / 'unpickled'
    (directory / WEIGHTS_NAME).write_bytes(pickle.dumps({'weights': _Payload(str(marker))}))
    with pytest.raises(CheckpointError, match='never unpickled'):
        load_checkpoint(directory)
    assert not marker.exists()


def test_feature_dim_constant():
    """Keep the default network input width in step with the feature layout."""
    assert GRUListenerConfig().input_dim == ActiveListenerConfig().input_dim == FEATURE_DIM == 68
