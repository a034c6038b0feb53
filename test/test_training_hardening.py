"""
Hardening of training (issue 12, items 10 and 11): bad configs, divergence, signals, resume.

Everything trains tiny networks for a few steps on the tiny synthetic corpus of
``test_training.py``; the signal tests run ``training/train.py`` in a subprocess that sends
itself the signal in the middle of a given step, so that nothing depends on timing.
"""

import itertools
import json
import math
from pathlib import Path
import runpy
import shlex
import signal
import subprocess
import sys

from hypothesis import given, settings, strategies as st
import pytest
import torch
import yaml

from listener_head_ros.schema import setting_specs
from listener_head_ros.training import trainer
from listener_head_ros.training.config import (
    ConfigError, load_yaml, MAX_PARAMETERS, TrainConfig, TrainSettings)
from listener_head_ros.training.dataset import DialogCrops, DialogData, load_dialogs
from listener_head_ros.training.resume import META_NAME, TENSORS_NAME
import test_training
from test_training import (
    _config, _max_difference, _weights, _write_yaml, BASE, ROOT, TINY_GRU)

corpus = test_training.corpus  # the tiny corpus and its cache, built once for this module
one_torch_thread = test_training.one_torch_thread

TRAIN_PY = ROOT / 'training' / 'train.py'
SPECS = {spec.name: spec for spec in setting_specs(TrainSettings)}


def _log(fold_dir: Path) -> list:
    """Return log.csv's rows as (step, loss, seconds)."""
    rows = (fold_dir / 'log.csv').read_text().splitlines()
    assert rows[0] == 'step,loss,lr,seconds'
    return [(int(r.split(',')[0]), float(r.split(',')[1]), float(r.split(',')[3]))
            for r in rows[1:]]


def _state_step(fold_dir: Path) -> int:
    return json.loads((fold_dir / 'last' / META_NAME).read_text())['step']


# Item 10: every config field's range, YAML floats, clear errors ------------------------------

def test_every_training_setting_is_described_and_its_range_holds_its_default():
    """Each scalar setting says what it is; a declared range contains its default."""
    for spec in SPECS.values():
        assert spec.description.strip().endswith('.') and len(spec.description) > 10, spec
        if spec.kind in (int, float):
            assert spec.range is not None, spec.name
            assert spec.range[0] <= spec.default <= spec.range[1], spec.name


@pytest.mark.parametrize('text, message', [
    ('grad_clip: -1', r'grad_clip = -1.0 is outside its range \[1e-06, '),
    ('grad_clip: 0', 'grad_clip = 0.0 is outside its range'),
    ('warmup_steps: -5', r'warmup_steps = -5 is outside its range \[0, '),
    ('crop_frames: 1e8', r'crop_frames = 100000000 is outside its range \[1, 18000\]'),
    ('seed: -1', 'seed = -1 is outside its range'),
    ('weight_decay: -0.1', 'weight_decay = -0.1 is outside its range'),
    ('checkpoint_every: 0', 'checkpoint_every = 0 is outside its range'),
    ('learning_rate: .nan', 'learning_rate must be finite'),
    ('learning_rate: "2e-3"', "learning_rate must be a number, not '2e-3'"),
    ('model: {hidden_size: 1e7}', r'model \(causal_gru_mdn\): .*hidden_size.* make a network '
                                  r'of more than 50,000,000 parameters'),
    ('model: {num_layers: 1e7, hidden_size: 1}', 'or 10,000 weight tensors'),
    ('model: {hidden_size: 0}', r'model \(causal_gru_mdn\).*hidden_size must be >= 1'),
    ('model: {hidden_size: 2.5}', 'hidden_size must be an integer, not 2.5'),
    ('model: {hiden_size: 8}', "unknown setting 'hiden_size' .*did you mean 'hidden_size'"),
    ('model: {hidden_size: 1e40}', r'model \(causal_gru_mdn\): cannot build it'),
    ('loss_weights: {head: -1}', 'loss_weights must be positive numbers'),
])
def test_out_of_range_and_malformed_values_are_refused_clearly(tmp_path, text, message):
    """Negative gradient clipping, warm-up or seed, huge crops or networks: a ConfigError."""
    path = _write_yaml(tmp_path / 'bad.yaml', 'cache_dir: c\nout_dir: o\n' + text + '\n')
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_yaml(path)


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path):
    """Read 2e-3 as a float: PyYAML reads it as a string (YAML 1.1), the training config not."""
    assert yaml.safe_load('learning_rate: 2e-3') == {'learning_rate': '2e-3'}  # the cause
    path = _write_yaml(tmp_path / 'train.yaml', (
        'cache_dir: c\nout_dir: o\nlearning_rate: 2e-3\nweight_decay: 1E-4\nsteps: 1e3\n'
        'grad_clip: 1\nmodel: {dropout: 1e-1, hidden_size: 1.6e1}\nloss_weights: {head: 2}\n'))
    config = TrainConfig.from_yaml(path)
    assert config.learning_rate == 0.002 and config.weight_decay == 1e-4
    assert config.steps == 1000 and isinstance(config.steps, int)
    assert config.grad_clip == 1.0 and isinstance(config.grad_clip, float)
    assert config.model == {'dropout': 0.1, 'hidden_size': 16}
    assert type(config.model['hidden_size']) is int and config.weight('head') == 2.0
    assert TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config


@settings(max_examples=60)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=1e-7, max_value=1.0),
       st.sampled_from(['{!r}', '{:e}', '{:E}', '{:.3e}', '{:g}']))
def test_any_written_float_reads_as_that_float(value, form):
    """Property: a learning rate in any float notation YAML allows reads as float(text)."""
    text = form.format(value)
    config = TrainConfig.from_dict({**BASE, **load_yaml(f'learning_rate: {text}')})
    assert config.learning_rate == float(text)


ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10, 10 ** 7),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e7, 1e7),
    st.text(max_size=8), st.sampled_from(['2e-3', '1e7', 'cpu', 'cuda:0', 'auto', '']),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))


def _check_accepted_or_clear(data: dict, names: list) -> None:
    """Assert that ``data`` gives an in-range config, or a ConfigError naming one of ``names``."""
    try:
        config = TrainConfig.from_dict(data)
    except ConfigError as error:
        assert any(name in str(error) for name in names), str(error)
        assert 'Traceback' not in str(error)
        return
    for spec in SPECS.values():
        value = getattr(config, spec.name)
        assert type(value) is spec.kind, spec.name
        if spec.range is not None:
            assert spec.range[0] <= value <= spec.range[1] and math.isfinite(value), spec.name


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(sorted(SPECS)), ANY_VALUE, min_size=1, max_size=3))
def test_any_setting_value_is_accepted_in_range_or_refused_clearly(values):
    """Property: arbitrary values give an in-range config or a ConfigError, never a traceback."""
    _check_accepted_or_clear({**BASE, **values}, list(values))


@settings(max_examples=150)
@given(st.dictionaries(st.sampled_from(['hidden_size', 'conv_channels', 'conv_kernel',
                                        'num_layers', 'num_mixtures', 'dropout']),
                       ANY_VALUE, min_size=1, max_size=2))
def test_any_model_setting_builds_a_bounded_network_or_is_refused_clearly(model):
    """Property: model settings give a network of at most MAX_PARAMETERS, or a ConfigError."""
    try:
        config = TrainConfig.from_dict({**BASE, 'model': model})
    except ConfigError as error:
        assert 'model' in str(error), str(error)
        return
    with torch.device('meta'):
        network = trainer.build_network(config.model_type, config.model)
    assert sum(p.numel() for p in network.parameters()) <= MAX_PARAMETERS


def test_the_train_script_refuses_a_huge_network_without_a_traceback(tmp_path):
    """training/train.py exits 2 with one line on hidden_size: 1e7 (it used to crash)."""
    path = _write_yaml(tmp_path / 'huge.yaml', 'cache_dir: c\nout_dir: o\n'
                                               'model: {hidden_size: 1e7}\n')
    process = subprocess.run([sys.executable, str(TRAIN_PY), '--config', str(path)],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2, process.stderr
    assert process.stderr.startswith('train.py: model (causal_gru_mdn): ')
    assert 'parameters' in process.stderr and 'Traceback' not in process.stderr


# Item 10: the divergence guard ---------------------------------------------------------------

def _exploding_loss(monkeypatch, from_call: int, factor: float = 1e4) -> None:
    """Multiply the training loss by ``factor`` from the ``from_call``-th forward pass on."""
    forward = trainer._TrainingLoss.forward
    calls = itertools.count(1)

    def exploding(self, *args):
        losses = forward(self, *args)
        return losses * factor if next(calls) >= from_call else losses

    monkeypatch.setattr(trainer._TrainingLoss, 'forward', exploding)


def test_an_exploding_loss_stops_training_and_saves_no_checkpoint(corpus, tmp_path,
                                                                  monkeypatch):
    """The loss jumps 10^4x at step 7: an error there; no checkpoint, no results, no state."""
    _, cache = corpus
    _exploding_loss(monkeypatch, from_call=7)
    config = _config(cache, tmp_path / 'run', folds=(3,), checkpoint_every=4, log_every=1)
    with pytest.raises(trainer.TrainingDiverged, match=r'fold3 diverged at step 7: loss .*; no '
                                                       r'checkpoint saved \(the state of step '
                                                       r'4 stays in '):
        trainer.cross_validation(config, trainer.Distributed())
    fold = tmp_path / 'run' / 'fold3'
    assert not (fold / trainer.CHECKPOINT_DIR).exists()
    assert not (tmp_path / 'run' / 'results.json').exists()
    assert _state_step(fold) == 4  # the last state before it, left as it was
    assert [row[0] for row in _log(fold)] == list(range(1, 7))


def test_a_non_finite_loss_stops_training_at_once(corpus, tmp_path):
    """A target of inf in a listening window gives a non-finite loss: stop, save nothing."""
    _, cache = corpus
    data = load_dialogs(cache, ['2', '3'], ('head',))
    poisoned = DialogData(data.infos, data.features, [t.copy() for t in data.targets],
                          data.valid, data.windows, data.streams)
    for targets, windows in zip(poisoned.targets, poisoned.windows):
        targets[windows] = math.inf
    config = _config(cache, tmp_path / 'run')
    with pytest.raises(trainer.TrainingDiverged, match='diverged at step 1: loss (nan|inf)'):
        trainer.train_network(config, poisoned, tmp_path / 'run' / 'fold1', 1,
                              trainer.Distributed())
    assert not (tmp_path / 'run' / 'fold1' / 'last').exists()


def test_the_train_script_reports_divergence(corpus, tmp_path, monkeypatch, capsys):
    """training/train.py exits 1 with the divergence message, not a traceback."""
    _, cache = corpus
    _exploding_loss(monkeypatch, from_call=3)
    path = _write_yaml(tmp_path / 'train.yaml', _cli_config(cache, tmp_path / 'run'))
    assert _run_train_py(monkeypatch, '--config', str(path)) == 1
    error = capsys.readouterr().err.splitlines()[-1]  # after tqdm's bar
    assert error.startswith('train.py: fold3 diverged at step 3: loss ')
    assert error.endswith('no checkpoint saved. Lower learning_rate or grad_clip, or check '
                          'the data')


# Item 11: signals, exact resume, changed settings, the final model, log.csv ------------------

def _cli_config(cache, out_dir: Path, **overrides) -> dict:
    data = dict(cache_dir=str(cache.cache_dir), out_dir=str(out_dir), model=TINY_GRU,
                folds=[3], steps=12, batch_size=4, crop_frames=64, burn_in_frames=32,
                warmup_steps=2, log_every=2, checkpoint_every=100, device='cpu',
                mixed_precision=False, streaming_eval=False, final_model=False)
    data.update(overrides)
    return data


def _run_train_py(monkeypatch, *args) -> int:
    """Run training/train.py in this process (so that monkeypatches apply); its exit code."""
    monkeypatch.setattr(sys, 'argv', [str(TRAIN_PY), *args])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(TRAIN_PY), run_name='__main__')
    return exited.value.code


SIGNALLING_TRAIN_PY = '''
"""Run training/train.py, sending this process SIGNAL during forward pass AT."""
import itertools, os, runpy, sys
from listener_head_ros.training import trainer

forward, calls = trainer._TrainingLoss.forward, itertools.count(1)

def forward_then_signal(self, *args):
    if next(calls) == AT:
        os.kill(os.getpid(), SIGNAL)
    return forward(self, *args)

trainer._TrainingLoss.forward = forward_then_signal
sys.argv = [TRAIN_PY, *sys.argv[1:]]
runpy.run_path(TRAIN_PY, run_name='__main__')
'''


@pytest.mark.parametrize('number', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_step_and_prints_how_to_resume(corpus, tmp_path, monkeypatch,
                                                          capsys, number):
    """SIGINT/SIGTERM during step 5: state saved at step 5, 128+N, the command; it resumes."""
    _, cache = corpus
    path = _write_yaml(tmp_path / 'train.yaml', _cli_config(cache, tmp_path / 'run'))
    wrapper = tmp_path / 'signalling_train.py'
    wrapper.write_text(SIGNALLING_TRAIN_PY.replace('SIGNAL', str(int(number))).replace(
        'AT', '5').replace('TRAIN_PY', repr(str(TRAIN_PY))))
    process = subprocess.run([sys.executable, str(wrapper), '--config', str(path)],
                             capture_output=True, text=True, timeout=180)
    assert process.returncode == 128 + number, process.stderr[-3000:]
    assert 'Traceback' not in process.stderr
    assert (f'train.py: stopped by {number.name} after step 5 of 12 of fold3; its training '
            f'state is saved in {tmp_path / "run" / "fold3" / "last"}') in process.stderr
    resume = process.stderr.strip().splitlines()[-1]
    assert resume == f'resume with: python {TRAIN_PY} --config {path}'
    fold = tmp_path / 'run' / 'fold3'
    assert _state_step(fold) == 5 and not (fold / trainer.CHECKPOINT_DIR).exists()
    if number != signal.SIGINT:
        return
    python, script, *args = shlex.split(resume[len('resume with: '):])
    assert (python, script) == ('python', str(TRAIN_PY))
    capsys.readouterr()
    assert _run_train_py(monkeypatch, *args) == 0  # in this process: no signal any more
    assert 'resumed fold3 at step 5' in capsys.readouterr().out
    assert _state_step(fold) == 12 and (fold / trainer.CHECKPOINT_DIR).is_dir()
    assert [row[0] for row in _log(fold)] == [2, 4, 6, 8, 10, 12]


class _Crash(Exception):
    """Stands for a crash (kill -9, power loss) in the middle of a step."""


@pytest.mark.parametrize('dropout', [0.0, 0.1])
def test_interrupted_training_resumes_exactly(corpus, tmp_path, monkeypatch, capsys, dropout):
    """
    Crash during step 7 after the step-4 state (mid-epoch), rerun: as if never stopped.

    With dropout the RNG state must be restored as saved; log.csv keeps one row per step
    (rows 5 and 6, logged before the crash, are not repeated) and its clock goes on.
    """
    _, cache = corpus
    data = load_dialogs(cache, ['2', '3'], ('head',))
    steps, saved_at, crash_at = 10, 4, 7
    batches = len(DialogCrops(data, 64, 32)) // 4
    assert saved_at % batches and steps > batches  # a state saved mid-epoch, and two epochs
    ticks = itertools.count()
    monkeypatch.setattr(trainer, 'clock', lambda: float(next(ticks)))  # no timing: 1 s a call

    def train(name):
        config = _config(cache, tmp_path / name, steps=steps, checkpoint_every=saved_at,
                         log_every=1, model={**TINY_GRU, 'dropout': dropout})
        return trainer.train_network(config, data, tmp_path / name / 'fold1', 1,
                                     trainer.Distributed())

    train('uninterrupted')
    forward, calls = trainer._TrainingLoss.forward, itertools.count(1)

    def crash_in_step(self, *args):
        if next(calls) == crash_at:
            raise _Crash
        return forward(self, *args)

    monkeypatch.setattr(trainer._TrainingLoss, 'forward', crash_in_step)
    with pytest.raises(_Crash):
        train('interrupted')
    interrupted = tmp_path / 'interrupted' / 'fold1'
    assert _state_step(interrupted) == saved_at and len(_log(interrupted)) == crash_at - 1
    monkeypatch.setattr(trainer._TrainingLoss, 'forward', forward)
    capsys.readouterr()
    resumed = train('interrupted')
    assert f'resumed fold1 at step {saved_at}' in capsys.readouterr().out
    states = [_weights(tmp_path / name / 'fold1' / 'last' / TENSORS_NAME)
              for name in ('uninterrupted', 'interrupted')]
    assert states[0].keys() == states[1].keys()
    assert _max_difference(*states) < 1e-6  # weights, EMA weights, optimizer moments, RNGs
    ema = {k: v for k, v in resumed.state_dict().items()}
    assert _max_difference(ema, _weights(tmp_path / 'uninterrupted' / 'fold1' / 'last' /
                                         TENSORS_NAME, 'ema.module.')) < 1e-6
    log, reference = _log(interrupted), _log(tmp_path / 'uninterrupted' / 'fold1')
    assert [row[0] for row in log] == list(range(1, steps + 1))
    assert [row[1] for row in log] == pytest.approx([row[1] for row in reference], abs=1e-6)
    seconds = [row[2] for row in log]
    assert seconds == sorted(seconds) and seconds[saved_at] > seconds[saved_at - 1]


def test_a_run_refuses_to_continue_with_other_training_settings(corpus, tmp_path, capsys):
    """A finished run re-run with other steps is refused, its config kept; scoring is not."""
    _, cache = corpus
    config = _config(cache, tmp_path / 'run', folds=(3,), steps=4)
    trainer.cross_validation(config, trainer.Distributed())
    saved = (tmp_path / 'run' / 'train_config.yaml').read_text()
    for changes, message in (({'steps': 6}, 'steps: 4 -> 6'),
                             ({'model': {**TINY_GRU, 'dropout': 0.1}}, r"model: \{.*\} -> "),
                             ({'learning_rate': 1e-3}, 'learning_rate: 0.002 -> 0.001')):
        with pytest.raises(ConfigError, match=f'holds networks \\(fold3\\) trained with other '
                                              f'settings \\({message}'):
            trainer.cross_validation(_config(cache, tmp_path / 'run', **{
                'folds': (3,), 'steps': 4, **changes}), trainer.Distributed())
        assert (tmp_path / 'run' / 'train_config.yaml').read_text() == saved
    capsys.readouterr()
    again = _config(cache, tmp_path / 'run', folds=(2, 3), steps=4, streaming_eval=True)
    results = trainer.cross_validation(again, trainer.Distributed())  # a new fold, re-scored
    assert set(results['folds']) == {'2', '3'} and 'streaming' in results['folds']['3'][
        'figures']
    assert 'resumed fold3 at step 4' in capsys.readouterr().out


@pytest.mark.parametrize('flags, final', [((), False), (('--final-model',), True)])
def test_folds_on_the_command_line_train_no_final_model_unless_asked(
        corpus, tmp_path, monkeypatch, capsys, flags, final):
    """--folds 3 with final_model: true trains fold 3 only, and says so; --final-model too."""
    _, cache = corpus
    path = _write_yaml(tmp_path / 'train.yaml', _cli_config(
        cache, tmp_path / 'run', folds=[], steps=2, final_model=True))
    assert _run_train_py(monkeypatch, '--config', str(path), '--folds', '3', *flags) == 0
    out = capsys.readouterr().out
    assert 'training 1 of 3 folds (3), 2 steps each' in out
    assert ('then the final model on 1, 2, 3 (final_model: true)' in out) == final
    assert ('no final model (final_model: false)' in out) != final
    assert (tmp_path / 'run' / 'final' / trainer.CHECKPOINT_DIR).is_dir() == final


def test_crop_sizing_reports_padding_and_the_share_the_loss_sees(corpus):
    """size_crops: crops longer than every dialog are mostly padding; shares are fractions."""
    _, cache = corpus
    size_crops = runpy.run_path(str(ROOT / 'training' / 'size_crops.py'))
    data = load_dialogs(cache, ['1', '2', '3'], ('head',))
    longest = max(len(f) for f in data.features)
    padding, seen = size_crops['crop_shares'](DialogCrops(data, 4 * longest, 0))
    assert padding > 0.7 and 0.0 < seen < 1.0 - padding
    padding, seen = size_crops['crop_shares'](DialogCrops(data, 64, 32))
    assert padding < 0.05 and 0.0 < seen < 1.0


def test_the_active_listener_config_burns_in_its_receptive_field():
    """Its output at a frame depends on the last burn_in_frames frames only: no more needed."""
    config = TrainConfig.from_yaml(ROOT / 'config' / 'training' / 'iemocap_active_listener.yaml')
    torch.manual_seed(0)
    network = trainer.build_network(config.model_type, config.model).eval()
    context = config.burn_in_frames
    x = torch.randn(1, 3 * context, network.config.input_dim)
    changed = x.clone()
    changed[:, :context] = torch.randn(1, context, network.config.input_dim)
    with torch.no_grad():
        outputs, moved = network(x), network(changed)
    assert torch.equal(outputs[:, 2 * context:], moved[:, 2 * context:])
    assert not torch.equal(outputs[:, 2 * context - 1], moved[:, 2 * context - 1])


def test_time_config_reads_the_median_step_from_the_log(corpus, tmp_path, monkeypatch):
    """training/time_config.py times the config's own steps: one clock tick each here."""
    _, cache = corpus
    time_config = runpy.run_path(str(ROOT / 'training' / 'time_config.py'))
    ticks = itertools.count()
    monkeypatch.setattr(trainer, 'clock', lambda: float(next(ticks)))
    config = _config(cache, tmp_path / 'unused', steps=6000)
    assert time_config['seconds_per_step'](config, steps=4, skip=2) == 1.0
    assert not (tmp_path / 'unused').exists()
