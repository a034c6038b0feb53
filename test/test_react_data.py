"""REACT 2025 (MARS) data: the release parser, its dialog source and the synthetic corpus."""

from dataclasses import asdict
import json
from pathlib import Path
import shutil
import sys
from typing import Callable, Sequence, Tuple

import numpy as np
import pytest
import soundfile as sf

from listener_head_ros.data.feature_cache import FeatureCache
from listener_head_ros.data.react2025 import (
    denormalise_coefficients, facial_at_model_frames, load_attributes, load_audio,
    load_coefficients, load_face, model_frames, normalise_coefficients, React2025Config,
    React2025Source, ReleaseError, scan_release, SPLITS)
from listener_head_ros.data.synthetic_react import main, SMALL, TRUTH_FILE
from listener_head_ros.face import BLENDSHAPE_INDEX, REACT_ACTION_UNITS
from listener_head_ros.features import FeatureConfig
from listener_head_ros.streams import ROTATION_COLUMNS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'training'))
import prepare_react  # noqa: E402

SR, HOP = 16000, 533
AU = {name: i for i, name in enumerate(REACT_ACTION_UNITS)}


@pytest.fixture(scope='module')
def corpus(tmp_path_factory) -> Path:
    """Generate the small synthetic corpus once, through the command line."""
    root = tmp_path_factory.mktemp('react') / 'release'
    assert main(['--out', str(root), '--small']) == 0
    return root


@pytest.fixture(scope='module')
def release(corpus):
    """Scan the small corpus once."""
    return scan_release(corpus)


@pytest.fixture(scope='module')
def truth(corpus):
    """Return what the generator planted."""
    return json.loads((corpus / TRUTH_FILE).read_text(encoding='utf-8'))


def _write_release(root: Path, splits: Sequence[str] = ('train', 'test'),
                   clips: Sequence[str] = ('clip0', 'clip1'), frames: int = 45,
                   sample_rate: int = 22050) -> Path:
    """Write a minimal valid release by hand: one session per split."""
    rng = np.random.default_rng(0)
    for split in splits:
        for clip in clips:
            for side in ('speaker', 'listener'):
                rel = Path(side) / 'session0' / clip
                wav = root / split / 'audio' / f'{rel}.wav'
                wav.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(wav), 0.01 * rng.standard_normal(int(frames / 30 * sample_rate)),
                         sample_rate)
                for kind, dim in (('facial-attributes', 25), ('coefficients', 58)):
                    path = root / split / kind / f'{rel}.npy'
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, rng.uniform(0.0, 1.0, (frames, dim)).astype(np.float32))
    return root


def _exercise(root: Path, splits: Sequence[str] = ('train', 'test')) -> None:
    """Scan a release and build every stream and oracle of it."""
    release = scan_release(root, splits=splits)
    source = React2025Source(React2025Config(root=root, splits=tuple(splits)), release)
    for _ in source.dialogs():
        pass
    for split in splits:
        for dyad in release.dyads(split):
            release.oracle(dyad)


def test_dyads_and_paths(release, corpus):
    """Every speaker clip pairs with its listener; six files each; sorted; keys round-trip."""
    for split, sessions in zip(SPLITS, SMALL.sessions):
        dyads = release.dyads(split)
        assert len(dyads) == sessions * SMALL.clips_per_session
        assert len(release.sessions(split)) == sessions
        assert dyads == sorted(dyads, key=lambda d: (int(d.session[7:]), int(d.clip[4:])))
        for dyad in dyads:
            assert release.dyad(dyad.key) == dyad and dyad.key.startswith(f'{split}/session')
            for kind in ('audio', 'facial-attributes', 'coefficients'):
                for side in ('speaker', 'listener'):
                    assert dyad.path(kind, side).is_file()
                    assert corpus / dyad.relative(kind, side) == dyad.path(kind, side)
    assert release.dyads('test')[0].relative('audio', 'listener') == (
        'test/audio/listener/session3/clip0.wav')


def test_natural_order(tmp_path):
    """Sessions and clips sort by their numbers: session2 before session10."""
    root = _write_release(tmp_path, splits=('train',), clips=('clip10', 'clip2'), frames=12)
    for tree in root.glob('train/*/*'):
        shutil.copytree(tree / 'session0', tree / 'session10')
        (tree / 'session0').rename(tree / 'session2')
    release = scan_release(root, splits=('train',))
    assert [d.key for d in release.dyads('train')] == [
        'train/session2/clip2', 'train/session2/clip10', 'train/session10/clip2',
        'train/session10/clip10']
    assert release.mean_face is None and release.oracle(release.dyads('train')[0]) is None


def test_appropriate_sets(release):
    """A session's listeners are appropriate to each of its speakers; draws are seeded."""
    for dyad in release.dyads('test'):
        listeners = release.appropriate_listeners(dyad)
        assert listeners[0] == dyad
        assert sorted(d.key for d in listeners) == sorted(
            d.key for d in release.dyads('test') if d.session == dyad.session)
        drawn = set()
        for seed in range(20):
            chosen = release.appropriate_set(dyad, size=2, seed=seed)
            assert chosen == release.appropriate_set(dyad, size=2, seed=seed)
            assert len(chosen) == 2 and chosen[0] == dyad and chosen[1] in listeners[1:]
            drawn.add(chosen[1].key)
        assert len(drawn) == 2  # both other listeners of the session come up
        assert release.appropriate_set(dyad, size=10, seed=0) == listeners
        assert release.appropriate_set(dyad, size=1, seed=3) == [dyad]
    with pytest.raises(ValueError):
        release.appropriate_set(dyad, size=0, seed=0)


def test_load_audio_resamples_and_downmixes(tmp_path):
    """A 44.1 kHz stereo wav comes back mono (the channel mean) at the feature rate."""
    t = np.arange(44100) / 44100.0
    tone = np.sin(2.0 * np.pi * 440.0 * t)
    path = tmp_path / 'stereo.wav'
    sf.write(str(path), np.stack([0.5 * tone, 0.3 * tone], axis=1), 44100, subtype='FLOAT')
    audio = load_audio(path, SR)
    assert audio.dtype == np.float32 and audio.shape == (SR,)
    expected = 0.4 * np.sin(2.0 * np.pi * 440.0 * np.arange(SR) / SR)
    assert np.max(np.abs(audio - expected)[1000:-1000]) < 1e-3


def test_facial_frames_to_model_frames():
    """Model frame i takes the track at (i + 1) * hop / sr, 30 fps frames at j / 30 s."""
    frames = 2000
    ramp = np.arange(frames, dtype=np.float64)[:, None] * np.array([1.0, -1.0])
    n = model_frames(frames, 10 ** 9, SR, HOP)
    assert n == int(frames * SR / (30.0 * HOP)) == 2001
    assert model_frames(frames, 300 * HOP + 7, SR, HOP) == 300
    out = facial_at_model_frames(ramp, n, SR, HOP)
    position = np.arange(1, n + 1) * HOP * 30.0 / SR
    np.testing.assert_allclose(out[:, 0], np.minimum(position, frames - 1), atol=1e-3)
    np.testing.assert_allclose(out[:, 1], -out[:, 0])
    samples = facial_at_model_frames(np.stack([ramp, 2.0 * ramp]), n, SR, HOP)
    assert samples.shape == (2, n, 2)
    np.testing.assert_allclose(samples[1], 2.0 * out, rtol=1e-6)


def test_stream_of_a_dyad(release, corpus):
    """Speaker audio in, the listener's tracks at model frames out, one segment per clip."""
    source = React2025Source(React2025Config(root=corpus, normalise=True), release)
    dyad = release.dyads('test')[1]
    stream = source.stream(dyad)
    attributes, coefficients = load_face(dyad, 'listener')
    audio = load_audio(dyad.path('audio', 'speaker'), SR)
    n = model_frames(attributes.shape[0], audio.size, SR, HOP)
    assert stream.n_frames == n and stream.dialog_id == dyad.key and stream.group == 'test'
    np.testing.assert_array_equal(stream.audio, audio[:n * HOP])
    np.testing.assert_allclose(stream.targets['facial_attributes'],
                               facial_at_model_frames(attributes, n, SR, HOP))
    normalised = normalise_coefficients(coefficients, release.mean_face, release.std_face)
    np.testing.assert_allclose(stream.targets['coefficients'],
                               facial_at_model_frames(normalised, n, SR, HOP), rtol=1e-5)
    np.testing.assert_allclose(
        denormalise_coefficients(normalised, release.mean_face, release.std_face),
        coefficients, atol=1e-5)
    assert all(v.all() for v in stream.valid.values())
    assert stream.utterance.all() and stream.window.all()
    assert [(s.start, s.end, s.window_end) for s in stream.segments] == [(0, n, n)]
    assert stream.meta == {'split': 'test', 'session': dyad.session, 'clip': dyad.clip,
                           'facial_frames': attributes.shape[0],
                           'audio_seconds': round(audio.size / SR, 4),
                           'coefficients_normalised': True}
    raw = React2025Source(React2025Config(root=corpus, targets=('coefficients',),
                                          normalise=False), release).stream(dyad)
    assert list(raw.targets) == ['coefficients']
    np.testing.assert_allclose(raw.targets['coefficients'],
                               facial_at_model_frames(coefficients, n, SR, HOP))


def test_prepare_cache(corpus, tmp_path, capsys):
    """The command line prepares a cache of every dyad, grouped train/val/test, once."""
    cache_dir = tmp_path / 'cache'
    assert prepare_react.main(['--root', str(corpus), '--cache', str(cache_dir),
                               '--no-progress']) == 0
    printed = capsys.readouterr().out
    assert 'prepared 15 dialog streams' in printed and ' total ' in printed
    cache = FeatureCache(cache_dir)
    assert cache.groups == list(SPLITS) and len(cache) == 15
    assert cache.split.kind == 'fixed' and cache.targets == ('facial_attributes',
                                                             'coefficients')
    release = scan_release(corpus)
    for info in cache.dialogs:
        dyad = release.dyad(info.dialog_id)
        assert info.group == dyad.split
        frames = load_attributes(dyad.path('facial-attributes', 'listener')).shape[0]
        assert info.n_frames == model_frames(frames, 10 ** 9, SR, HOP)
    item = cache.select(['test']).load(0)
    assert item.targets['facial_attributes'].shape == (item.info.n_frames, 25)
    assert item.targets['coefficients'].shape == (item.info.n_frames, 58)
    assert cache.report['train']['dyads'] == 6 and cache.report['train']['shortest'] < 100
    assert prepare_react.main(['--root', str(corpus), '--cache', str(cache_dir),
                               '--no-progress']) == 0
    assert 'up to date' in capsys.readouterr().out
    assert prepare_react.main(['--root', str(tmp_path / 'nowhere'), '--cache',
                               str(cache_dir)]) == 2
    assert str(tmp_path / 'nowhere') in capsys.readouterr().err


def test_oracle(release, corpus):
    """Each test dyad has S fresh reactions of the true process; other splits have none."""
    for dyad in release.dyads('test'):
        attributes, coefficients = release.oracle(dyad)
        frames = load_attributes(dyad.path('facial-attributes', 'listener')).shape[0]
        assert attributes.shape == (SMALL.oracle_samples, frames, 25)
        assert coefficients.shape == (SMALL.oracle_samples, frames, 58)
        assert attributes.std(axis=0).mean() > 0.01  # fresh noise in every sample
    assert release.oracle(release.dyads('train')[0]) is None


def test_generated_values_in_range(release, corpus):
    """Keep AUs in 0..1, valence/arousal in -1..1, probabilities summing to 1; one length."""
    lengths = {}
    for split in SPLITS:
        for dyad in release.dyads(split):
            for side in ('speaker', 'listener'):
                attributes, _ = load_face(dyad, side)
                assert attributes[:, :15].min() >= 0.0 and attributes[:, :15].max() <= 1.0
                assert np.abs(attributes[:, 15:17]).max() <= 1.0
                np.testing.assert_allclose(attributes[:, 17:].sum(axis=1), 1.0, atol=1e-5)
                lengths.setdefault((split, dyad.session), set()).add(attributes.shape[0])
            info = sf.info(str(dyad.path('audio', 'speaker')))
            assert (info.samplerate, info.channels) == (SMALL.sample_rate, SMALL.channels)
    assert all(len(v) == 1 for v in lengths.values())
    assert min(v.pop() for v in lengths.values()) < 100
    assert release.mean_face.shape == release.std_face.shape == (58,)
    assert (release.std_face > 0).all()


def _windows(times: np.ndarray, cues, start: float, stop: float) -> np.ndarray:
    inside = np.zeros(times.size, dtype=bool)
    for cue in cues:
        inside |= (times > cue + start) & (times < cue + stop)
    return inside


def test_planted_relation(release, truth):
    """Smiles follow utterance ends (a coin flip), brows emphasis, nods phrase ends."""
    smiled, plain, rest, rot_nod, rot_rest, au1_brow, au1_rest = [], [], [], [], [], [], []
    smile_coefficient, au12 = [], []
    for split in SPLITS:
        for dyad in release.dyads(split):
            script = truth['sessions'][f'{split}/{dyad.session}']['phrases']
            flips = truth['clips'][dyad.key]['flips']
            attributes, coefficients = load_face(dyad, 'listener')
            t = np.arange(attributes.shape[0]) / 30.0
            ends = [p['end'] for p in script if p['final']]
            for end, flip in zip(ends, flips['smile']):
                (smiled if flip else plain).append(attributes[_windows(t, [end], 0.7, 1.7),
                                                              AU['AU12']])
            rest.append(attributes[~_windows(t, ends, 0.0, 2.5), AU['AU12']])
            nods = [p['end'] for p, flip in zip([p for p in script if not p['final']],
                                                flips['nod']) if flip]
            pitch = coefficients[:, ROTATION_COLUMNS.start]  # rot_x
            rot_nod.append(pitch[_windows(t, nods, 0.4, 0.7)])
            rot_rest.append(pitch[~_windows(t, nods, 0.0, 1.5)])
            onsets = [p['onset'] for p in script if p['emphasised']]
            au1_brow.append(attributes[_windows(t, onsets, 0.45, 0.85), AU['AU1']])
            au1_rest.append(attributes[~_windows(t, onsets, 0.0, 1.5), AU['AU1']])
            smile_coefficient.append(coefficients[:, BLENDSHAPE_INDEX['mouthSmileLeft']])
            au12.append(attributes[:, AU['AU12']])
    mean = [float(np.concatenate(x).mean()) for x in (smiled, plain, rest)]
    assert mean[0] > 0.6 and mean[1] < 0.25 and mean[2] < 0.25, mean
    after_ends = np.concatenate(smiled + plain).mean()
    assert after_ends > mean[2] + 0.15  # the mean AU12 after ends is well above elsewhere
    assert np.concatenate(rot_nod).mean() > np.concatenate(rot_rest).mean() + 0.08  # rad
    assert np.concatenate(au1_brow).mean() > np.concatenate(au1_rest).mean() + 0.4
    assert np.corrcoef(np.concatenate(smile_coefficient), np.concatenate(au12))[0, 1] > 0.8


def test_stream_identity_follows_the_files(tmp_path):
    """The cache key (describe) changes when a file of the release changes."""
    root = _write_release(tmp_path, splits=('train', 'val', 'test'), frames=20)
    source = React2025Source(React2025Config(root=root))
    before = source.describe()
    np.save(root / 'val/coefficients/listener/session0/clip1.npy',
            np.zeros((21, 58), dtype=np.float32))
    assert React2025Source(React2025Config(root=root)).describe() != before


def _listener(root: Path, kind: str = 'facial-attributes', clip: str = 'clip1',
              split: str = 'train') -> Path:
    suffix = '.wav' if kind == 'audio' else '.npy'
    return root / split / kind / 'listener' / 'session0' / f'{clip}{suffix}'


def _speaker_wav(root: Path) -> Path:
    return root / 'train' / 'audio' / 'speaker' / 'session0' / 'clip0.wav'


def _at(path: Path, damage: Callable[[Path], object]) -> Path:
    """Apply ``damage`` to ``path`` and return the path."""
    damage(path)
    return path


def _save(path: Path, array: np.ndarray) -> Path:
    return _at(path, lambda p: np.save(p, array))


def _bytes(path: Path, data: bytes) -> Path:
    return _at(path, lambda p: p.write_bytes(data))


def _npz(path: Path) -> Path:
    with open(path, 'wb') as f:
        np.savez(f, a=np.zeros((45, 25)))
    return path


def _short_wav(root: Path) -> Path:
    sf.write(str(_speaker_wav(root)), np.zeros(int(0.9 * 22050)), 22050)  # 45 frames: 1.5 s
    return _speaker_wav(root)


def _faces(root: Path, mean: np.ndarray, std: np.ndarray) -> Path:
    np.save(root / 'mean_face.npy', mean)
    np.save(root / 'std_face.npy', std)
    return root / ('mean_face.npy' if mean.shape != (58,) else 'std_face.npy')


def _oracle_missing(root: Path) -> Path:
    (root / 'oracle').mkdir()
    return root / 'oracle' / 'test' / 'facial-attributes' / 'session0' / 'clip0.npy'


def _oracle_shape(root: Path) -> Path:
    for kind, dim in (('facial-attributes', 25), ('coefficients', 58)):
        folder = root / 'oracle' / 'test' / kind / 'session0'
        folder.mkdir(parents=True)
        for clip in ('clip0', 'clip1'):
            np.save(folder / f'{clip}.npy', np.zeros((3, 44, dim), dtype=np.float32))
    return root / 'oracle' / 'test' / 'facial-attributes' / 'session0' / 'clip0.npy'


def _nan(root: Path) -> Path:
    values = np.zeros((45, 58), dtype=np.float32)
    values[7, 3] = np.nan
    return _save(_listener(root, 'coefficients'), values)


BAD: Tuple[Tuple[str, Callable[[Path], Path]], ...] = (
    ('missing split folder', lambda r: _at(r / 'test', shutil.rmtree)),
    ('missing kind folder',
     lambda r: _at(r / 'train' / 'coefficients' / 'listener', shutil.rmtree)),
    ('speaker without listener', lambda r: _at(_listener(r), Path.unlink)),
    ('listener without speaker audio', lambda r: _at(_speaker_wav(r), Path.unlink)),
    ('session with no dyads',
     lambda r: _at(r / 'train' / 'audio' / 'speaker' / 'session9', Path.mkdir)),
    ('stray folder', lambda r: _at(r / 'train' / 'audio' / 'speaker' / 'extras', Path.mkdir)),
    ('stray file', lambda r: _bytes(r / 'train' / 'coefficients' / 'speaker' / 'session0'
                                    / 'notes.txt', b'x')),
    ('wrong width', lambda r: _save(_listener(r), np.zeros((45, 24), dtype=np.float32))),
    ('wrong ndim', lambda r: _save(_listener(r), np.zeros(45, dtype=np.float32))),
    ('no frames', lambda r: _save(_listener(r), np.zeros((0, 25), dtype=np.float32))),
    ('string dtype', lambda r: _save(_listener(r), np.full((45, 25), 'a'))),
    ('complex dtype', lambda r: _save(_listener(r), np.zeros((45, 25), dtype=complex))),
    ('pickled object array', lambda r: _save(_listener(r), np.array([None] * 25 * 45,
                                                                    dtype=object))),
    ('npz archive', lambda r: _npz(_listener(r))),
    ('unreadable npy', lambda r: _bytes(_listener(r), b'not an array')),
    ('non-finite', _nan),
    ('frame counts differ', lambda r: _save(_listener(r, 'coefficients'),
                                            np.zeros((44, 58), dtype=np.float32))),
    ('unreadable wav', lambda r: _bytes(_speaker_wav(r), b'RIFF but not really')),
    ('audio much shorter', _short_wav),
    ('mean_face shape', lambda r: _faces(r, np.zeros(57), np.ones(58))),
    ('std_face not positive', lambda r: _faces(r, np.zeros(58), np.r_[np.ones(57), 0.0])),
    ('std_face missing', lambda r: _at(_faces(r, np.zeros(58), np.ones(58)), Path.unlink)),
    ('oracle file missing', _oracle_missing),
    ('oracle shape', _oracle_shape),
)


@pytest.mark.parametrize('name, damage', BAD, ids=[b[0] for b in BAD])
def test_bad_release_raises_naming_the_path(tmp_path, name, damage):
    """Each problem of a release raises ReleaseError naming the path at fault."""
    root = _write_release(tmp_path / 'release')
    _exercise(root)  # intact, it reads
    path = damage(root)
    with pytest.raises(ReleaseError) as info:
        _exercise(root)
    assert str(path) in str(info.value), (name, str(info.value))


def test_missing_root_and_tolerated_audio(tmp_path):
    """A missing root raises naming it; a wav up to 0.5 s short of the face is read."""
    with pytest.raises(ReleaseError, match=str(tmp_path / 'none')):
        scan_release(tmp_path / 'none')
    root = _write_release(tmp_path / 'release', splits=('train', 'test'))
    sf.write(str(_speaker_wav(root)), np.zeros(int(1.1 * 22050)), 22050)  # 0.4 s short
    source = React2025Source(React2025Config(root=root, splits=('train',)))
    stream = next(source.dialogs())
    assert stream.n_frames == int(1.1 * SR) // HOP
    assert load_coefficients(_listener(root, 'coefficients'), frames=45).shape == (45, 58)
    with pytest.raises(ReleaseError, match='44 are expected'):
        load_coefficients(_listener(root, 'coefficients'), frames=44)


def test_config_checks(tmp_path):
    """Unknown splits or targets are refused; the config records every setting."""
    with pytest.raises(ValueError, match='targets'):
        React2025Config(root=tmp_path, targets=('head',))
    with pytest.raises(ValueError, match='splits'):
        React2025Config(root=tmp_path, splits=('train', 'train'))
    with pytest.raises(ValueError, match='splits'):
        scan_release(tmp_path, splits=('dev',))
    release = scan_release(_write_release(tmp_path / 'release', frames=12), splits=('train',))
    with pytest.raises(ValueError, match='not the one the config names'):
        React2025Source(React2025Config(root=tmp_path / 'release'), release)  # splits differ
    with pytest.raises(ValueError, match='not the one the config names'):
        React2025Source(React2025Config(root=tmp_path, splits=('train',)), release)
    data = React2025Config(root=tmp_path).to_dict()
    assert data['splits'] == list(SPLITS) and data['features'] == asdict(FeatureConfig())
    assert json.loads(json.dumps(data)) == data


def test_summary_table(release, corpus):
    """The summary has a row per split and a total, with the shortest and longest clips."""
    source = React2025Source(React2025Config(root=corpus), release)
    for _ in source.dialogs():
        pass
    table = source.summary_table()
    lines = table.splitlines()
    assert lines[0].split() == ['split', 'sessions', 'dyads', 'minutes', 'frames', 'facial',
                                'shortest', 'longest']
    rows = {line.split()[0]: line.split() for line in lines[2:6]}
    assert set(rows) == {'train', 'val', 'test', 'total'}
    assert int(rows['total'][2]) == 15 and int(rows['total'][1]) == 5
    report = source.report()
    assert report['train']['shortest'] == min(
        load_attributes(d.path('facial-attributes', 'listener')).shape[0]
        for d in release.dyads('train'))
    assert json.loads(json.dumps(report)) == report
