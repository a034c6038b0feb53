"""
REACT 2025 (MARS) as dialog streams: the speaker's audio and the listener's face, one per dyad.

Layout parsed (the challenge release; :mod:`listener_head_ros.data.synthetic_react` writes the
same)::

    <root>/{train,val,test}/audio/{speaker,listener}/session<k>/<clip>.wav
    <root>/{train,val,test}/facial-attributes/{speaker,listener}/session<k>/<clip>.npy  (T, 25)
    <root>/{train,val,test}/coefficients/{speaker,listener}/session<k>/<clip>.npy       (T, 58)
    <root>/mean_face.npy, <root>/std_face.npy    (58,): the coefficients' normalisation, optional
    <root>/oracle/test/{facial-attributes,coefficients}/session<k>/<clip>.npy
                                                 (S, T, 25|58): synthetic corpora only

Dyads.  The speaker and listener files with the same split, session and clip name form one
:class:`Dyad`; a dyad needs all six files.  Facial data is 30 fps (:data:`FACIAL_FPS`):
``facial-attributes`` are the 15 AU occurrences, valence, arousal and 8 expression
probabilities of :data:`~listener_head_ros.streams.FACIAL_ATTRIBUTES`, ``coefficients`` the
FaceVerse v2 52 expression, 3 rotation and 3 translation values of
:data:`~listener_head_ros.streams.COEFFICIENTS`.  Sessions and clips sort naturally
(``session2`` before ``session10``).  Hidden entries (names starting with ``.``) are ignored;
anything else that is not a ``session<k>`` folder, or not a file with the kind's suffix inside
one, is an error.

Appropriate reactions (the challenge's definition): every listener clip of a session (same
split) is an appropriate reaction to each speaker clip of that session
(:meth:`ReactRelease.appropriate_listeners`, the paired listener first).  The test protocol's
appropriate set of a speaker clip is its paired listener plus ``size - 1`` of the session's
other listeners drawn with a numpy generator seeded from ``(seed, dyad.key)``
(:meth:`ReactRelease.appropriate_set`), so the draw is the same on every machine.

Errors.  Every problem with the release raises :class:`ReleaseError` (a ``ValueError``) naming
the path: a missing root or split folder, a dyad lacking any of its six files, a session with
no dyads, an array that is unreadable (``np.load(allow_pickle=False)``), not 2-D, of the wrong
width, of a non-real dtype, empty or non-finite, one side's attributes and coefficients with
different frame counts, a wav that cannot be read or is more than
:data:`AUDIO_TOLERANCE_SECONDS` (0.5 s) shorter than the facial frames, a ``mean_face.npy``/
``std_face.npy`` that is not 58 finite values (``(58,)`` or ``(1, 58)``), or a non-positive
std.  The release layout is checked by :func:`scan_release`; array contents when loaded.

Dialog streams.  :class:`React2025Source` yields one
:class:`~listener_head_ros.data.source.DialogStream` per dyad, in the group of its split (the
release's fixed split): the audio is the *speaker's* wav (what the listener hears), any rate
and channel count, down-mixed and resampled with soxr to the feature rate; the targets are the
*listener's* facial attributes and coefficients (as released by default: the node maps raw
FaceVerse rotations and expression coefficients to the head and the blendshapes, and the
flow network standardises its targets itself; normalised with ``mean_face``/``std_face``
when the release has them and :attr:`React2025Config.normalise` is set, for analysis); the
speaker's own face is no input.  The release has no transcripts: each stream has one
untranscribed turn and one :class:`~listener_head_ros.data.source.Segment` covering the whole
clip, and every frame is in its listening window.

Frame times.  Model frame ``i`` ends at sample ``(i + 1) * hop`` of the feature rate
(``16000 / 533 = 30.019`` Hz with the defaults, not exactly 30): its time is
``t_i = (i + 1) * hop / sr``, when the model has heard the audio up to ``t_i``.  Facial frame
``j`` is the face at ``j / 30`` s.  The target of model frame ``i`` is the facial track
linearly interpolated at ``t_i`` (:func:`facial_at_model_frames`): the face at the instant
the model has heard up to, as the IEMOCAP head is.  The interpolation reads the facial frame
just after ``t_i`` (less than 33 ms later); a causal listener's face there depends on at most
that much unheard audio, and the synthetic corpus's reactions, which lag their cues by 200 ms
or more, on none.  The stream has a frame for every complete hop of audio that ends within
the facial track, ``Tf / 30`` s (:func:`model_frames`); the last frames hold the last facial
frame, and audio past the track is left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import hashlib
import math
from pathlib import Path
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import soxr

from listener_head_ros.data.source import (
    DialogSource, DialogStream, FIXED, INTERLOCUTOR, Segment, SplitScheme, Turn)
from listener_head_ros.features import FeatureConfig
from listener_head_ros.streams import COEFFICIENTS, FACIAL_ATTRIBUTES, Stream

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
FACIAL_FPS = 30.0
KINDS: Tuple[str, ...] = ('audio', 'facial-attributes', 'coefficients')
SIDES: Tuple[str, ...] = ('speaker', 'listener')
SUFFIXES: Dict[str, str] = {'audio': '.wav', 'facial-attributes': '.npy', 'coefficients': '.npy'}
FACIAL_KINDS: Dict[str, Stream] = {'facial-attributes': FACIAL_ATTRIBUTES,
                                   'coefficients': COEFFICIENTS}
"""The facial kinds of the release and the stream each one holds."""
TARGETS: Tuple[str, ...] = tuple(s.name for s in FACIAL_KINDS.values())
MEAN_FACE_FILE = 'mean_face.npy'
STD_FACE_FILE = 'std_face.npy'
ORACLE_DIR = 'oracle'
ORACLE_SPLITS: Tuple[str, ...] = ('test',)  # the splits an oracle folder covers
AUDIO_TOLERANCE_SECONDS = 0.5  # how much shorter than the facial frames a wav may be
LAYOUT = '{train,val,test}/{audio,facial-attributes,coefficients}/{speaker,listener}/' \
         'session<k>/<clip>.{wav,npy}'

_SESSION_RE = re.compile(r'^session\d+$')
_NPY_MAGIC = b'\x93NUMPY'


class ReleaseError(ValueError):
    """A REACT 2025 release (or a file of it) is missing, incomplete or malformed."""


def _natural(name: str) -> Tuple[Any, ...]:
    """Return a sort key that orders the digit runs of ``name`` by value."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r'(\d+)', name))


def _check_kind_side(kind: str, side: str) -> None:
    if kind not in KINDS or side not in SIDES:
        raise ValueError(f'kind must be one of {KINDS} and side one of {SIDES}, not '
                         f'{kind!r}, {side!r}')


@dataclass(frozen=True)
class Dyad:
    """One speaker clip and its paired listener clip: six files of a split and session."""

    split: str
    session: str  # e.g. 'session3'
    clip: str
    root: Path

    def relative(self, kind: str, side: str) -> str:
        """Return the POSIX path of one of the six files relative to the release root."""
        _check_kind_side(kind, side)
        return f'{self.split}/{kind}/{side}/{self.session}/{self.clip}{SUFFIXES[kind]}'

    def path(self, kind: str, side: str) -> Path:
        """Return the path of one of the six files (``kind`` of :data:`KINDS`, ``side``)."""
        return Path(self.root) / self.relative(kind, side)

    def oracle_path(self, kind: str) -> Path:
        """Return the path of the oracle reactions of ``kind`` (a facial kind) of this dyad."""
        if kind not in FACIAL_KINDS:
            raise ValueError(f'oracle kinds are {tuple(FACIAL_KINDS)}, not {kind!r}')
        return (Path(self.root) / ORACLE_DIR / self.split / kind / self.session
                / f'{self.clip}.npy')

    @property
    def key(self) -> str:
        """Return ``'<split>/<session>/<clip>'``: the dyad's id (the dialog id of its stream)."""
        return f'{self.split}/{self.session}/{self.clip}'


def _load_npy(path: Path) -> np.ndarray:
    """Return a real-valued array read from ``path`` without unpickling."""
    try:
        with open(path, 'rb') as f:
            magic = f.read(len(_NPY_MAGIC))
        array = np.load(str(path), allow_pickle=False) if magic == _NPY_MAGIC else None
    except (OSError, ValueError, EOFError) as exc:
        raise ReleaseError(f'{path}: not a readable .npy array ({exc})') from exc
    if array is None:
        kind = 'an .npz archive' if magic.startswith(b'PK') else 'no NUMPY header'
        raise ReleaseError(f'{path}: not an .npy array ({kind})')
    if array.dtype.kind not in 'fiu':
        raise ReleaseError(f'{path}: dtype {array.dtype}; expected real numbers (float or int)')
    return array


def _check_finite(array: np.ndarray, path: Path, channels: Sequence[str]) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        where = np.argwhere(bad)[0]
        frame = f'frame {where[0]}, ' if array.ndim > 1 else ''
        raise ReleaseError(f'{path}: non-finite value {array[tuple(where)]} at {frame}'
                           f'channel {where[-1]} ({channels[where[-1]]})')


def _load_track(path: Path, stream: Stream, frames: Optional[int]) -> np.ndarray:
    array = _load_npy(path)
    if array.ndim != 2 or array.shape[1] != stream.dim:
        raise ReleaseError(f'{path}: shape {array.shape}; expected (frames, {stream.dim}): '
                           f'{stream.description}')
    if array.shape[0] == 0:
        raise ReleaseError(f'{path}: no frames')
    if frames is not None and array.shape[0] != frames:
        raise ReleaseError(f'{path}: {array.shape[0]} frames where {frames} are expected')
    _check_finite(array, path, stream.channels)
    return np.ascontiguousarray(array, dtype=np.float32)


def load_attributes(path: Path, *, frames: Optional[int] = None) -> np.ndarray:
    """
    Return the (T, 25) float32 facial attributes of one clip, checked.

    ``frames``, when given, is the frame count the file must have.  Values are not clipped to
    their ranges (a detector's output may stray); only non-finite values are refused.
    """
    return _load_track(Path(path), FACIAL_ATTRIBUTES, frames)


def load_coefficients(path: Path, *, frames: Optional[int] = None) -> np.ndarray:
    """Return the (T, 58) float32 FaceVerse coefficients of one clip, checked (``frames`` too)."""
    return _load_track(Path(path), COEFFICIENTS, frames)


def load_face(dyad: Dyad, side: str) -> Tuple[np.ndarray, np.ndarray]:
    """Return one side's (attributes, coefficients), checked to have the same frame count."""
    attributes = load_attributes(dyad.path('facial-attributes', side))
    path = dyad.path('coefficients', side)
    coefficients = load_coefficients(path)
    if coefficients.shape[0] != attributes.shape[0]:
        raise ReleaseError(f'{path}: {coefficients.shape[0]} frames, but the '
                           f'{side} facial attributes '
                           f'{dyad.path("facial-attributes", side)} have '
                           f'{attributes.shape[0]}')
    return attributes, coefficients


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Return a wav as float32 mono (channels averaged) at ``sample_rate`` (soxr)."""
    try:
        data, rate = sf.read(str(path), dtype='float32', always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise ReleaseError(f'{path}: not a readable wav file ({exc})') from exc
    if data.size == 0:
        raise ReleaseError(f'{path}: no audio samples')
    if not np.all(np.isfinite(data)):
        raise ReleaseError(f'{path}: non-finite audio samples')
    mono = data.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def normalise_coefficients(coefficients: np.ndarray, mean_face: np.ndarray,
                           std_face: np.ndarray) -> np.ndarray:
    """Return ``(coefficients - mean_face) / std_face`` (float32; the last axis has 58)."""
    return ((np.asarray(coefficients, dtype=np.float32) - mean_face) / std_face).astype(
        np.float32)


def denormalise_coefficients(normalised: np.ndarray, mean_face: np.ndarray,
                             std_face: np.ndarray) -> np.ndarray:
    """Return ``normalised * std_face + mean_face``: the inverse of normalisation."""
    return (np.asarray(normalised, dtype=np.float32) * std_face + mean_face).astype(np.float32)


def model_frames(facial_frames: int, audio_samples: int, sample_rate: int, hop_length: int,
                 fps: float = FACIAL_FPS) -> int:
    """Return the model frames of a clip: complete hops of audio ending within the track."""
    covered = math.floor(facial_frames * sample_rate / (fps * hop_length) + 1e-9)
    return max(0, min(int(audio_samples) // hop_length, covered))


def facial_at_model_frames(track: np.ndarray, n_frames: int, sample_rate: int,
                           hop_length: int, fps: float = FACIAL_FPS) -> np.ndarray:
    """
    Return a facial track (``(..., Tf, dim)``, frame ``j`` at ``j / fps`` s) at model frames.

    The value at model frame ``i`` is the track linearly interpolated at ``(i + 1) * hop /
    sample_rate`` s, held at the last facial frame after it (see the module docstring);
    the result has shape ``(..., n_frames, dim)``, float32.
    """
    values = np.asarray(track, dtype=np.float32)
    last = values.shape[-2] - 1
    position = np.arange(1, n_frames + 1) * (hop_length * fps / sample_rate)
    lower = np.minimum(np.floor(position).astype(np.intp), last)
    upper = np.minimum(lower + 1, last)
    weight = np.clip(position - lower, 0.0, 1.0).astype(np.float32)[:, None]
    return (np.take(values, lower, axis=-2) * (1.0 - weight)
            + np.take(values, upper, axis=-2) * weight).astype(np.float32)


def _read_face_statistics(root: Path) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    paths = [root / MEAN_FACE_FILE, root / STD_FACE_FILE]
    present = [p.is_file() for p in paths]
    if not any(present):
        return None, None
    if not all(present):
        missing, there = (paths[1], paths[0]) if present[0] else (paths[0], paths[1])
        raise ReleaseError(f'{missing} is missing while {there} is there: the coefficients '
                           f'are normalised with both')
    stats = []
    for path in paths:
        array = _load_npy(path)
        if array.shape not in ((COEFFICIENTS.dim,), (1, COEFFICIENTS.dim)):
            raise ReleaseError(f'{path}: shape {array.shape}; expected ({COEFFICIENTS.dim},)')
        array = array.reshape(-1).astype(np.float32)
        _check_finite(array, path, COEFFICIENTS.channels)
        stats.append(array)
    nonpositive = np.flatnonzero(stats[1] <= 0.0)
    if nonpositive.size:
        c = int(nonpositive[0])
        raise ReleaseError(f'{paths[1]}: std {stats[1][c]} <= 0 at channel {c} '
                           f'({COEFFICIENTS.channels[c]})')
    return stats[0], stats[1]


def _scan_split(root: Path, split: str) -> List[Dyad]:
    files: Dict[Tuple[str, str], set] = {}  # (session, clip) -> {(kind, side)}
    folders: Dict[str, Path] = {}  # session -> a folder of it
    for kind in KINDS:
        for side in SIDES:
            base = root / split / kind / side
            if not base.is_dir():
                raise ReleaseError(f'{base}: folder missing (a split holds {LAYOUT})')
            for folder in sorted(base.iterdir()):
                if folder.name.startswith('.'):
                    continue
                if not folder.is_dir() or not _SESSION_RE.match(folder.name):
                    raise ReleaseError(f'{folder}: expected only session<k> folders in {base}')
                folders.setdefault(folder.name, folder)
                for path in sorted(folder.iterdir()):
                    if path.name.startswith('.'):
                        continue
                    if not path.is_file() or path.suffix != SUFFIXES[kind]:
                        raise ReleaseError(f'{path}: expected only {SUFFIXES[kind]} files in '
                                           f'{folder}')
                    files.setdefault((folder.name, path.stem), set()).add((kind, side))
    dyads = []
    for (session, clip), present in sorted(files.items(),
                                           key=lambda i: (_natural(i[0][0]), _natural(i[0][1]))):
        dyad = Dyad(split, session, clip, root)
        for kind in KINDS:
            for side in SIDES:
                if (kind, side) not in present:
                    have = sorted(f'{k}/{s}' for k, s in present)
                    raise ReleaseError(f'{dyad.path(kind, side)} is missing: dyad {dyad.key} '
                                       f'has only {", ".join(have)} (a dyad needs all six '
                                       f'files)')
        dyads.append(dyad)
    for session, folder in sorted(folders.items()):
        if not any(d.session == session for d in dyads):
            raise ReleaseError(f'{folder}: session {session} has no dyads')
    if not dyads:
        raise ReleaseError(f'{root / split}: no dyads ({LAYOUT})')
    return dyads


def _seed(seed: int, key: str) -> np.random.SeedSequence:
    """Return the seed sequence of ``(seed, key)``: the same on every machine and run."""
    digest = hashlib.sha256(key.encode('utf-8')).digest()
    words = [int.from_bytes(digest[i:i + 4], 'little') for i in range(0, 16, 4)]
    return np.random.SeedSequence([int(seed)] + words)


class ReactRelease:
    """A scanned release: its dyads per split, the face statistics and the oracle."""

    def __init__(self, root: Path, splits: Sequence[str], dyads: Dict[str, List[Dyad]],
                 mean_face: Optional[np.ndarray], std_face: Optional[np.ndarray]) -> None:
        self.root = Path(root)
        self.splits: Tuple[str, ...] = tuple(splits)
        self.mean_face = mean_face
        self.std_face = std_face
        self._dyads = dyads
        self._by_key = {d.key: d for split in self.splits for d in dyads[split]}

    def dyads(self, split: str) -> List[Dyad]:
        """Return the dyads of ``split``, sorted by session then clip."""
        if split not in self._dyads:
            raise ValueError(f'split {split!r} was not scanned; scanned: {list(self.splits)}')
        return list(self._dyads[split])

    def dyad(self, key: str) -> Dyad:
        """Return the dyad of a :attr:`Dyad.key` such as ``'test/session3/clip7'``."""
        if key not in self._by_key:
            raise ValueError(f'no dyad {key!r} in {self.root}')
        return self._by_key[key]

    def sessions(self, split: str) -> List[str]:
        """Return the sessions of ``split`` in order."""
        return list(dict.fromkeys(d.session for d in self.dyads(split)))

    def appropriate_listeners(self, dyad: Dyad) -> List[Dyad]:
        """Return the dyads whose listeners suit ``dyad``'s speaker: its session's, it first."""
        same = [d for d in self.dyads(dyad.split) if d.session == dyad.session]
        if dyad not in same:
            raise ValueError(f'{dyad.key} is not a dyad of {self.root}')
        return [dyad] + [d for d in same if d != dyad]

    def appropriate_set(self, dyad: Dyad, *, size: int, seed: int) -> List[Dyad]:
        """
        Return the paired dyad and ``size - 1`` others of its session (all when fewer).

        The others are drawn without replacement by a generator seeded from ``(seed,
        dyad.key)`` and listed in session order; ``seed`` is a non-negative integer.
        """
        if size < 1 or seed < 0:
            raise ValueError(f'size must be >= 1 and seed >= 0, not {size}, {seed}')
        listeners = self.appropriate_listeners(dyad)
        others = listeners[1:]
        if len(others) <= size - 1:
            return listeners
        rng = np.random.default_rng(_seed(seed, dyad.key))
        picked = np.sort(rng.choice(len(others), size=size - 1, replace=False))
        return [dyad] + [others[int(i)] for i in picked]

    def oracle(self, dyad: Dyad) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """
        Return the oracle's ``(S, T, 25)`` attributes and ``(S, T, 58)`` coefficients.

        ``S`` reactions sampled from the true process of a synthetic corpus, ``T`` the
        listener's facial frames.  None when the release has no ``oracle`` folder or the dyad's
        split is not one it covers (:data:`ORACLE_SPLITS`); a missing or bad file raises.
        """
        if not (self.root / ORACLE_DIR).is_dir() or dyad.split not in ORACLE_SPLITS:
            return None
        frames = load_attributes(dyad.path('facial-attributes', 'listener')).shape[0]
        arrays = []
        for kind, stream in FACIAL_KINDS.items():
            path = dyad.oracle_path(kind)
            if not path.is_file():
                raise ReleaseError(f'{path} is missing: the release has an oracle folder')
            array = _load_npy(path)
            if array.ndim != 3 or array.shape[0] < 1 or array.shape[1:] != (frames, stream.dim):
                raise ReleaseError(f'{path}: shape {array.shape}; expected (samples, {frames}, '
                                   f'{stream.dim}) for the listener\'s {frames} frames')
            _check_finite(array, path, stream.channels)
            arrays.append(array.astype(np.float32))
        if arrays[0].shape[0] != arrays[1].shape[0]:
            raise ReleaseError(f'{dyad.oracle_path("coefficients")}: {arrays[1].shape[0]} '
                               f'samples, the attributes have {arrays[0].shape[0]}')
        return arrays[0], arrays[1]


def scan_release(root: Path, *, splits: Sequence[str] = SPLITS) -> ReactRelease:
    """Return the release at ``root`` with its dyads paired and its layout checked."""
    root = Path(root)
    splits = tuple(splits)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits or len(set(splits)) != len(splits):
        raise ValueError(f'splits must be distinct names of {SPLITS}, not {list(splits)}')
    if not root.is_dir():
        raise ReleaseError(f'{root}: no REACT 2025 release folder there (expected {LAYOUT})')
    dyads = {}
    for split in splits:
        if not (root / split).is_dir():
            raise ReleaseError(f'{root / split}: split folder missing (expected {LAYOUT})')
        dyads[split] = _scan_split(root, split)
    mean_face, std_face = _read_face_statistics(root)
    return ReactRelease(root, splits, dyads, mean_face, std_face)


@dataclass(frozen=True)
class React2025Config:
    """Which release, splits and targets a :class:`React2025Source` reads, and how."""

    root: Path
    splits: Tuple[str, ...] = SPLITS
    features: FeatureConfig = field(default_factory=FeatureConfig)
    targets: Tuple[str, ...] = TARGETS
    normalise: bool = False  # coefficients with the release's mean_face/std_face, if any
    audio_tolerance_seconds: float = AUDIO_TOLERANCE_SECONDS
    facial_fps: float = FACIAL_FPS

    def __post_init__(self) -> None:
        object.__setattr__(self, 'root', Path(self.root))
        object.__setattr__(self, 'splits', tuple(self.splits))
        object.__setattr__(self, 'targets', tuple(self.targets))
        if (not self.splits or len(set(self.splits)) != len(self.splits)
                or not set(self.splits) <= set(SPLITS)):
            raise ValueError(f'splits must be distinct names of {SPLITS}, not '
                             f'{list(self.splits)}')
        if (not self.targets or len(set(self.targets)) != len(self.targets)
                or not set(self.targets) <= set(TARGETS)):
            raise ValueError(f'targets must be distinct names of {TARGETS}, not '
                             f'{list(self.targets)}')
        if self.audio_tolerance_seconds < 0.0 or self.facial_fps <= 0.0:
            raise ValueError('audio_tolerance_seconds must be >= 0 and facial_fps > 0')

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dict of every setting, the feature settings included."""
        data = asdict(self)
        data.update(root=str(self.root.resolve()), splits=list(self.splits),
                    targets=list(self.targets))
        return data


@dataclass
class SplitStats:
    """Counts of one split in a pass over the dyads."""

    sessions: int = 0
    dyads: int = 0
    seconds: float = 0.0  # of the streams' audio
    frames: int = 0  # model frames
    facial_frames: int = 0  # of the listener tracks, at 30 fps
    shortest: int = 0  # facial frames of the shortest listener clip
    longest: int = 0  # and of the longest

    def add(self, facial_frames: int, frames: int, seconds: float) -> None:
        """Count one dyad's stream."""
        self.merge(SplitStats(0, 1, seconds, frames, facial_frames, facial_frames,
                              facial_frames))

    def merge(self, other: 'SplitStats') -> None:
        """Accumulate the counts of ``other`` into these."""
        if other.dyads:
            self.shortest = min(self.shortest, other.shortest) if self.dyads else other.shortest
            self.longest = max(self.longest, other.longest)
        self.sessions += other.sessions
        self.dyads += other.dyads
        self.seconds += other.seconds
        self.frames += other.frames
        self.facial_frames += other.facial_frames

    def row(self, name: str) -> str:
        """Return this split's line of the summary table."""
        return (f'{name:>6} {self.sessions:>8} {self.dyads:>6} {self.seconds / 60.0:>8.2f} '
                f'{self.frames:>8} {self.facial_frames:>8} {self.shortest:>8} '
                f'{self.longest:>8}')


class React2025Source(DialogSource):
    """The REACT 2025 release as dialog streams, one per dyad, grouped by split."""

    name = 'react2025'

    def __init__(self, config: React2025Config,
                 release: Optional[ReactRelease] = None) -> None:
        self.config = config
        self.release = (release if release is not None
                        else scan_release(config.root, splits=config.splits))
        missing = [s for s in config.splits if s not in self.release.splits]
        if missing or self.release.root.resolve() != config.root.resolve():
            raise ValueError(f'the release of {self.release.root} (splits '
                             f'{list(self.release.splits)}) is not the one the config names: '
                             f'{config.root}, splits {list(config.splits)}')
        self.stats: Dict[str, SplitStats] = {}

    @property
    def feature_config(self) -> FeatureConfig:
        """Return the feature settings of :attr:`config`."""
        return self.config.features

    @property
    def targets(self) -> Tuple[str, ...]:
        """Return the listener streams of :attr:`config`."""
        return self.config.targets

    @property
    def split(self) -> SplitScheme:
        """Return the release's fixed split: train, val, test."""
        return SplitScheme(FIXED, SPLITS)

    @property
    def normalised(self) -> bool:
        """Return whether the coefficient targets are normalised with the mean face."""
        return self.config.normalise and self.release.mean_face is not None

    def _files(self) -> List[str]:
        """Return every file the streams read, relative to the release root."""
        names = [d.relative(kind, side) for split in self.config.splits
                 for d in self.release.dyads(split) for kind in KINDS for side in SIDES]
        return names + [n for n in (MEAN_FACE_FILE, STD_FACE_FILE)
                        if (self.release.root / n).is_file()]

    def describe(self) -> Dict[str, Any]:
        """Return the release, settings and a digest of its files' names, sizes and times."""
        digest = hashlib.sha256()
        for name in self._files():
            stat = (self.release.root / name).stat()
            digest.update(f'{name} {stat.st_size} {stat.st_mtime_ns}\n'.encode('utf-8'))
        return {'name': self.name, 'config': self.config.to_dict(),
                'normalised': self.normalised, 'files': digest.hexdigest()}

    def dialog_ids(self) -> List[str]:
        """Return the keys of the dyads of the selected splits, in order."""
        return [d.key for split in self.config.splits for d in self.release.dyads(split)]

    def stream(self, dyad: Dyad) -> DialogStream:
        """Return the checked dialog stream of one dyad (see the module docstring)."""
        cfg = self.config
        sr, hop = cfg.features.sample_rate, cfg.features.hop_length
        attributes, coefficients = load_face(dyad, 'listener')
        speaker_frames = load_face(dyad, 'speaker')[0].shape[0]
        facial = attributes.shape[0]
        path = dyad.path('audio', 'speaker')
        audio = load_audio(path, sr)
        needed = max(facial, speaker_frames) / cfg.facial_fps - cfg.audio_tolerance_seconds
        if audio.size / sr < needed:
            raise ReleaseError(
                f'{path}: {audio.size / sr:.2f} s of audio for {max(facial, speaker_frames)} '
                f'facial frames ({max(facial, speaker_frames) / cfg.facial_fps:.2f} s); it may '
                f'be at most {cfg.audio_tolerance_seconds} s shorter')
        n = model_frames(facial, audio.size, sr, hop, cfg.facial_fps)
        if n < 1:
            raise ReleaseError(f'{path}: too short for one model frame ({audio.size} samples '
                               f'at {sr} Hz, {facial} facial frames)')
        if self.normalised:
            coefficients = normalise_coefficients(coefficients, self.release.mean_face,
                                                  self.release.std_face)
        tracks = {FACIAL_ATTRIBUTES.name: attributes, COEFFICIENTS.name: coefficients}
        targets = {name: facial_at_model_frames(tracks[name], n, sr, hop, cfg.facial_fps)
                   for name in cfg.targets}
        seconds = n * hop / sr
        return DialogStream(
            dialog_id=dyad.key, group=dyad.split, audio=audio[:n * hop], sample_rate=sr,
            hop_length=hop, targets=targets,
            valid={name: np.ones(n, dtype=bool) for name in targets},
            utterance=np.ones(n, dtype=bool), window=np.ones(n, dtype=bool),
            segments=[Segment(dyad.key, 0, n, n)],
            turns=[Turn(dyad.key, 'speaker', INTERLOCUTOR, 0.0, seconds,
                        {'transcribed': False})],
            meta={'split': dyad.split, 'session': dyad.session, 'clip': dyad.clip,
                  'facial_frames': facial, 'audio_seconds': round(audio.size / sr, 4),
                  'coefficients_normalised': self.normalised})

    def dialogs(self) -> Iterator[DialogStream]:
        """Yield the stream of every dyad of the selected splits; a bad file raises."""
        self.stats = {split: SplitStats(sessions=len(self.release.sessions(split)))
                      for split in self.config.splits}
        for split in self.config.splits:
            for dyad in self.release.dyads(split):
                stream = self.stream(dyad)
                self.stats[split].add(stream.meta['facial_frames'], stream.n_frames,
                                      stream.n_frames * stream.hop_length / stream.sample_rate)
                yield stream

    def report(self) -> Dict[str, Any]:
        """Return the per-split counts of the last pass."""
        return {split: asdict(stats) for split, stats in self.stats.items()}

    def summary_table(self) -> str:
        """Return a plain-text table of the last pass: one row per split and the total."""
        header = (f"{'split':>6} {'sessions':>8} {'dyads':>6} {'minutes':>8} {'frames':>8} "
                  f"{'facial':>8} {'shortest':>8} {'longest':>8}")
        rows = [header, '-' * len(header)]
        total = SplitStats()
        for split, stats in self.stats.items():
            rows.append(stats.row(split))
            total.merge(stats)
        rows.append(total.row('total'))
        rows.append('frames: model frames of the streams; facial, shortest, longest: listener '
                    f'frames at {self.config.facial_fps:g} fps')
        return '\n'.join(rows)
