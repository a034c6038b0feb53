"""
On-disk feature cache of IEMOCAP listener samples: JSON index plus safetensors shards.

Layout of ``<cache>/`` (format ``listener_head_ros.feature_cache`` version 1, described in
``docs/data_format.md``)::

    index.json              format, version, source (release root, sessions, IemocapConfig
                            with its FeatureConfig), frame rate, shard list, per-utterance
                            entries and the preparation report
    shard-00000.safetensors float32 tensors, utterances concatenated along the frame axis:
                            log_mel (N, n_mels), energy_db (N,), f0_hz (N,), voicing (N,),
                            head (N, 3) roll/pitch/yaw in radians relative to neutral

An utterance is the rows ``offset .. offset + n_frames`` of its shard; it never straddles
two shards.  The index is written last (atomically), so an interrupted preparation leaves
no valid index and is redone.  Nothing is pickled: safetensors and JSON only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import math
import os
from pathlib import Path
import sys
from typing import Any, Dict, Iterable, List, Optional, TextIO

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from listener_head_ros.data.iemocap import (
    find_dialogs, HEAD_AXES, IemocapConfig, iter_dialog_samples, ListenerSample,
    PreparationReport, resolve_root, SESSIONS)
from listener_head_ros.features import extract_features, FeatureBatch, FeatureConfig

FORMAT_NAME = 'listener_head_ros.feature_cache'
FORMAT_VERSION = 1
INDEX_FILE = 'index.json'
SHARD_TENSORS = ('log_mel', 'energy_db', 'f0_hz', 'voicing', 'head')


class CacheError(ValueError):
    """A feature cache is missing, corrupt or written in another format."""


@dataclass(frozen=True)
class CachedUtteranceInfo:
    """Index entry of one cached listener sample."""

    utterance_id: str
    session: int
    dialog: str
    listener: str
    speaker: str
    emotion: Optional[str]
    vad: Optional[List[float]]  # valence, activation, dominance
    start: float  # seconds since the start of the dialog wav
    end: float
    n_frames: int
    shard: str  # file name inside the cache folder
    offset: int  # first row in the shard


@dataclass(frozen=True)
class CachedUtterance:
    """Features and head targets of one cached listener sample, frame-aligned."""

    info: CachedUtteranceInfo
    features: FeatureBatch  # log_mel (T, n_mels), energy_db, f0_hz, voicing (T,)
    head: np.ndarray  # (T, 3) float32 roll, pitch, yaw in radians


def _source(root: Path, sessions: Iterable[int], config: IemocapConfig) -> Dict[str, Any]:
    return {'root': str(resolve_root(root).resolve()), 'sessions': sorted(set(sessions)),
            'config': config.to_dict()}


def _read_index(cache_dir: Path) -> Dict[str, Any]:
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise CacheError(f'no feature cache at {cache_dir}: {INDEX_FILE} is missing '
                         f'(prepare one with training/prepare_iemocap.py)')
    try:
        index = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f'{path} is not a readable JSON index ({exc}); prepare the cache '
                         f'again with training/prepare_iemocap.py') from exc
    if not isinstance(index, dict) or index.get('format') != FORMAT_NAME:
        raise CacheError(f'{path} is not a {FORMAT_NAME} index')
    if index.get('version') != FORMAT_VERSION:
        raise CacheError(f'{path} has format version {index.get("version")!r}; this code '
                         f'reads version {FORMAT_VERSION}: prepare the cache again')
    return index


class FeatureCache:
    """
    Reader of a prepared cache, optionally restricted to some sessions.

    ``FeatureCache(dir).select([1, 2, 3, 4])`` and ``.select([5])`` give the train and test
    sides of a leave-one-session-out fold.
    """

    def __init__(self, cache_dir: Path, sessions: Optional[Iterable[int]] = None) -> None:
        self.cache_dir = Path(cache_dir)
        index = _read_index(self.cache_dir)
        try:
            source = index['source']
            self.iemocap_config = IemocapConfig.from_dict(source['config'])
            self.report = PreparationReport.from_dict(index['report'])
            shards = {s['file']: int(s['n_frames']) for s in index['shards']}
            entries = [CachedUtteranceInfo(**u) for u in index['utterances']]
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheError(f'{self.cache_dir / INDEX_FILE} is malformed ({exc!r})') from exc
        for name in shards:
            if not (self.cache_dir / name).is_file():
                raise CacheError(f'shard {name} listed in {self.cache_dir / INDEX_FILE} is '
                                 f'missing; prepare the cache again')
        wanted = None if sessions is None else {int(s) for s in sessions}
        self.utterances: List[CachedUtteranceInfo] = [
            u for u in entries if wanted is None or u.session in wanted]
        self._index = index

    @property
    def feature_config(self) -> FeatureConfig:
        """Return the feature settings the cache was prepared with."""
        return self.iemocap_config.features

    @property
    def frame_rate(self) -> float:
        """Return the true frame rate in Hz (``sample_rate / hop_length``)."""
        cfg = self.feature_config
        return cfg.sample_rate / cfg.hop_length

    @property
    def sessions(self) -> List[int]:
        """Return the sessions present in this (possibly filtered) view."""
        return sorted({u.session for u in self.utterances})

    @property
    def n_frames(self) -> int:
        """Return the total number of frames in this view."""
        return sum(u.n_frames for u in self.utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    def select(self, sessions: Iterable[int]) -> 'FeatureCache':
        """Return a view holding only the utterances of ``sessions``."""
        view = FeatureCache.__new__(FeatureCache)
        view.__dict__.update(self.__dict__)
        wanted = {int(s) for s in sessions}
        view.utterances = [u for u in self.utterances if u.session in wanted]
        return view

    def load(self, i: int) -> CachedUtterance:
        """Read utterance ``i`` of this view from its shard."""
        info = self.utterances[i]
        rows = slice(info.offset, info.offset + info.n_frames)
        path = self.cache_dir / info.shard
        try:
            with safe_open(str(path), framework='numpy') as f:
                arrays = {name: f.get_slice(name)[rows] for name in SHARD_TENSORS}
        except Exception as exc:  # safetensors raises its own error types
            raise CacheError(f'cannot read {path}: {exc}') from exc
        n_mels = self.feature_config.n_mels
        shapes = {'log_mel': (info.n_frames, n_mels), 'head': (info.n_frames, 3)}
        for name, array in arrays.items():
            if array.shape != shapes.get(name, (info.n_frames,)):
                raise CacheError(f'{path}: {name} rows {rows.start}..{rows.stop} have shape '
                                 f'{array.shape}; the shard does not match the index')
        features = FeatureBatch(arrays['log_mel'], arrays['energy_db'], arrays['f0_hz'],
                                arrays['voicing'])
        return CachedUtterance(info, features, arrays['head'])


def _clean_vad(sample: ListenerSample) -> Optional[List[float]]:
    if sample.vad is None or not all(math.isfinite(v) for v in sample.vad):
        return None
    return [float(v) for v in sample.vad]


class _ShardWriter:
    """Buffers utterances and writes ``shard-XXXXX.safetensors`` files of bounded size."""

    def __init__(self, cache_dir: Path, shard_frames: int) -> None:
        self.cache_dir = cache_dir
        self.shard_frames = shard_frames
        self.shards: List[Dict[str, Any]] = []
        self._buffer: Dict[str, List[np.ndarray]] = {name: [] for name in SHARD_TENSORS}
        self._rows = 0

    @property
    def current(self) -> str:
        return f'shard-{len(self.shards):05d}.safetensors'

    def add(self, features: FeatureBatch, head: np.ndarray) -> int:
        """Append one utterance and return its offset in the current shard."""
        offset = self._rows
        for name, array in zip(SHARD_TENSORS, (features.log_mel, features.energy_db,
                                               features.f0_hz, features.voicing, head)):
            self._buffer[name].append(np.asarray(array, dtype=np.float32))
        self._rows += len(features)
        return offset

    def flush(self, final: bool = False) -> None:
        """Write the buffer as a shard if it is full (or non-empty and ``final``)."""
        if self._rows < self.shard_frames and not (final and self._rows):
            return
        tensors = {name: np.ascontiguousarray(np.concatenate(parts))
                   for name, parts in self._buffer.items()}
        save_file(tensors, str(self.cache_dir / self.current),
                  metadata={'format': FORMAT_NAME, 'version': str(FORMAT_VERSION)})
        self.shards.append({'file': self.current, 'n_frames': self._rows})
        self._buffer = {name: [] for name in SHARD_TENSORS}
        self._rows = 0


def prepare_cache(root: Path, cache_dir: Path, config: Optional[IemocapConfig] = None,
                  sessions: Iterable[int] = SESSIONS, shard_frames: int = 200_000,
                  force: bool = False, progress: bool = True,
                  out: Optional[TextIO] = None) -> FeatureCache:
    """
    Extract the features of every listener sample once and store them under ``cache_dir``.

    Skips the work when ``cache_dir`` already holds a valid index prepared from the same
    release folder, sessions and :class:`IemocapConfig` (unless ``force``).  Shows a tqdm
    bar over dialogs and prints the per-session summary table to ``out`` (stdout).
    """
    config = config if config is not None else IemocapConfig()
    sessions = sorted({int(s) for s in sessions})
    out = out if out is not None else sys.stdout
    cache_dir = Path(cache_dir)
    source = _source(root, sessions, config)
    if not force:
        try:
            cache = FeatureCache(cache_dir)
        except CacheError:
            cache = None
        if cache is not None and cache._index.get('source') == source:
            print(f'feature cache at {cache_dir} is up to date '
                  f'({len(cache)} utterances); its preparation summary:', file=out)
            print(cache.report.format_table(), file=out)
            return cache
    dialogs = find_dialogs(root, sessions)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / INDEX_FILE).unlink(missing_ok=True)
    for stale in cache_dir.glob('shard-*.safetensors'):
        stale.unlink()
    report = PreparationReport()
    for session in sessions:
        report.session(session)
    writer = _ShardWriter(cache_dir, shard_frames)
    entries: List[Dict[str, Any]] = []
    bar = tqdm(dialogs, desc='IEMOCAP features', unit='dialog', disable=not progress)
    for dialog in bar:
        for sample in iter_dialog_samples(dialog, config, report):
            features = extract_features(sample.audio, config.features)
            if len(features) != sample.head.shape[0]:
                raise RuntimeError(f'{sample.utterance_id}: {len(features)} feature frames '
                                   f'but {sample.head.shape[0]} head frames')
            offset = writer.add(features, sample.head)
            entries.append(asdict(CachedUtteranceInfo(
                utterance_id=sample.utterance_id, session=sample.session, dialog=sample.dialog,
                listener=sample.listener, speaker=sample.speaker, emotion=sample.emotion,
                vad=_clean_vad(sample), start=sample.start, end=sample.end,
                n_frames=len(features), shard=writer.current, offset=offset)))
            writer.flush()
        bar.set_postfix(utterances=len(entries))
    writer.flush(final=True)
    fcfg = config.features
    index = {
        'format': FORMAT_NAME, 'version': FORMAT_VERSION, 'source': source,
        'frame_rate_hz': fcfg.sample_rate / fcfg.hop_length, 'hop_length': fcfg.hop_length,
        'head_axes': list(HEAD_AXES), 'head_units': 'rad', 'tensors': list(SHARD_TENSORS),
        'shards': writer.shards, 'utterances': entries, 'report': report.to_dict()}
    tmp = cache_dir / f'{INDEX_FILE}.tmp'
    tmp.write_text(json.dumps(index, indent=1), encoding='utf-8')
    os.replace(tmp, cache_dir / INDEX_FILE)
    print(f'prepared {len(entries)} listener utterances in {len(writer.shards)} shard(s) '
          f'at {cache_dir}', file=out)
    print(report.format_table(), file=out)
    return FeatureCache(cache_dir)
