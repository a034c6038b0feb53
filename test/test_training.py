"""
Tests of the training pipeline: config, cross-validation, checkpoints, resume and DDP.

Everything runs on a tiny synthetic IEMOCAP-format corpus (3 sessions, 2 dialogs each) whose
feature cache is prepared once per module, with tiny networks trained for a few steps on the
CPU. The distributed test starts 2 gloo processes with ``torch.distributed.run``.
"""

from dataclasses import replace
import io
import json
import math
import os
from pathlib import Path
import runpy
import subprocess
import sys

import numpy as np
import pytest
from safetensors.torch import load_file
import torch
import yaml

from listener_head_ros.data.feature_cache import FeatureCache, prepare_cache
from listener_head_ros.data.iemocap import IemocapConfig, IemocapSource
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.eval.head_metrics import aggregate, utterance_metrics
from listener_head_ros.models.checkpoint import load_checkpoint, load_listener_model
from listener_head_ros.models.learned import save_learned_checkpoint, TorchListenerModel
from listener_head_ros.models.networks import CausalActiveListener, CausalGRUListener
from listener_head_ros.settings import load_listener_settings
from listener_head_ros.training import trainer
from listener_head_ros.training.config import ConfigError, TrainConfig
from listener_head_ros.training.dataset import DialogCrops, DialogData, load_dialogs
from listener_head_ros.training.evaluation import predict_dialogs, streaming_head
from listener_head_ros.training.resume import TENSORS_NAME

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = (1, 2, 3)
TINY_GRU = {'conv_channels': 16, 'hidden_size': 16, 'num_layers': 1, 'num_mixtures': 2,
            'dropout': 0.0}
TINY_ACTIVE_LISTENER = {'hidden_dim': 16, 'num_layers': 1, 'past_neighbors': 3,
                        'dropout': 0.0}


# Fixtures and helpers ------------------------------------------------------------------------

@pytest.fixture(scope='module', autouse=True)
def one_torch_thread():
    """Train on one thread: tiny networks on 2 shared cores run fastest, and deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate a tiny synthetic corpus and its feature cache, once for this module."""
    base = tmp_path_factory.mktemp('synthetic')
    config = SyntheticConfig(sessions=SESSIONS, dialogs_per_session=2, turns_per_dialog=4,
                             long_gap_probability=0.0)
    generated = generate_corpus(base / 'corpus', config, seed=0)
    cache = prepare_cache(IemocapSource(generated.root, sessions=SESSIONS), base / 'cache',
                          progress=False, out=io.StringIO())
    assert cache.groups == ['1', '2', '3']
    return generated, cache


def _config(cache: FeatureCache, out_dir: Path, **overrides) -> TrainConfig:
    settings = dict(cache_dir=str(cache.cache_dir), out_dir=str(out_dir), model=TINY_GRU,
                    folds=(1, 2), steps=20, batch_size=4, crop_frames=64, burn_in_frames=32,
                    warmup_steps=2, log_every=5, checkpoint_every=10, device='cpu',
                    mixed_precision=False, streaming_eval=False)
    settings.update(overrides)
    return TrainConfig(**settings)


def _record_initial_weights(monkeypatch) -> list:
    """Record a copy of every network's weights as the trainer builds it."""
    built = []
    build = trainer.build_network

    def recording_build(architecture, config=None):
        network = build(architecture, config)
        built.append({k: v.detach().clone() for k, v in network.state_dict().items()})
        return network

    monkeypatch.setattr(trainer, 'build_network', recording_build)
    return built


@pytest.fixture(scope='module')
def cv_run(corpus, tmp_path_factory):
    """Cross-validate a tiny GRU on folds 1 and 2; return (config, results, initial weights)."""
    _, cache = corpus
    config = _config(cache, tmp_path_factory.mktemp('cv') / 'run', streaming_eval=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        initial = _record_initial_weights(monkeypatch)
        results = trainer.cross_validation(config, trainer.Distributed())
    return config, results, initial


def _weights(path: Path, prefix: str = '') -> dict:
    tensors = load_file(str(path))
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _flat(data: dict, prefix: str = '') -> dict:
    """Flatten nested dicts to {'a.b': value}, so that pytest.approx can compare them."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def _write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


# TrainConfig ---------------------------------------------------------------------------------

def test_config_loads_from_yaml_with_overrides(tmp_path):
    """Load YAML, convert lists and numbers, and apply command-line overrides."""
    path = _write_yaml(tmp_path / 'train.yaml', {
        'cache_dir': 'cache', 'out_dir': 'runs/a', 'model_type': 'causal_active_listener',
        'model': {'hidden_dim': 32}, 'groups': [1, 2, 3], 'folds': [3], 'steps': 50,
        'learning_rate': 1, 'mixed_precision': False, 'targets': ['head'],
        'loss_weights': {'head': 2.0}})
    config = TrainConfig.from_yaml(path, out_dir='runs/b', steps=None, folds=[2])
    assert config.out_dir == 'runs/b' and config.steps == 50  # None overrides nothing
    assert config.groups == ('1', '2', '3') and config.folds == ('2',)  # group names
    assert isinstance(config.learning_rate, float) and config.learning_rate == 1.0
    assert config.model == {'hidden_dim': 32} and config.mixed_precision is False
    assert config.targets == ('head',) and config.weight('head') == 2.0
    assert config.batch_size == TrainConfig.batch_size
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig(cache_dir='c', out_dir='o').folds == ()  # every fold of the split


@pytest.mark.parametrize('name', sorted(p.name for p in (ROOT / 'config' / 'training').glob(
    '*.yaml')))
def test_shipped_training_configs_load(name):
    """Every shipped training config loads, and its model settings build a network."""
    config = TrainConfig.from_yaml(ROOT / 'config' / 'training' / name)
    if name.startswith('react2025'):  # a fixed split: its one fold is the model
        assert config.targets == ('facial_attributes', 'coefficients')
        assert not config.final_model and not config.streaming_eval
    else:
        assert config.targets == ('head',) and config.final_model
    assert config.folds == ()
    network = trainer.build_network(config.model_type, config.model)
    assert network.architecture == config.model_type


BASE = {'cache_dir': 'cache', 'out_dir': 'out'}


@pytest.mark.parametrize('changes, message', [
    ({'steps': 'ten'}, "steps must be a number, not 'ten'"),
    ({'steps': True}, 'steps must be a number'),
    ({'learning_rate': [0.1]}, 'learning_rate must be a number'),
    ({'mixed_precision': 'yes'}, "mixed_precision must be true or false, not 'yes'"),
    ({'groups': 'all'}, "groups must be a list of group names .*, not 'all'"),
    ({'folds': [1.5]}, 'folds must be a list of group names'),
    ({'model': [16]}, 'model must be a mapping'),
    ({'model_type': 'causal_gru'}, "model_type must be one of .*, not 'causal_gru'.*did you "
                                   "mean 'causal_gru_mdn'"),
    ({'targets': ['hed']}, "unknown stream 'hed'"),
    ({'targets': 'head'}, 'targets must be a list of stream names'),
    ({'targets': ['head', 'head']}, 'targets must name distinct streams'),
    ({'loss_weights': {'facial_attributes': 1.0}}, 'loss_weights name streams that are not'),
    ({'loss_weights': {'head': 0.0}}, 'loss_weights must be positive'),
    ({'steps': 0}, r'steps = 0 is outside its range \[1, '),
    ({'batch_size': -4}, 'batch_size = -4 is outside its range'),
    ({'burn_in_frames': -1}, r'burn_in_frames = -1 is outside its range \[0, '),
    ({'learning_rate': 0.0}, 'learning_rate = 0.0 is outside its range'),
    ({'ema_decay': 1.0}, 'ema_decay = 1.0 is outside its range'),
    ({'groups': [1, 2], 'folds': [2, 3]}, r"folds \['3'\] are not among groups"),
    ({'stpes': 10}, r"unknown config key 'stpes' \(did you mean 'steps'\?\)"),
    ({'cache_dir': None}, 'missing config keys'),
    ({'out_dir': None}, r"missing config keys \['out_dir'\]"),
    ({'device': 3}, 'device must be a string, not 3'),
    ({'out_dir': ['runs']}, 'out_dir must be a string'),
    ({'steps': 10.5}, 'steps must be an integer, not 10.5'),
    ({'device': 'gpu'}, 'device must be one of'),
])
def test_bad_configs_raise_config_error(tmp_path, changes, message):
    """Unknown keys, wrong types, bad values and missing keys raise a clear ConfigError."""
    data = {**BASE, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_yaml(_write_yaml(tmp_path / 'bad.yaml', data))


@pytest.mark.parametrize('text, message', [
    ('- a\n- b\n', 'must hold a mapping of settings'),
    ('steps: [1\n', 'cannot read training config'),
])
def test_malformed_yaml_files_raise_config_error(tmp_path, text, message):
    """A YAML file that is not a mapping, or not YAML at all, raises ConfigError."""
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_yaml(_write_yaml(tmp_path / 'bad.yaml', text))
    with pytest.raises(ConfigError, match='cannot read training config'):
        TrainConfig.from_yaml(tmp_path / 'missing.yaml')


def test_integral_floats_are_accepted_for_integer_settings():
    """A whole number written as a float (steps: 100.0) is an integer setting."""
    config = TrainConfig.from_dict({**BASE, 'steps': 100.0})
    assert config.steps == 100 and isinstance(config.steps, int)


# Cross-validation end to end ---------------------------------------------------------------

def test_cross_validation_writes_results_config_and_checkpoints(cv_run):
    """results.json, train_config.yaml, each fold's metrics, log and checkpoint are saved."""
    config, results, _ = cv_run
    out = Path(config.out_dir)
    saved = json.loads((out / 'results.json').read_text())
    assert saved == json.loads(json.dumps(results))
    assert TrainConfig.from_yaml(out / 'train_config.yaml') == config
    assert set(saved['folds']) == {'1', '2'} and saved['split']['groups'] == ['1', '2', '3']
    for fold in ('1', '2'):
        summary = saved['folds'][fold]
        assert json.loads((out / f'fold{fold}' / 'metrics.json').read_text()) == summary
        assert summary['test_groups'] == [fold] and fold not in summary['train_groups']
        assert summary['test_dialogs'] == 2 and summary['train_dialogs'] == 4
        assert summary['parameters'] > 0
        figures = summary['figures']
        assert set(figures) == {'model', 'neutral', 'streaming'}
        for path in figures.values():
            assert set(path['head']) == {'protocol', 'window', 'tail'}
            assert all(math.isfinite(v) for v in path['head'].values())
        protocol = summary['summaries']['model']['head']['protocol']
        assert protocol['n_utterances'] > 0 and figures['model']['head']['protocol'] == (
            protocol['mae_mean_deg'])
        assert summary['summaries']['neutral']['head']['window']['pearson_mean'] is None
        assert set(summary['floor_ratio']['head']) == {'protocol', 'window', 'tail'}
        assert set(summary['streaming_over_model']['head']) == {'protocol', 'window', 'tail'}
        assert Path(summary['checkpoint']) == out / f'fold{fold}' / trainer.CHECKPOINT_DIR
        log = (out / f'fold{fold}' / 'log.csv').read_text().splitlines()
        assert log[0] == 'step,loss,lr,seconds' and len(log) == 1 + config.steps // 5
        assert all(math.isfinite(float(row.split(',')[1])) for row in log[1:])
    overall = saved['cross_validation']
    assert overall['summaries']['model']['head']['protocol']['n_utterances'] == sum(
        saved['folds'][f]['summaries']['model']['head']['protocol']['n_utterances']
        for f in ('1', '2'))
    assert set(overall['fold_spread']['model']['head']['window']) == {'mean', 'std'}
    assert saved['config'] == config.to_dict()


def _counted(dialog_info, valid):
    return [seg for seg in dialog_info.segments if not seg.excluded
            and valid[seg.utterance].all()]


def test_metrics_equal_an_independent_recomputation(cv_run, corpus):
    """Recompute each fold's figures from the saved checkpoint's whole-dialog predictions."""
    config, results, _ = cv_run
    _, cache = corpus
    for fold in ('1', '2'):
        model = load_checkpoint(Path(config.out_dir) / f'fold{fold}' / 'checkpoint')
        test = load_dialogs(cache, [fold], ('head',))
        protocol, window, window_mae = [], [], []
        for info, features, head, valid in zip(test.infos, test.features, test.targets,
                                               test.valid):
            pred = model.predict(features).streams['head'][:, 0]
            for seg in _counted(info, valid[:, 0]):
                protocol.append(utterance_metrics(pred[seg.utterance], head[seg.utterance]))
                keep = np.arange(seg.start, seg.window_end)[valid[seg.window, 0]]
                window.append(utterance_metrics(pred[keep], head[keep]))
                window_mae.append(np.degrees(np.abs(pred[keep] - head[keep])).mean(0))
        reported = results['folds'][fold]['summaries']['model']['head']
        assert _flat(reported['protocol']) == pytest.approx(
            _flat(aggregate(protocol).to_dict()), rel=1e-6)
        assert _flat(reported['window']) == pytest.approx(_flat(aggregate(window).to_dict()),
                                                          rel=1e-6)
        # Plain numpy: mean over windows of the per-window, per-axis MAE in degrees.
        assert reported['window']['mae_mean_deg'] == pytest.approx(np.mean(window_mae),
                                                                   rel=1e-6)
        assert results['folds'][fold]['floor_ratio']['head']['window'] == pytest.approx(
            reported['window']['mae_mean_deg'] / cache.floors['streams']['head']['floor'][
                'window']['mean'])


def test_node_streaming_path_equals_cross_validation_without_shaping(cv_run, corpus):
    """Through the node (no smoothing) a held-out dialog gives the batched predictions."""
    config, results, _ = cv_run
    generated, cache = corpus
    model = load_checkpoint(Path(config.out_dir) / 'fold1' / 'checkpoint', device='cpu')
    stream = next(IemocapSource(generated.root, sessions=[1]).dialogs())
    test = load_dialogs(cache, ['1'], ('head',))
    index = [info.dialog_id for info in test.infos].index(stream.dialog_id)
    batched = predict_dialogs(model, test)[index]['head']
    settings = load_listener_settings(**{'smoothing_time_constant': 0.0,
                                         'limits.max_angular_velocity': 20.0})
    streamed = streaming_head(settings, model, stream.audio, stream.n_frames)
    assert streamed.shape == batched.shape
    np.testing.assert_allclose(streamed, batched, atol=1e-4)
    shaped = streaming_head(load_listener_settings(), model, stream.audio, stream.n_frames)
    assert np.abs(shaped - batched).max() > 1e-3  # the node's default low-pass, measured
    gap = results['folds']['1']['streaming_over_model']['head']['protocol']
    assert math.isfinite(gap)


def test_checkpoint_runs_audio_like_evaluation_predicts_features(cv_run, corpus):
    """The node's path (audio -> run/step) gives the poses evaluation got from cached features."""
    config, _, _ = cv_run
    generated, cache = corpus
    checkpoint = Path(config.out_dir) / 'fold1' / 'checkpoint'
    model = load_checkpoint(checkpoint, frame_rate=30.0, device='cpu')
    assert isinstance(model, TorchListenerModel) and isinstance(model.network,
                                                                CausalGRUListener)
    ema = _weights(Path(config.out_dir) / 'fold1' / 'last' / TENSORS_NAME, 'ema.module.')
    assert _max_difference(ema, dict(model.network.state_dict())) == 0.0
    stream = next(IemocapSource(generated.root, sessions=[1]).dialogs())
    test = load_dialogs(cache, ['1'], ('head',))
    index = [info.dialog_id for info in test.infos].index(stream.dialog_id)
    expected = model.predict(test.features[index]).streams['head'][:, 0]
    from_audio = np.array([[f.roll, f.pitch, f.yaw] for f in model.run(stream.audio)])
    assert from_audio.shape == expected.shape
    np.testing.assert_allclose(from_audio, expected, atol=1e-5)
    model.reset()
    hop = model.hop_length
    streamed = np.array([[f.roll, f.pitch, f.yaw] for f in (
        model.step(stream.audio[i * hop:(i + 1) * hop]) for i in range(len(expected)))])
    np.testing.assert_allclose(streamed, expected, atol=1e-4)
    assert cache.source['config'] == IemocapConfig().to_dict()


def test_every_fold_trains_a_fresh_model(cv_run, corpus, tmp_path, monkeypatch):
    """Folds start from different seeds; a fold's result does not depend on earlier folds."""
    config, _, initial = cv_run
    _, cache = corpus
    assert len(initial) == 2
    assert _max_difference(initial[0], initial[1]) > 0.01
    alone = _config(cache, tmp_path / 'alone', folds=(2,))
    built = _record_initial_weights(monkeypatch)
    trainer.cross_validation(alone, trainer.Distributed())
    assert _max_difference(built[0], initial[1]) == 0.0
    after_fold1 = _weights(Path(config.out_dir) / 'fold2' / 'checkpoint' / 'model.safetensors')
    trained_alone = _weights(tmp_path / 'alone' / 'fold2' / 'checkpoint' / 'model.safetensors')
    assert _max_difference(after_fold1, trained_alone) == 0.0
    assert _max_difference(after_fold1, _weights(
        Path(config.out_dir) / 'fold1' / 'checkpoint' / 'model.safetensors')) > 0.0


def test_crops_train_on_windows_after_a_burn_in(corpus):
    """A crop's loss sees listening-window frames with a target, after the burn-in only."""
    _, cache = corpus
    data = load_dialogs(cache, ['2', '3'], ('head',))
    crops = DialogCrops(data, crop_frames=40, burn_in_frames=24, seed=3)
    windows = sum(int(w.sum()) for w in data.windows)
    assert len(crops) == math.ceil(windows / 40)
    from_start = 0
    for index in range(len(crops)):
        x, y, mask, noise = crops[index]
        assert noise.shape == (64, 4) and noise.dtype == torch.float32
        assert x.shape == (64, data.features[0].shape[1]) and y.shape == mask.shape == (64, 3)
        assert mask.any() and bool((mask.any(1) == mask.all(1)).all())  # head valid per frame
        # Find the crop in its dialog: its rows equal a slice of exactly one dialog.
        first = x[0].numpy()
        hits = [(d, int(s)) for d, f in enumerate(data.features)
                for s in np.flatnonzero((f[:len(f) - 63] == first).all(1))
                if np.array_equal(f[s:s + 64], x.numpy())]
        assert len(hits) == 1
        d, start = hits[0]
        expected = data.windows[d][start:start + 64] & data.valid[d][start:start + 64, 0]
        if start:
            expected[:24] = False  # the burn-in only warms the state
        else:
            from_start += 1  # the dialog's start: the node's state is zero there too
        np.testing.assert_array_equal(mask[:, 0].numpy(), expected)
        np.testing.assert_array_equal(y.numpy(), data.targets[d][start:start + 64])
    crops.set_epoch(1)
    assert not torch.equal(crops[0][0], DialogCrops(data, 40, 24, seed=3)[0][0])
    with pytest.raises(ValueError, match='no listening-window frames'):
        DialogCrops(data.__class__([], [], [], [], [], ('head',)), 40)


def test_ema_weights_differ_from_raw_weights(cv_run):
    """The exported checkpoint holds the EMA weights, which lag the raw ones."""
    config, _, _ = cv_run
    state = Path(config.out_dir) / 'fold1' / 'last' / TENSORS_NAME
    raw, ema = _weights(state, 'model.'), _weights(state, 'ema.module.')
    parameters = [k for k in raw if not k.startswith('norm.')]
    assert parameters
    assert max(float((raw[k] - ema[k]).abs().max()) for k in parameters) > 1e-4
    for name in ('norm.mean', 'norm.std'):  # constant buffers: the average is the value
        torch.testing.assert_close(raw[name], ema[name])
    checkpoint = _weights(Path(config.out_dir) / 'fold1' / 'checkpoint' / 'model.safetensors')
    assert _max_difference(checkpoint, ema) == 0.0


def test_causal_active_listener_trains(corpus, tmp_path):
    """The Active Listener re-implementation trains, saves and scores through the same path."""
    _, cache = corpus
    config = _config(cache, tmp_path / 'al', model_type='causal_active_listener',
                     model=TINY_ACTIVE_LISTENER, steps=4, folds=(3,), log_every=1)
    results = trainer.cross_validation(config, trainer.Distributed())
    assert math.isfinite(results['folds']['3']['figures']['model']['head']['window'])
    model = load_checkpoint(tmp_path / 'al' / 'fold3' / 'checkpoint')
    assert isinstance(model.network, CausalActiveListener)
    log = (tmp_path / 'al' / 'fold3' / 'log.csv').read_text().splitlines()
    assert len(log) == 5 and all(math.isfinite(float(r.split(',')[1])) for r in log[1:])


# Distributed data parallel -------------------------------------------------------------------

DDP_SCRIPT = '''
"""Train one tiny deterministic fold (under torchrun or alone); rank 0 saves the weights."""
import sys
from pathlib import Path

import numpy as np
from safetensors.torch import save_file
import torch

from listener_head_ros.training.config import TrainConfig
from listener_head_ros.training.dataset import DialogData
from listener_head_ros.training.trainer import distributed, train_network

out = Path(sys.argv[1])
rng = np.random.default_rng(0)
lengths = [40, 55, 64, 31, 64, 50, 20, 64]  # unequal padding: frame-weighted loss matters
features = [rng.standard_normal((n, 68)).astype(np.float32) for n in lengths]
streams, dim = STREAMS, DIM
targets = [(0.01 * np.cumsum(rng.standard_normal((n, dim)), 0)).astype(np.float32)
           for n in lengths]
valid = [np.ones((n, dim), bool) for n in lengths]
windows = [rng.uniform(size=n) < 0.8 for n in lengths]
config = TrainConfig(cache_dir='unused', out_dir=str(out), model_type=MODEL_TYPE, model=MODEL,
                     targets=streams, steps=6, batch_size=4, crop_frames=40,
                     burn_in_frames=8, warmup_steps=2, ema_decay=0.5, device='cpu',
                     checkpoint_every=100)
data = DialogData([None] * len(lengths), features, targets, valid, windows, streams)
with distributed('cpu') as run:
    ema = train_network(config, data, out / 'fold', seed=3, run=run)
    if run.is_main:
        save_file({k: v.contiguous() for k, v in ema.state_dict().items()},
                  str(out / 'ema.safetensors'))
        (out / 'world_size').write_text(str(run.world_size))
assert not torch.distributed.is_initialized(), 'the process group outlived the block'
'''


TINY_FLOW = {'conv_channels': 16, 'hidden_size': 16, 'num_layers': 1, 'flow_width': 16,
             'flow_layers': 1, 'time_dim': 4, 'dropout': 0.0}
FACE = ('facial_attributes', 'coefficients')


@pytest.mark.parametrize('model_type, model, streams', [
    ('causal_gru_mdn', TINY_GRU, ('head',)),
    ('causal_gru_flow', TINY_FLOW, FACE),  # stochastic: the crops carry the training noise
], ids=['gru_mdn_head', 'flow_face'])
def test_ddp_on_two_gloo_processes_matches_one_process(tmp_path, monkeypatch, model_type, model,
                                                       streams):
    """Two CPU processes under torch.distributed.run train the same weights as one process."""
    script = tmp_path / 'train_fold.py'
    script.write_text(DDP_SCRIPT.replace('MODEL_TYPE', repr(model_type))
                      .replace('MODEL', repr(model)).replace('STREAMS', repr(streams))
                      .replace('DIM', str(trainer.total_dim(streams))))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    for name in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(name, None)
    process = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
         '--standalone', str(script), str(tmp_path / 'ddp')],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert (tmp_path / 'ddp' / 'world_size').read_text() == '2'
    monkeypatch.setattr(sys, 'argv', [str(script), str(tmp_path / 'single')])
    runpy.run_path(str(script), run_name='__main__')  # one thread, as the subprocesses
    assert (tmp_path / 'single' / 'world_size').read_text() == '1'
    # Gradients differ only in float summation order (~4e-7 here); without the frame-weighted
    # loss scaling of unequally padded shards the weights differ by ~6e-3.
    tolerance = 1e-5
    single, ddp = (_weights(tmp_path / name / 'ema.safetensors') for name in ('single', 'ddp'))
    assert _max_difference(single, ddp) < tolerance
    states = [_weights(tmp_path / name / 'fold' / 'last' / TENSORS_NAME, 'model.')
              for name in ('single', 'ddp')]
    assert _max_difference(*states) < tolerance
    assert _max_difference(states[0], single) > 10 * tolerance  # EMA is not the raw weights


# The node runs a trained checkpoint ----------------------------------------------------------

def test_listener_node_runs_a_trained_checkpoint(cv_run, rclpy_context):
    """model=<checkpoint dir> configures a TorchListenerModel; 'cuda' falls back to the CPU."""
    listener_node = pytest.importorskip('listener_head_ros.ros.listener_node')
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    config, _, _ = cv_run
    checkpoint = str(Path(config.out_dir) / 'fold1' / 'checkpoint')
    for device in ('cpu', 'cuda'):
        node = listener_node.ListenerNode(
            context=rclpy_context, parameter_overrides=[
                Parameter('model', value=checkpoint), Parameter('device', value=device)])
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, device
            model = node.engine.model
            assert isinstance(model, TorchListenerModel)
            assert isinstance(model.network, CausalGRUListener)
            if not torch.cuda.is_available():
                assert model.device == 'cpu' and node.listener.device == 'cpu'
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        finally:
            node.destroy_node()


def test_train_script_reports_config_errors(tmp_path):
    """training/train.py exits 2 with the ConfigError message on a bad config."""
    path = _write_yaml(tmp_path / 'bad.yaml', {**BASE, 'steps': 0})
    process = subprocess.run(
        [sys.executable, str(ROOT / 'training' / 'train.py'), '--config', str(path)],
        capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert 'steps = 0 is outside its range' in process.stderr
    assert process.stderr.startswith('train.py: ')


# Standardised targets -------------------------------------------------------------------------

def test_standardised_targets_train_in_unit_scale_and_predict_in_their_own(tmp_path):
    """standardise_targets: the network learns z-scores; the checkpoint undoes the scaling."""
    rng = np.random.default_rng(1)
    lengths = [120, 90, 150]
    features = [rng.standard_normal((n, 68)).astype(np.float32) for n in lengths]
    level = np.array([300.0, -2.0, 0.01], np.float32)  # columns in very different units
    targets = [(level + 0.1 * np.abs(level) * rng.standard_normal((n, 3))).astype(np.float32)
               for n in lengths]
    data = DialogData([None] * 3, features, targets, [np.ones((n, 3), bool) for n in lengths],
                      [np.ones(n, bool) for n in lengths], ('head',))
    config = TrainConfig(cache_dir='unused', out_dir=str(tmp_path), model=TINY_GRU, steps=60,
                         batch_size=4, crop_frames=40, burn_in_frames=0, warmup_steps=5,
                         device='cpu', standardise_targets=True)
    network = trainer.train_network(config, data, tmp_path / 'fold', seed=0,
                                    run=trainer.Distributed())
    inference = trainer.inference_settings(config, network, data)
    mean, std = data.target_statistics()
    np.testing.assert_allclose(inference.target_mean, mean, rtol=1e-6)
    np.testing.assert_allclose(inference.target_std, std, rtol=1e-6)
    save_learned_checkpoint(tmp_path / 'checkpoint', network, inference=inference)
    model = load_listener_model(str(tmp_path / 'checkpoint'))
    predicted = model.predict(features[0]).streams['head'][:, 0]
    # In the targets' own units: each column near its level, within a few of its stds.
    assert np.all(np.abs(predicted.mean(0) - level) < 3 * 0.1 * np.abs(level))
    plain = trainer.inference_settings(replace(config, standardise_targets=False), network,
                                       data)
    assert plain.target_mean == () and plain.target_std == ()
