"""Feature cache: prepare once, read back exactly, skip when up to date, fail clearly."""

import importlib.util
import io
import json
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest
from safetensors import safe_open

from listener_head_ros.data.feature_cache import (
    CacheError, FeatureCache, FORMAT_VERSION, INDEX_FILE, prepare_cache)
from listener_head_ros.data.iemocap import IemocapConfig, IemocapSource
from listener_head_ros.data.source import (
    DialogSource, DialogStream, FIXED, Segment, SplitScheme, Turn)
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.features import extract_features, FeatureConfig

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = (1, 2, 3)
CONFIG = IemocapConfig(speaker_channel='speaker')


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Generate a small three-session corpus once."""
    config = SyntheticConfig(sessions=SESSIONS, dialogs_per_session=2, turns_per_dialog=4)
    return generate_corpus(tmp_path_factory.mktemp('corpus'), config, seed=5)


@pytest.fixture(scope='module')
def cache_dir(corpus, tmp_path_factory):
    """Prepare the cache once, with small shards so that there are several."""
    out = tmp_path_factory.mktemp('cache')
    prepare_cache(IemocapSource(corpus.root, CONFIG, SESSIONS), out, shard_frames=900,
                  progress=False, out=io.StringIO())
    return out


def test_round_trip_equals_the_source_streams(corpus, cache_dir):
    """Every cached dialog equals extract_features, targets, masks and audio of its stream."""
    cache = FeatureCache(cache_dir)
    streams = list(IemocapSource(corpus.root, CONFIG, SESSIONS).dialogs())
    assert len(cache) == len(streams) > 0
    assert len({d.shard for d in cache.dialogs}) > 1
    assert cache.frame_rate == pytest.approx(16000 / 533)
    assert cache.targets == ('head',) and cache.groups == ['1', '2', '3']
    assert cache.floors == corpus.reference_floors() and 'total' in cache.summary
    for i, stream in enumerate(streams):
        item = cache.load(i)
        direct = extract_features(stream.audio, CONFIG.features)
        assert item.info.dialog_id == stream.dialog_id and item.info.group == stream.group
        assert item.info.n_frames == len(direct) == stream.n_frames
        assert item.info.segments == stream.segments and item.info.turns == stream.turns
        assert item.info.transcript_events() == tuple(stream.transcripts)
        assert any(not e.final for e in stream.transcripts)
        for name in ('log_mel', 'energy_db', 'f0_hz', 'voicing'):
            np.testing.assert_array_equal(getattr(item.features, name), getattr(direct, name))
        np.testing.assert_array_equal(item.targets['head'], stream.targets['head'])
        np.testing.assert_array_equal(item.valid['head'], stream.valid['head'])
        np.testing.assert_array_equal(item.utterance, stream.utterance)
        np.testing.assert_array_equal(item.window, stream.window)
        audio = cache.load_audio(i)
        assert audio.dtype == np.float32 and audio.size == stream.n_frames * 533
        assert np.max(np.abs(audio - stream.audio[:audio.size])) <= 0.5 / 32767 + 1e-7
        assert item.targets['head'].dtype == np.float32 and item.valid['head'].dtype == bool


def test_index_without_transcripts_still_loads(cache_dir, tmp_path):
    """A version-2 index written before transcripts were stored reads as empty ones."""
    index = json.loads((cache_dir / INDEX_FILE).read_text(encoding='utf-8'))
    for entry in index['dialogs']:
        del entry['transcripts']
    for path in cache_dir.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / INDEX_FILE).write_text(json.dumps(index), encoding='utf-8')
    cache = FeatureCache(tmp_path)
    assert cache.dialogs[0].transcripts == [] and cache.dialogs[0].transcript_events() == ()


def test_idempotent_unless_config_changes(corpus, cache_dir):
    """A second run with the same settings reuses the cache; other settings rebuild it."""
    shards = sorted(cache_dir.glob('shard-*.safetensors'))
    stamps = [p.stat().st_mtime_ns for p in shards + [cache_dir / INDEX_FILE]]
    out = io.StringIO()
    cache = prepare_cache(IemocapSource(corpus.root, CONFIG, SESSIONS), cache_dir,
                          shard_frames=900, progress=False, out=out)
    assert 'up to date' in out.getvalue() and 'total' in out.getvalue()
    assert stamps == [p.stat().st_mtime_ns for p in shards + [cache_dir / INDEX_FILE]]
    assert len(cache) == len(FeatureCache(cache_dir))


def test_rebuild_and_summary(corpus, tmp_path, capsys):
    """Preparing prints the source's per-session table; changed settings trigger a rebuild."""
    cache = prepare_cache(IemocapSource(corpus.root, CONFIG, [1, 2]), tmp_path,
                          progress=False)
    table = capsys.readouterr().out
    assert 'prepared' in table and all(f'      {s} ' in table for s in (1, 2))
    assert cache.groups == ['1', '2'] and len(list(tmp_path.glob('shard-*'))) == 1
    other = IemocapConfig(max_gap_seconds=0.0)
    rebuilt = prepare_cache(IemocapSource(corpus.root, other, [1, 2]), tmp_path,
                            progress=False)
    assert 'prepared' in capsys.readouterr().out
    assert rebuilt.source['config']['max_gap_seconds'] == 0.0
    dropped = [sum(s['dropped'].get('nan_gap', 0) for s in c.report.values())
               for c in (cache, rebuilt)]
    assert dropped[1] > dropped[0]


def test_group_filtering(cache_dir):
    """Views by group partition the cache, as leave-one-session-out folds need."""
    cache = FeatureCache(cache_dir)
    test_fold, train_fold = cache.select(['2']), FeatureCache(cache_dir, groups=['1', '3'])
    assert test_fold.groups == ['2'] and train_fold.groups == ['1', '3']
    assert len(test_fold) + len(train_fold) == len(cache)
    assert test_fold.n_frames + train_fold.n_frames == cache.n_frames
    item = test_fold.load(0)
    assert item.info.group == '2' and len(item.features) == item.targets['head'].shape[0]


def test_missing_corrupt_or_old_index_is_a_clear_error(cache_dir, tmp_path):
    """Missing, unreadable, old-version or foreign indexes and missing shards raise CacheError."""
    with pytest.raises(CacheError, match='index.json is missing'):
        FeatureCache(tmp_path)
    (tmp_path / INDEX_FILE).write_text('{"format": "listener_head_ros.feat', encoding='utf-8')
    with pytest.raises(CacheError, match='not a readable JSON index'):
        FeatureCache(tmp_path)
    index = json.loads((cache_dir / INDEX_FILE).read_text(encoding='utf-8'))
    assert index['version'] == FORMAT_VERSION == 2
    (tmp_path / INDEX_FILE).write_text(json.dumps({**index, 'version': 1}), encoding='utf-8')
    with pytest.raises(CacheError, match='version 1.*prepare the cache again'):
        FeatureCache(tmp_path)
    (tmp_path / INDEX_FILE).write_text(json.dumps(index), encoding='utf-8')
    with pytest.raises(CacheError, match='missing'):
        FeatureCache(tmp_path)
    for shard in index['shards']:
        (tmp_path / shard['file']).write_bytes(b'not a safetensors file')
    with pytest.raises(CacheError, match='cannot read'):
        FeatureCache(tmp_path).load(0)


def test_only_json_and_safetensors_no_pickle(cache_dir):
    """The cache holds an index and safetensors shards of the documented tensors; no pickle."""
    files = sorted(p.name for p in cache_dir.iterdir())
    shards = [name for name in files if name != INDEX_FILE]
    assert INDEX_FILE in files and len(shards) == len(files) - 1
    assert all(name.startswith('shard-') and name.endswith('.safetensors') for name in shards)
    dtypes = {'log_mel': np.float32, 'energy_db': np.float32, 'f0_hz': np.float32,
              'voicing': np.float32, 'target/head': np.float32, 'valid/head': np.bool_,
              'mask/utterance': np.bool_, 'mask/window': np.bool_, 'audio': np.int16}
    for name in shards:
        assert (cache_dir / name).read_bytes()[:1] != b'\x80'  # no pickle protocol header
        with safe_open(str(cache_dir / name), framework='numpy') as f:
            assert sorted(f.keys()) == sorted(dtypes)
            assert all(f.get_tensor(k).dtype == dtypes[k] for k in f.keys())
    source = (ROOT / 'listener_head_ros' / 'data' / 'feature_cache.py').read_text()
    assert 'import pickle' not in source and 'torch.load' not in source
    assert 'data.iemocap' not in source  # the cache knows sources only by their contract


class FixedSplitSource(DialogSource):
    """A corpus with a fixed split and two target streams, as REACT 2025 will be."""

    name = 'fixed'

    def __init__(self) -> None:
        self.config = FeatureConfig()

    @property
    def feature_config(self) -> FeatureConfig:
        return self.config

    @property
    def targets(self) -> Tuple[str, ...]:
        return ('head', 'facial_attributes')

    @property
    def split(self) -> SplitScheme:
        return SplitScheme(FIXED, ('train', 'test'))

    def describe(self) -> Dict:
        return {'name': self.name}

    def dialog_ids(self) -> List[str]:
        return ['a', 'b']

    def dialogs(self) -> Iterator[DialogStream]:
        rng = np.random.default_rng(0)
        for dialog_id, group in zip(self.dialog_ids(), ('train', 'test')):
            n = 40
            valid = np.ones(n, bool)
            valid[22:26] = False  # in the window's tail: the utterance still counts
            yield DialogStream(
                dialog_id, group, 0.1 * rng.standard_normal(n * 533).astype(np.float32),
                16000, 533, {'head': rng.standard_normal((n, 3)).astype(np.float32),
                             'facial_attributes': rng.uniform(size=(n, 25)).astype(np.float32)},
                {'head': np.ones(n, bool), 'facial_attributes': valid},
                np.arange(n) < 20, np.arange(n) < 30, [Segment('u', 0, 20, 30)],
                [Turn('u', 'S', 'interlocutor', 0.0, 0.66)])


def test_any_source_and_any_streams(tmp_path):
    """A non-IEMOCAP source with a fixed split and two streams round-trips through the cache."""
    source = FixedSplitSource()
    cache = prepare_cache(source, tmp_path, progress=False, out=io.StringIO())
    assert cache.split.kind == FIXED and cache.targets == ('head', 'facial_attributes')
    assert cache.floors is None and cache.report == {}
    streams = list(source.dialogs())
    for i, stream in enumerate(streams):
        item = cache.load(i)
        for name in cache.targets:
            np.testing.assert_array_equal(item.targets[name], stream.targets[name])
            np.testing.assert_array_equal(item.valid[name], stream.valid[name])
    assert cache.select(['test']).dialogs[0].dialog_id == 'b'


def test_prepare_cli(corpus, tmp_path, capsys):
    """training/prepare_iemocap.py prepares a cache and reports a bad root clearly."""
    spec = importlib.util.spec_from_file_location(
        'prepare_iemocap', ROOT / 'training' / 'prepare_iemocap.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main(['--iemocap-root', str(corpus.root.parent), '--cache', str(tmp_path),
                     '--sessions', '3', '--speaker-channel', 'left', '--max-gap', '0.2',
                     '--tail-seconds', '1.5', '--no-progress']) == 0
    cache = FeatureCache(tmp_path)
    assert cache.groups == ['3'] and cache.source['config']['speaker_channel'] == 'left'
    assert cache.source['config']['tail_seconds'] == 1.5
    assert 'prepared' in capsys.readouterr().out
    assert cli.main(['--iemocap-root', str(tmp_path / 'nowhere'), '--cache', str(tmp_path),
                     '--no-progress']) == 2
    assert 'Session1' in capsys.readouterr().err
