"""
On-disk feature cache of dialog streams: a JSON index plus safetensors shards.

Layout of ``<cache>/`` (format ``listener_head_ros.feature_cache`` version 2, described in
``docs/data_format.md``)::

    index.json              format, version, the source's identity and role, feature
                            settings, target streams, split scheme, reference floors, shard
                            list, one entry per dialog (group, frames, turns, segments,
                            transcripts) and the source's report
    shard-00000.safetensors dialogs concatenated along the frame axis (N frames):
                            log_mel (N, n_mels), energy_db, f0_hz, voicing (N,) float32;
                            target/<stream> (N, dim) float32 and valid/<stream> (N,) bool for
                            each target stream; mask/utterance and mask/window (N,) bool;
                            audio (N * hop,) int16, what the listener heard

A dialog is the rows ``offset .. offset + n_frames`` of its shard (audio: ``offset * hop ..``);
it never straddles two shards.  The cache goes through the
:class:`~listener_head_ros.data.source.DialogSource` contract only, so any corpus fills it.
The index is written last (atomically), so an interrupted preparation leaves no valid index
and is redone.  Nothing is pickled: safetensors and JSON only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import sys
from typing import Any, Dict, Iterable, List, Optional, TextIO, Tuple

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from listener_head_ros.data.source import (
    DialogSource, DialogStream, Segment, SplitScheme, Turn)
from listener_head_ros.data.transcripts import event_from_dict, event_to_dict
from listener_head_ros.features import extract_features, FeatureBatch, FeatureConfig
from listener_head_ros.models.base import TranscriptEvent
from listener_head_ros.roles import check_role, LISTENING
from listener_head_ros.streams import get_stream

FORMAT_NAME = 'listener_head_ros.feature_cache'
FORMAT_VERSION = 2
INDEX_FILE = 'index.json'
FEATURE_TENSORS = ('log_mel', 'energy_db', 'f0_hz', 'voicing')
MASK_TENSORS = ('mask/utterance', 'mask/window')
AUDIO_TENSOR = 'audio'
_PCM_SCALE = 32767.0
_PREPARE = 'training/prepare_iemocap.py or training/prepare_react.py'  # the scripts that make one


class CacheError(ValueError):
    """A feature cache is missing, corrupt or written in another format."""


def target_tensor(stream: str) -> str:
    """Return the shard tensor name of a target stream."""
    return f'target/{stream}'


def valid_tensor(stream: str) -> str:
    """Return the shard tensor name of a target stream's validity mask."""
    return f'valid/{stream}'


@dataclass(frozen=True)
class CachedDialogInfo:
    """Index entry of one cached dialog stream."""

    dialog_id: str
    group: str
    n_frames: int
    shard: str  # file name inside the cache folder
    offset: int  # first row in the shard
    turns: List[Turn]
    segments: List[Segment]
    meta: Dict[str, Any]
    # the stream's transcripts as event_to_dict dicts, time-sorted (absent in older caches)
    transcripts: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    def transcript_events(self) -> Tuple[TranscriptEvent, ...]:
        """Return the transcripts as events, as the dialog stream held them."""
        return tuple(event_from_dict(e) for e in self.transcripts)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'CachedDialogInfo':
        """Rebuild an entry written by :meth:`to_dict`."""
        values = dict(data)
        values['turns'] = [Turn(**t) for t in values['turns']]
        values['segments'] = [Segment(**s) for s in values['segments']]
        return cls(**values)


@dataclass(frozen=True)
class CachedDialog:
    """Features, targets and masks of one cached dialog, frame-aligned (T frames)."""

    info: CachedDialogInfo
    features: FeatureBatch  # log_mel (T, n_mels), energy_db, f0_hz, voicing (T,)
    targets: Dict[str, np.ndarray]  # stream -> (T, dim) float32
    valid: Dict[str, np.ndarray]  # stream -> (T,) bool
    utterance: np.ndarray  # (T,) bool
    window: np.ndarray  # (T,) bool


def _read_index(cache_dir: Path) -> Dict[str, Any]:
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise CacheError(f'no feature cache at {cache_dir}: {INDEX_FILE} is missing '
                         f'(prepare one with {_PREPARE})')
    try:
        index = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f'{path} is not a readable JSON index ({exc}); prepare the cache '
                         f'again with {_PREPARE}') from exc
    if not isinstance(index, dict) or index.get('format') != FORMAT_NAME:
        raise CacheError(f'{path} is not a {FORMAT_NAME} index')
    if index.get('version') != FORMAT_VERSION:
        raise CacheError(f'{path} has format version {index.get("version")!r}; this code '
                         f'reads version {FORMAT_VERSION} (dialog streams with target '
                         f'streams and listening windows): prepare the cache again with '
                         f'{_PREPARE} (--force)')
    return index


class FeatureCache:
    """
    Reader of a prepared cache, optionally restricted to some groups.

    ``FeatureCache(dir).select(['1', '2', '3', '4'])`` and ``.select(['5'])`` give the train
    and test sides of a leave-one-session-out fold of IEMOCAP.
    """

    def __init__(self, cache_dir: Path, groups: Optional[Iterable[str]] = None) -> None:
        self.cache_dir = Path(cache_dir)
        index = _read_index(self.cache_dir)
        try:
            self.source: Dict[str, Any] = index['source']
            self.feature_config = FeatureConfig(**index['features'])
            self.targets: Tuple[str, ...] = tuple(index['streams'])
            self.split = SplitScheme.from_dict(index['split'])
            # a cache written before roles were recorded is a listener's
            self.role = check_role(index.get('role', LISTENING), f'{INDEX_FILE} role')
            self.floors: Optional[Dict[str, Any]] = index.get('floors')
            self.report: Dict[str, Any] = index['report']
            self.summary: str = index['summary']
            shards = {s['file']: int(s['n_frames']) for s in index['shards']}
            entries = [CachedDialogInfo.from_dict(d) for d in index['dialogs']]
            for name in self.targets:
                get_stream(name)
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheError(f'{self.cache_dir / INDEX_FILE} is malformed ({exc!r})') from exc
        for name in shards:
            if not (self.cache_dir / name).is_file():
                raise CacheError(f'shard {name} listed in {self.cache_dir / INDEX_FILE} is '
                                 f'missing; prepare the cache again')
        wanted = None if groups is None else {str(g) for g in groups}
        self.dialogs: List[CachedDialogInfo] = [
            d for d in entries if wanted is None or d.group in wanted]
        self._index = index

    @property
    def frame_rate(self) -> float:
        """Return the true frame rate in Hz (``sample_rate / hop_length``)."""
        return self.feature_config.sample_rate / self.feature_config.hop_length

    @property
    def groups(self) -> List[str]:
        """Return the groups present in this (possibly filtered) view, in split order."""
        present = {d.group for d in self.dialogs}
        return [g for g in self.split.groups if g in present]

    @property
    def n_frames(self) -> int:
        """Return the total number of frames in this view."""
        return sum(d.n_frames for d in self.dialogs)

    def __len__(self) -> int:
        return len(self.dialogs)

    def select(self, groups: Iterable[str]) -> 'FeatureCache':
        """Return a view holding only the dialogs of ``groups``."""
        view = FeatureCache.__new__(FeatureCache)
        view.__dict__.update(self.__dict__)
        wanted = {str(g) for g in groups}
        view.dialogs = [d for d in self.dialogs if d.group in wanted]
        return view

    def _read(self, info: CachedDialogInfo, names: Iterable[str], rows: slice
              ) -> Dict[str, np.ndarray]:
        path = self.cache_dir / info.shard
        try:
            with safe_open(str(path), framework='numpy') as f:
                return {name: f.get_slice(name)[rows] for name in names}
        except Exception as exc:  # safetensors raises its own error types
            raise CacheError(f'cannot read {path}: {exc}') from exc

    def load(self, i: int) -> CachedDialog:
        """Read dialog ``i`` of this view from its shard."""
        info = self.dialogs[i]
        n = info.n_frames
        names = (FEATURE_TENSORS + MASK_TENSORS
                 + tuple(f(s) for s in self.targets for f in (target_tensor, valid_tensor)))
        arrays = self._read(info, names, slice(info.offset, info.offset + n))
        shapes = {'log_mel': (n, self.feature_config.n_mels),
                  **{target_tensor(s): (n, get_stream(s).dim) for s in self.targets}}
        for name, array in arrays.items():
            if array.shape != shapes.get(name, (n,)):
                raise CacheError(f'{self.cache_dir / info.shard}: {name} rows {info.offset}..'
                                 f'{info.offset + n} have shape {array.shape}; the shard does '
                                 f'not match the index')
        features = FeatureBatch(*(arrays[name] for name in FEATURE_TENSORS))
        return CachedDialog(info, features,
                            {s: arrays[target_tensor(s)] for s in self.targets},
                            {s: arrays[valid_tensor(s)] for s in self.targets},
                            arrays['mask/utterance'], arrays['mask/window'])

    def load_audio(self, i: int) -> np.ndarray:
        """Return the audio of dialog ``i`` (float32, ``n_frames * hop`` samples)."""
        info = self.dialogs[i]
        hop = self.feature_config.hop_length
        rows = slice(info.offset * hop, (info.offset + info.n_frames) * hop)
        pcm = self._read(info, (AUDIO_TENSOR,), rows)[AUDIO_TENSOR]
        return pcm.astype(np.float32) / _PCM_SCALE


class _ShardWriter:
    """Buffers dialogs and writes ``shard-XXXXX.safetensors`` files of bounded size."""

    def __init__(self, cache_dir: Path, shard_frames: int) -> None:
        self.cache_dir = cache_dir
        self.shard_frames = shard_frames
        self.shards: List[Dict[str, Any]] = []
        self._buffer: Dict[str, List[np.ndarray]] = {}
        self._rows = 0

    @property
    def current(self) -> str:
        return f'shard-{len(self.shards):05d}.safetensors'

    def add(self, tensors: Dict[str, np.ndarray], n_frames: int) -> int:
        """Append one dialog's tensors and return its offset in the current shard."""
        offset = self._rows
        for name, array in tensors.items():
            self._buffer.setdefault(name, []).append(array)
        self._rows += n_frames
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
        self._buffer = {}
        self._rows = 0


def _stream_tensors(stream: DialogStream, config: FeatureConfig) -> Dict[str, np.ndarray]:
    """Return the shard tensors of one dialog stream."""
    features = extract_features(stream.audio, config)
    n = stream.n_frames
    if len(features) != n:
        raise RuntimeError(f'{stream.dialog_id}: {len(features)} feature frames for {n} '
                           f'stream frames')
    tensors = {name: np.asarray(getattr(features, name), dtype=np.float32)
               for name in FEATURE_TENSORS}
    for name, values in stream.targets.items():
        tensors[target_tensor(name)] = np.asarray(values, dtype=np.float32)
        tensors[valid_tensor(name)] = np.asarray(stream.valid[name], dtype=bool)
    tensors['mask/utterance'] = np.asarray(stream.utterance, dtype=bool)
    tensors['mask/window'] = np.asarray(stream.window, dtype=bool)
    pcm = np.clip(np.round(stream.audio[:n * stream.hop_length] * _PCM_SCALE), -32768, 32767)
    tensors[AUDIO_TENSOR] = pcm.astype(np.int16)
    return tensors


def prepare_cache(source: DialogSource, cache_dir: Path, shard_frames: int = 200_000,
                  force: bool = False, progress: bool = True,
                  out: Optional[TextIO] = None) -> FeatureCache:
    """
    Extract the features of every dialog stream of ``source`` once, into ``cache_dir``.

    Skips the work when ``cache_dir`` already holds a valid index prepared from a source with
    the same :meth:`~listener_head_ros.data.source.DialogSource.describe` (unless ``force``).
    Shows a tqdm bar over dialogs and prints the source's summary table to ``out`` (stdout).
    """
    out = out if out is not None else sys.stdout
    cache_dir = Path(cache_dir)
    identity = json.loads(json.dumps(source.describe()))  # as the index will hold it
    if not force:
        try:
            cache = FeatureCache(cache_dir)
        except CacheError:
            cache = None
        if cache is not None and cache.source == identity:
            print(f'feature cache at {cache_dir} is up to date ({len(cache)} dialogs); its '
                  f'preparation summary:', file=out)
            print(cache.summary, file=out)
            return cache
    total = len(source.dialog_ids())
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / INDEX_FILE).unlink(missing_ok=True)
    for stale in cache_dir.glob('shard-*.safetensors'):
        stale.unlink()
    config = source.feature_config
    writer = _ShardWriter(cache_dir, shard_frames)
    entries: List[Dict[str, Any]] = []
    bar = tqdm(source.dialogs(), total=total, desc=f'{source.name} features', unit='dialog',
               disable=not progress)
    for stream in bar:
        missing = sorted(set(source.targets) - set(stream.targets))
        if missing:
            raise RuntimeError(f'{stream.dialog_id} lacks the target streams {missing}')
        offset = writer.add(_stream_tensors(stream, config), stream.n_frames)
        entries.append(CachedDialogInfo(
            stream.dialog_id, stream.group, stream.n_frames, writer.current, offset,
            stream.turns, stream.segments, stream.meta,
            [event_to_dict(e) for e in stream.transcripts]).to_dict())
        writer.flush()
        bar.set_postfix(frames=sum(e['n_frames'] for e in entries))
    writer.flush(final=True)
    index = {
        'format': FORMAT_NAME, 'version': FORMAT_VERSION, 'source': identity,
        'role': source.role,
        'features': asdict(config), 'frame_rate_hz': config.sample_rate / config.hop_length,
        'streams': {name: {'channels': list(get_stream(name).channels),
                           'units': get_stream(name).units} for name in source.targets},
        'split': source.split.to_dict(), 'floors': source.floors(),
        'shards': writer.shards, 'dialogs': entries, 'report': source.report(),
        'summary': source.summary_table()}
    tmp = cache_dir / f'{INDEX_FILE}.tmp'
    tmp.write_text(json.dumps(index, indent=1), encoding='utf-8')
    os.replace(tmp, cache_dir / INDEX_FILE)
    print(f'prepared {len(entries)} dialog streams ({sum(e["n_frames"] for e in entries)} '
          f'frames) in {len(writer.shards)} shard(s) at {cache_dir}', file=out)
    print(index['summary'], file=out)
    return FeatureCache(cache_dir)
