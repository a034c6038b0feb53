"""Feature cache: prepare once, read back exactly, skip when up to date, fail clearly."""

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from listener_head_ros.data.feature_cache import (
    CacheError, FeatureCache, INDEX_FILE, prepare_cache, SHARD_TENSORS)
from listener_head_ros.data.iemocap import IemocapConfig, iter_listener_samples
from listener_head_ros.data.synthetic_iemocap import generate_corpus, SyntheticConfig
from listener_head_ros.features import extract_features

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
    prepare_cache(corpus.root, out, CONFIG, sessions=SESSIONS, shard_frames=300,
                  progress=False, out=io.StringIO())
    return out


def test_round_trip_equals_direct_extraction(corpus, cache_dir):
    """Every cached utterance equals extract_features and the head of the parsed sample."""
    cache = FeatureCache(cache_dir)
    samples = list(iter_listener_samples(corpus.root, SESSIONS, CONFIG))
    assert len(cache) == len(samples) > 0
    assert len({u.shard for u in cache.utterances}) > 1
    assert cache.frame_rate == pytest.approx(16000 / 533)
    for i, sample in enumerate(samples):
        item = cache.load(i)
        direct = extract_features(sample.audio, CONFIG.features)
        assert item.info.utterance_id == sample.utterance_id
        assert item.info.n_frames == len(direct) == sample.head.shape[0]
        assert (item.info.listener, item.info.speaker, item.info.emotion) == (
            sample.listener, sample.speaker, sample.emotion)
        for name in ('log_mel', 'energy_db', 'f0_hz', 'voicing'):
            np.testing.assert_array_equal(getattr(item.features, name), getattr(direct, name))
        np.testing.assert_array_equal(item.head, sample.head)
        assert item.head.dtype == np.float32 and item.features.log_mel.shape[1] == 64


def test_idempotent_unless_config_changes(corpus, cache_dir):
    """A second run with the same settings reuses the cache; other settings rebuild it."""
    shards = sorted(cache_dir.glob('shard-*.safetensors'))
    stamps = [p.stat().st_mtime_ns for p in shards + [cache_dir / INDEX_FILE]]
    out = io.StringIO()
    cache = prepare_cache(corpus.root, cache_dir, CONFIG, sessions=SESSIONS, shard_frames=300,
                          progress=False, out=out)
    assert 'up to date' in out.getvalue() and 'total' in out.getvalue()
    assert stamps == [p.stat().st_mtime_ns for p in shards + [cache_dir / INDEX_FILE]]
    assert len(cache) == len(FeatureCache(cache_dir))


def test_rebuild_and_summary(corpus, tmp_path, capsys):
    """Preparing prints a per-session table; changed settings trigger a rebuild."""
    cache = prepare_cache(corpus.root, tmp_path, CONFIG, sessions=[1, 2], progress=False)
    table = capsys.readouterr().out
    assert 'prepared' in table and all(f'      {s} ' in table for s in (1, 2))
    assert cache.sessions == [1, 2] and len(list(tmp_path.glob('shard-*'))) == 1
    other = IemocapConfig(speaker_channel='speaker', max_gap_seconds=0.0)
    rebuilt = prepare_cache(corpus.root, tmp_path, other, sessions=[1, 2], progress=False)
    assert 'prepared' in capsys.readouterr().out
    assert rebuilt.iemocap_config.max_gap_seconds == 0.0
    assert rebuilt.report.total().dropped['nan_gap'] > cache.report.total().dropped.get(
        'nan_gap', 0)


def test_session_filtering(cache_dir):
    """Views by session partition the cache, as leave-one-session-out folds need."""
    cache = FeatureCache(cache_dir)
    assert cache.sessions == list(SESSIONS)
    test_fold, train_fold = cache.select([2]), FeatureCache(cache_dir, sessions=[1, 3])
    assert test_fold.sessions == [2] and train_fold.sessions == [1, 3]
    assert len(test_fold) + len(train_fold) == len(cache)
    assert test_fold.n_frames + train_fold.n_frames == cache.n_frames
    item = test_fold.load(0)
    assert item.info.session == 2 and len(item.features) == item.head.shape[0]


def test_missing_or_corrupt_index_is_a_clear_error(cache_dir, tmp_path):
    """Missing, unreadable or foreign indexes and missing shards raise CacheError."""
    with pytest.raises(CacheError, match='index.json is missing'):
        FeatureCache(tmp_path)
    (tmp_path / INDEX_FILE).write_text('{"format": "listener_head_ros.feat', encoding='utf-8')
    with pytest.raises(CacheError, match='not a readable JSON index'):
        FeatureCache(tmp_path)
    index = json.loads((cache_dir / INDEX_FILE).read_text(encoding='utf-8'))
    (tmp_path / INDEX_FILE).write_text(json.dumps({**index, 'version': 99}), encoding='utf-8')
    with pytest.raises(CacheError, match='version 99'):
        FeatureCache(tmp_path)
    (tmp_path / INDEX_FILE).write_text(json.dumps(index), encoding='utf-8')
    with pytest.raises(CacheError, match='missing'):
        FeatureCache(tmp_path)
    for shard in index['shards']:
        (tmp_path / shard['file']).write_bytes(b'not a safetensors file')
    with pytest.raises(CacheError, match='cannot read'):
        FeatureCache(tmp_path).load(0)


def test_only_json_and_safetensors_no_pickle(cache_dir):
    """The cache holds an index and float32 safetensors shards; nothing is pickled."""
    files = sorted(p.name for p in cache_dir.iterdir())
    shards = [name for name in files if name != INDEX_FILE]
    assert INDEX_FILE in files and len(shards) == len(files) - 1
    assert all(name.startswith('shard-') and name.endswith('.safetensors') for name in shards)
    for name in shards:
        assert (cache_dir / name).read_bytes()[:1] != b'\x80'  # no pickle protocol header
        with safe_open(str(cache_dir / name), framework='numpy') as f:
            assert sorted(f.keys()) == sorted(SHARD_TENSORS)
            assert all(f.get_tensor(k).dtype == np.float32 for k in f.keys())
    source = (ROOT / 'listener_head_ros' / 'data' / 'feature_cache.py').read_text()
    assert 'import pickle' not in source and 'torch.load' not in source


def test_prepare_cli(corpus, tmp_path, capsys):
    """training/prepare_iemocap.py prepares a cache and reports a bad root clearly."""
    spec = importlib.util.spec_from_file_location(
        'prepare_iemocap', ROOT / 'training' / 'prepare_iemocap.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main(['--iemocap-root', str(corpus.root.parent), '--cache', str(tmp_path),
                     '--sessions', '3', '--speaker-channel', 'left', '--max-gap', '0.2',
                     '--no-progress']) == 0
    cache = FeatureCache(tmp_path)
    assert cache.sessions == [3] and cache.iemocap_config.speaker_channel == 'left'
    assert 'prepared' in capsys.readouterr().out
    assert cli.main(['--iemocap-root', str(tmp_path / 'nowhere'), '--cache', str(tmp_path),
                     '--no-progress']) == 2
    assert 'Session1' in capsys.readouterr().err
