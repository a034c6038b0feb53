"""Tests of checkpoint saving and loading (safetensors only, never pickles) and device choice."""

from dataclasses import asdict
import json
import os
from pathlib import Path
import pickle

import numpy as np
import pytest

from listener_head_ros.models.checkpoint import (
    CheckpointError, CONFIG_NAME, load_checkpoint, load_listener_model, MAX_CONFIG_BYTES,
    MAX_CONFIG_DEPTH, read_checkpoint, registered_model_types, save_checkpoint,
    save_prosodic_checkpoint)
from listener_head_ros.models.device import release_device_memory, resolve_device
from listener_head_ros.models.prosodic import ProsodicListener, ProsodicListenerConfig

TINY_NETWORKS = {  # architecture -> (config class, network class, sizes), by module and name
    'gru': ('GRUListenerConfig', 'CausalGRUListener',
            dict(conv_channels=2, conv_kernel=2, hidden_size=2, num_layers=1, num_mixtures=1)),
    'active': ('ActiveListenerConfig', 'CausalActiveListener',
               dict(hidden_dim=2, num_layers=1, past_neighbors=1, smoothing_size=2)),
}


def save_tiny_checkpoint(directory: Path, kind: str) -> Path:
    """Write a valid checkpoint of a tiny 'gru' or 'active' network (seeded); return it."""
    torch = pytest.importorskip('torch')
    from listener_head_ros.models import networks
    from listener_head_ros.models.learned import save_learned_checkpoint
    config, network, sizes = TINY_NETWORKS[kind]
    torch.manual_seed(0)
    return save_learned_checkpoint(
        directory, getattr(networks, network)(getattr(networks, config)(**sizes)))


def edit_config(directory: Path, section: str, **values) -> Path:
    """Set ``values`` in one section of a learned checkpoint's model config; return it."""
    path = directory / CONFIG_NAME
    config = json.loads(path.read_text())
    config['model_config'][section].update(values)
    path.write_text(json.dumps(config))
    return directory


class ShellOnUnpickle:
    """An object whose unpickling runs a shell command (the classic pickle exploit)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        """Ask the unpickler to call os.system, which would create the marker file."""
        return os.system, (f'touch {self.marker}',)


@pytest.fixture
def checkpoint(tmp_path):
    """Return a valid prosodic checkpoint directory."""
    return save_prosodic_checkpoint(tmp_path / 'ckpt', ProsodicListenerConfig())


def test_prosodic_checkpoint_round_trip(tmp_path):
    """A saved prosodic checkpoint loads back with the same settings and the same behaviour."""
    config = ProsodicListenerConfig(nod_amplitude=0.2, drift_std=(0.01, 0.02, 0.03), seed=7)
    directory = save_prosodic_checkpoint(tmp_path / 'ckpt', config)
    assert sorted(p.name for p in directory.iterdir()) == ['config.json', 'model.safetensors']
    model_type, model_config, tensors = read_checkpoint(directory)
    assert (model_type, tensors) == ('prosodic', {})
    assert model_config == json.loads(json.dumps(asdict(config)))
    model = load_checkpoint(directory, frame_rate=25.0)
    assert isinstance(model, ProsodicListener) and model.config == config
    assert model.frame_rate == pytest.approx(25.0, rel=1e-3)
    reference = ProsodicListener(config, frame_rate=25.0)
    audio = 0.3 * np.random.default_rng(0).standard_normal(20 * model.hop_length)
    for hop in audio.reshape(20, -1).astype(np.float32):
        a, b = model.step(hop), reference.step(hop)
        assert (a.roll, a.pitch, a.yaw) == (b.roll, b.pitch, b.yaw)
    assert isinstance(load_listener_model(str(directory)), ProsodicListener)
    assert isinstance(load_listener_model('prosodic'), ProsodicListener)
    assert 'prosodic' in registered_model_types()


def test_tensors_round_trip(tmp_path):
    """Tensors saved with a checkpoint come back bit for bit."""
    tensors = {'w': np.arange(12, dtype=np.float32).reshape(3, 4), 'b': np.ones(2, np.float64)}
    directory = save_checkpoint(tmp_path / 'c', 'some_model', {'size': 3}, tensors)
    model_type, model_config, loaded = read_checkpoint(directory)
    assert (model_type, model_config) == ('some_model', {'size': 3})
    assert loaded.keys() == tensors.keys()
    for name, value in tensors.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype == value.dtype


def test_missing_directory(tmp_path):
    """A checkpoint path that does not exist fails with a clear message."""
    with pytest.raises(CheckpointError, match='checkpoint directory .*nowhere does not exist'):
        load_checkpoint(tmp_path / 'nowhere')


@pytest.mark.parametrize('name', ['config.json', 'model.safetensors'])
def test_missing_file(checkpoint, name):
    """A checkpoint without its config or weights fails and names the missing file."""
    (checkpoint / name).unlink()
    with pytest.raises(CheckpointError, match=f'has no {name}'):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize('text, message', [
    ('{"model_type": "prosodic", ', 'is not valid JSON'),
    ('\udcff', 'is not valid JSON'),
    ('[1, 2]', 'must be an object with a "model_type" string'),
    ('{"model_config": {}}', 'must be an object with a "model_type" string'),
    ('{"model_type": "prosodic", "model_config": [1]}', '"model_config" must be an object'),
])
def test_corrupt_config(checkpoint, text, message):
    """Corrupt or ill-shaped config.json files fail with a clear message."""
    (checkpoint / 'config.json').write_bytes(text.encode('utf-8', 'surrogateescape'))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(checkpoint)


def test_unknown_model_type(tmp_path):
    """An unregistered model_type fails and lists the known types."""
    directory = save_checkpoint(tmp_path / 'c', 'transformer_xl', {})
    with pytest.raises(CheckpointError, match="unknown model_type 'transformer_xl'; known: .*"
                                              'prosodic'):
        load_checkpoint(directory)


@pytest.mark.parametrize('config, message', [
    ({'nod_amplitude': 0.1, 'bogus': 1}, r"unknown prosodic settings \['bogus'\]"),
    ({'nod_max_cycles': 0}, 'nod_max_cycles'),
    ({'drift_std': [0.1]}, 'drift_std'),
])
def test_wrong_model_config(tmp_path, config, message):
    """Settings that do not fit the model fail as CheckpointError naming the problem."""
    directory = save_checkpoint(tmp_path / 'c', 'prosodic', config)
    with pytest.raises(CheckpointError, match="does not fit a 'prosodic' model: .*" + message):
        load_checkpoint(directory)


@pytest.mark.parametrize('writer', ['pickle', 'torch.save'])
def test_pickle_in_the_weights_slot_is_refused_and_never_run(checkpoint, tmp_path, writer):
    """A pickle disguised as model.safetensors is refused without being unpickled."""
    marker = tmp_path / 'pwned'
    payload = {'weights': ShellOnUnpickle(marker)}
    weights = checkpoint / 'model.safetensors'
    if writer == 'pickle':
        weights.write_bytes(pickle.dumps(payload))
    else:
        torch = pytest.importorskip('torch')
        torch.save(payload, weights)
    with pytest.raises(CheckpointError, match='not a readable safetensors file.*never unpickled'):
        load_checkpoint(checkpoint)
    assert not marker.exists(), 'the pickle was executed'


def test_pickle_next_to_the_config_is_ignored(checkpoint, tmp_path):
    """A .pt file instead of model.safetensors is not loaded: the safetensors file is required."""
    marker = tmp_path / 'pwned'
    (checkpoint / 'model.safetensors').unlink()
    (checkpoint / 'model.pt').write_bytes(pickle.dumps(ShellOnUnpickle(marker)))
    with pytest.raises(CheckpointError, match='has no model.safetensors'):
        load_checkpoint(checkpoint)
    assert not marker.exists()


@pytest.mark.parametrize('damage', ['truncate', 'huge_header', 'garbage', 'empty'])
def test_damaged_safetensors_is_refused(tmp_path, damage):
    """Truncated, oversized-header, garbage or empty weights fail with a clear message."""
    directory = save_checkpoint(tmp_path / 'c', 'prosodic', {},
                                {'w': np.ones((64, 64), dtype=np.float32)})
    weights = directory / 'model.safetensors'
    data = weights.read_bytes()
    weights.write_bytes({
        'truncate': data[:len(data) // 2],
        'huge_header': (2 ** 40).to_bytes(8, 'little') + data[8:],
        'garbage': os.urandom(256),
        'empty': b'',
    }[damage])
    with pytest.raises(CheckpointError, match='model.safetensors is not a readable safetensors'):
        load_checkpoint(directory)


def test_cuda_falls_back_to_the_cpu_with_a_warning():
    """Asking for CUDA on a machine without it gives the CPU and a warning."""
    torch = pytest.importorskip('torch')
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    for requested in ('cuda', 'cuda:1'):
        device, warning = resolve_device(requested)
        assert device == 'cpu'
        assert f"device '{requested}' requested but CUDA is not available" in warning
    assert resolve_device('auto') == ('cpu', None)


def test_cpu_and_invalid_devices():
    """'cpu' needs no torch query; an unknown device name is a ValueError listing the choices."""
    assert resolve_device('cpu') == ('cpu', None)
    for bad in ('gpu', 'CUDA', '', 'tpu:0'):
        with pytest.raises(ValueError, match='device must be one of auto, cpu, cuda'):
            resolve_device(bad)
    release_device_memory('cpu')  # a no-op without CUDA


@pytest.mark.parametrize('text, message', [
    ('[' * 100_000 + ']' * 100_000, 'is not valid JSON: maximum recursion depth'),
    ('{"model_type": ' + '1' * 5000 + '}', 'is not valid JSON: Exceeds the limit'),
    ('{"model_type": "prosodic", "model_config": ' + '[' * 20 + ']' * 20 + '}',
     f'nests deeper than {MAX_CONFIG_DEPTH} levels'),
])
def test_config_json_that_no_parser_should_follow_is_refused(checkpoint, text, message):
    """Deep nesting and huge integers fail as CheckpointError, not RecursionError/ValueError."""
    (checkpoint / 'config.json').write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(checkpoint)


def test_an_oversized_config_json_is_refused_unread(checkpoint):
    """A config.json over MAX_CONFIG_BYTES is refused by its size, before it is read."""
    (checkpoint / 'config.json').write_bytes(b' ' * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(CheckpointError, match=f'more than a checkpoint config may have '
                                              fr'\({MAX_CONFIG_BYTES}\)'):
        load_checkpoint(checkpoint)


def test_prosodic_settings_are_read_with_their_types(tmp_path):
    """Prosodic settings are type-checked; a JSON integer is a float setting's value."""
    directory = save_checkpoint(tmp_path / 'c', 'prosodic', {'nod_amplitude': 0, 'seed': 3})
    model = load_checkpoint(directory)
    assert model.config.nod_amplitude == 0.0 and isinstance(model.config.nod_amplitude, float)
    for bad, message in [({'nod_amplitude': 'big'}, 'nod_amplitude must be a number'),
                         ({'seed': 1.5}, 'seed must be an integer'),
                         ({'nod_duration': 10 ** 400}, 'nod_duration is too large'),
                         ({'drift_std': [0.1, 'x', 0.1]}, 'drift_std must be a list of 3')]:
        directory = save_checkpoint(tmp_path / 'c', 'prosodic', bad)
        with pytest.raises(CheckpointError, match='prosodic settings: ' + message):
            load_checkpoint(directory)


@pytest.mark.parametrize('kind, section, values, message', [
    ('gru', 'network', {'num_layers': 10 ** 6}, 'implies more than 28 tensors'),
    ('active', 'network', {'num_layers': 10 ** 9}, 'implies more than 34 tensors'),
    ('active', 'network', {'past_neighbors': 10 ** 9},
     'implies 2000000005 values of unsaved buffers and stream state, more than its 341'),
    ('active', 'network', {'smoothing_size': 2 ** 63}, 'cannot build the network'),
    ('gru', 'network', {'hidden_size': 10 ** 30}, 'cannot build the network'),
    ('gru', 'features', {'n_fft': 10 ** 9}, 'n_fft 1000000000 must be in 1..sample_rate'),
    ('gru', 'features', {'sample_rate': 10 ** 12}, 'sample_rate 1000000000000 Hz is outside'),
    ('gru', 'features', {'n_fft': 16000, 'n_mels': 1000},
     'n_mels 1000 x 8001 FFT bins must make 1..4194304 mel filterbank values'),
    ('gru', 'features', {'silence_db': 'loud'}, 'silence_db must be a number'),
    ('gru', 'features', {'fmin': float('nan')}, 'fmin must be finite'),
    ('gru', 'inference', {'num_samples': True}, 'num_samples must be a number'),
    ('gru', 'network', {'max_log_std': 1e308}, 'fails its first step'),
    ('active', 'network', {'future_neighbors': 1}, 'fails its first step: .*cannot stream'),
])
def test_learned_configs_that_would_blow_up_are_refused(tmp_path, kind, section, values,
                                                        message):
    """Sizes, types and values that would allocate, hang or fail later are refused at load."""
    directory = edit_config(save_tiny_checkpoint(tmp_path / 'c', kind), section, **values)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(directory)


def test_a_json_integer_is_a_float_setting_and_the_model_steps(tmp_path):
    """A hand-written frame_rate of 30 loads as 30.0, and the loaded model has stepped once."""
    directory = edit_config(save_tiny_checkpoint(tmp_path / 'c', 'gru'), 'features',
                            frame_rate=30, fmin=60)
    model = load_checkpoint(directory)
    assert model.feature_config.frame_rate == 30.0
    assert np.isfinite(model.step(np.zeros(model.hop_length, dtype=np.float32)).pitch)
