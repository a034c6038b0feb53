"""The REACT 2025 evaluation: predictions format, causal frame mapping, reference rows, CLI."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from listener_head_ros.data.react2025 import scan_release
from listener_head_ros.data.synthetic_react import generate_corpus, SMALL
from listener_head_ros.eval.react_eval import (
    ClipEntry, COEFFICIENTS_FILE, facial_frame_sources, INDEX_FILE, match_release,
    Predictions, PREDICTIONS_FILE, PredictionsError, read_predictions, reference_rows,
    score_samples, ScoreConfig, scoring_set, write_predictions)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 3


def _cli():
    spec = importlib.util.spec_from_file_location(
        'evaluate_react', ROOT / 'training' / 'evaluate_react.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """Return the scanned SMALL synthetic corpus (6 test dyads in 2 sessions, an oracle)."""
    return scan_release(generate_corpus(tmp_path_factory.mktemp('react') / 'corpus', SMALL))


def _checkpoint(directory: Path, targets) -> Path:
    """Write a tiny random-weight causal_gru_mdn checkpoint predicting ``targets``."""
    import torch
    from listener_head_ros.models.learned import save_learned_checkpoint
    from listener_head_ros.models.networks import CausalGRUListener, GRUListenerConfig
    from listener_head_ros.streams import total_dim
    torch.manual_seed(0)
    network = CausalGRUListener(GRUListenerConfig(
        conv_channels=8, hidden_size=8, num_layers=1, num_mixtures=2,
        output_dim=total_dim(targets)))
    return save_learned_checkpoint(directory, network, targets=targets)


@pytest.fixture(scope='module')
def evaluated(release, tmp_path_factory):
    """Run evaluate_react.py once on a tiny facial checkpoint (both tasks); return its out."""
    tmp = tmp_path_factory.mktemp('evaluated')
    checkpoint = _checkpoint(tmp / 'checkpoint', ('facial_attributes', 'coefficients'))
    out = tmp / 'out'
    assert _cli().main(['--checkpoint', str(checkpoint), '--root', str(release.root),
                        '--out', str(out), '--samples', str(SAMPLES)]) == 0
    return out


def _predictions(lengths=(5, 8), samples=2, seed=0) -> Predictions:
    rng = np.random.default_rng(seed)
    clips = [ClipEntry(f'test/audio/speaker/session1/clip{n}.wav', t, 'test', 'session1',
                       f'clip{n}') for n, t in enumerate(lengths)]
    return Predictions(clips, [rng.random((samples, t, 25), dtype=np.float32) for t in lengths],
                       [rng.random((samples, t, 58), dtype=np.float32) for t in lengths],
                       task='offline')


def test_predictions_round_trip(tmp_path):
    # Two clips of 5 and 8 frames: the files are (2, 2, 8, D) float32, the shorter clip NaN
    # after its 5 frames; reading gives the same arrays back.
    predictions = _predictions()
    write_predictions(tmp_path, predictions)
    stored = np.load(tmp_path / PREDICTIONS_FILE)
    assert stored.shape == (2, 2, 8, 25) and stored.dtype == np.float32
    assert np.isnan(stored[0, :, 5:]).all() and np.isfinite(stored[1]).all()
    assert np.load(tmp_path / COEFFICIENTS_FILE).shape == (2, 2, 8, 58)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert (index['version'], index['samples'], index['fps'], index['task']) == (
        1, 2, 30.0, 'offline')
    assert index['clips'][0] == {'speaker': 'test/audio/speaker/session1/clip0.wav',
                                 'frames': 5, 'split': 'test', 'session': 'session1',
                                 'clip': 'clip0'}
    back = read_predictions(tmp_path)
    assert back.clips == predictions.clips and back.samples == 2
    for a, b in zip(back.attributes + back.coefficients,
                    predictions.attributes + predictions.coefficients):
        np.testing.assert_array_equal(a, b)
    # Coefficients are optional.
    write_predictions(tmp_path / 'bare', Predictions(predictions.clips, predictions.attributes))
    assert read_predictions(tmp_path / 'bare').coefficients is None


def _corrupt_array(path: Path, edit) -> None:
    array = np.load(path)
    np.save(path, edit(array))


def _edit_index(path: Path, edit) -> None:
    index = json.loads(path.read_text())
    edit(index)
    path.write_text(json.dumps(index))


@pytest.mark.parametrize('corruption, message', [
    (lambda d: _corrupt_array(d / PREDICTIONS_FILE, lambda a: a[..., :24]), 'expected float32'),
    (lambda d: _corrupt_array(d / PREDICTIONS_FILE, lambda a: a.astype(np.float64)),
     'expected float32'),
    (lambda d: _corrupt_array(d / PREDICTIONS_FILE, lambda a: np.where(
        np.arange(8)[None, None, :, None] == 2, np.nan, a)), 'non-finite values within'),
    (lambda d: _corrupt_array(d / COEFFICIENTS_FILE, lambda a: np.nan_to_num(a)),
     'the padding must be NaN'),
    (lambda d: _edit_index(d / INDEX_FILE, lambda i: i['clips'][0].update(frames=6)),
     'non-finite values within its 6 frames'),
    (lambda d: _edit_index(d / INDEX_FILE, lambda i: i['clips'][1].update(frames=9)),
     'expected float32'),
    (lambda d: _edit_index(d / INDEX_FILE, lambda i: i['clips'][0].pop('session')),
     'exactly the fields'),
    (lambda d: _edit_index(d / INDEX_FILE, lambda i: i.update(format='other')), '"format"'),
    (lambda d: _edit_index(d / INDEX_FILE, lambda i: i.update(version=2)), 'version 2'),
    (lambda d: _edit_index(d / INDEX_FILE, lambda i: i.update(samples=3)), 'expected float32'),
    (lambda d: (d / INDEX_FILE).unlink(), 'missing'),
    (lambda d: (d / PREDICTIONS_FILE).write_text('not an array'), 'not a readable'),
])
def test_predictions_validation_errors(tmp_path, corruption, message):
    write_predictions(tmp_path, _predictions())
    corruption(tmp_path)
    with pytest.raises(PredictionsError, match=message):
        read_predictions(tmp_path)


def test_writing_checks_shapes(tmp_path):
    bad = _predictions()
    bad.attributes[1] = bad.attributes[1][:, :7]
    with pytest.raises(PredictionsError, match='clip1.wav has shape'):
        write_predictions(tmp_path, bad)


def test_match_release_refuses_unknown_files_and_frame_counts(release):
    dyad = release.dyads('test')[0]
    frames = release.oracle(dyad)[0].shape[1]
    good = Predictions([ClipEntry.of(dyad, frames)], [np.zeros((1, frames, 25), np.float32)])
    assert match_release(good, release) == [dyad]
    unknown = Predictions([ClipEntry('test/audio/speaker/session9/clip0.wav', frames, 'test',
                                     'session9', 'clip0')], good.attributes)
    with pytest.raises(PredictionsError, match='session9/clip0.wav is no speaker audio'):
        match_release(unknown, release)
    short = Predictions([ClipEntry.of(dyad, frames - 1)], [good.attributes[0][:, 1:]])
    with pytest.raises(PredictionsError, match=f'has {frames - 1} frames; its listener'):
        match_release(short, release)
    twice = Predictions(good.clips * 2, good.attributes * 2)
    with pytest.raises(PredictionsError, match='listed twice'):
        match_release(twice, release)


def test_causal_frame_mapping():
    # Model frame i ends at (i + 1) * 533 / 16000 s; facial frame j is at j / 30 s. Frame j
    # takes the latest model frame ended by then: j - 1 while 16000 / 15990 * j < j + 1
    # (j < 1599), j at 1599.. (the model's 30.019 Hz runs ahead by one frame per 1599).
    sources = facial_frame_sources(5000, 10_000, 16000, 533)
    j = np.arange(5000)
    assert sources[0] == 0 and sources[1] == 0 and sources[1598] == 1597
    assert sources[1599] == 1599
    ended = (sources + 1) * 533 / 16000
    assert np.all(ended[1:] <= j[1:] / 30.0 + 1e-12)  # never a model frame from the future
    assert np.all((sources[1:] + 2) * 533 / 16000 > j[1:] / 30.0)  # and the latest one
    # Past the available model frames, the last one holds.
    assert facial_frame_sources(10, 4, 16000, 533).tolist() == [0, 0, 1, 2, 3, 3, 3, 3, 3, 3]


def test_reference_rows_on_a_synthetic_release(release):
    # The oracle (draws of the true process) beats Random (other sessions' listeners) and
    # Neutral (the constant training mean) on FRC in both modes; GT, scored leave-one-out,
    # is finite and below what matching each listener to itself would give.
    data = scoring_set(release, release.dyads('test'), ScoreConfig(appropriate_size=10))
    rows, notes = reference_rows(release, data, SAMPLES)
    assert set(rows) == {'GT', 'Mime', 'Random', 'Neutral', 'Oracle'} and not notes
    scores = {name: score_samples(row.samples, data, row.sample_keys)
              for name, row in rows.items()}
    for mode in ('challenge', 'corrected'):
        assert scores['Oracle'][mode]['FRC'] > scores['Random'][mode]['FRC']
        assert scores['Oracle'][mode]['FRC'] > scores['Neutral'][mode]['FRC']
        assert np.isfinite(scores['GT'][mode]['FRC']) and np.isfinite(scores['GT'][mode]['FRD'])
    itself = score_samples(rows['GT'].samples, data)
    assert itself['corrected']['FRC'] > scores['GT']['corrected']['FRC']
    # The Neutral row is constant: no diversity, FRSyn undefined in corrected mode and the
    # challenge's constant-channel saturation at 49 frames.
    assert scores['Neutral']['corrected']['FRDiv'] == pytest.approx(0.0, abs=1e-20)
    assert np.isnan(scores['Neutral']['corrected']['FRSyn'])
    assert scores['Neutral']['challenge']['FRSyn'] == 49.0


def test_evaluate_react_writes_predictions_metrics_and_report(evaluated):
    for task in ('online', 'offline'):
        for name in (PREDICTIONS_FILE, COEFFICIENTS_FILE, INDEX_FILE):
            assert (evaluated / 'predictions' / task / name).is_file()
    for name in ('metrics.json', 'summary.md', 'traces.png', 'spread.png', 'metrics.png'):
        assert (evaluated / name).stat().st_size > 0
    metrics = json.loads((evaluated / 'metrics.json').read_text())
    assert list(metrics['rows']) == ['online', 'offline', 'GT', 'Mime', 'Random', 'Neutral',
                                     'Oracle']
    assert metrics['n_inputs'] == 6 and metrics['samples'] == SAMPLES
    for row in metrics['rows'].values():
        assert set(row) == {'challenge', 'corrected', 'paired'}
        assert row['challenge']['n_samples'] == SAMPLES
    assert '| GT |' in (evaluated / 'summary.md').read_text()


def test_online_and_offline_predictions_agree(evaluated):
    # The streaming path (one hop at a time) and the batched path draw the same noise.
    online = read_predictions(evaluated / 'predictions' / 'online')
    offline = read_predictions(evaluated / 'predictions' / 'offline')
    assert online.clips == offline.clips and online.samples == SAMPLES
    for a, b in zip(online.attributes + online.coefficients,
                    offline.attributes + offline.coefficients):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.std(offline.attributes[0], axis=0).mean() > 0  # the samples differ


def test_scoring_a_predictions_directory_gives_the_same_numbers(evaluated, release, tmp_path):
    out = tmp_path / 'rescored'
    assert _cli().main(['--predictions', str(evaluated / 'predictions' / 'offline'),
                        '--root', str(release.root), '--out', str(out)]) == 0
    direct = json.loads((evaluated / 'metrics.json').read_text())['rows']
    rescored = json.loads((out / 'metrics.json').read_text())['rows']
    assert list(rescored) == ['offline', 'GT', 'Mime', 'Random', 'Neutral', 'Oracle']
    for name, row in rescored.items():
        assert row == direct[name]


def test_bad_input_exits_with_2(release, evaluated, tmp_path, capsys):
    cli = _cli()
    head_only = _checkpoint(tmp_path / 'head', ('head',))
    cases = [
        (['--checkpoint', str(head_only)], 'no facial targets'),
        (['--checkpoint', str(tmp_path / 'nowhere')], 'does not exist'),
        (['--predictions', str(tmp_path / 'nowhere')], 'no predictions directory'),
    ]
    bad = tmp_path / 'bad'
    write_predictions(bad, read_predictions(evaluated / 'predictions' / 'offline'))
    _corrupt_array(bad / PREDICTIONS_FILE, lambda a: a[:, :, :-1])
    cases.append((['--predictions', str(bad)], 'expected float32'))
    for args, message in cases:
        assert cli.main(args + ['--root', str(release.root), '--out', str(tmp_path / 'o')]) == 2
        assert message in capsys.readouterr().err
    assert cli.main(['--predictions', str(bad), '--root', str(tmp_path / 'no_root'),
                     '--out', str(tmp_path / 'o')]) == 2
    assert 'no REACT 2025 release folder' in capsys.readouterr().err
