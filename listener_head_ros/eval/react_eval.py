"""
REACT 2025 evaluation: predictions from a model, the predictions format, scores, reference rows.

* :func:`predict_split` runs a learned facial model on the speaker audio of a split's dyads:
  the **online** task steps the streaming model one hop at a time (no look-ahead), the
  **offline** task runs the batched forward pass over the whole clip; both draw ``samples``
  reactions with the same seeded noise, so they agree to float tolerance. Model frames
  (``16000 / 533 = 30.019`` Hz) are brought to the 30 fps facial frames causally by
  :func:`facial_frame_sources`.
* The **predictions format** (:func:`write_predictions`, :func:`read_predictions`,
  :func:`match_release`) is what any script can write to be scored; ``docs/metrics.md``
  section 2.3 defines it.
* :func:`score` gives every REACT metric in both modes (:mod:`.react_metrics`) plus MAE and
  CCC of valence and arousal against the paired listener, on the appropriate sets of
  :meth:`~listener_head_ros.data.react2025.ReactRelease.appropriate_set`;
  :func:`reference_rows` builds the GT, Mime, Random, Neutral and Oracle rows on the same
  clips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
import json
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
import zlib

import numpy as np

from listener_head_ros.data.react2025 import (
    Dyad, FACIAL_FPS, load_attributes, load_audio, model_frames,
    ReactRelease)
from listener_head_ros.eval.react_metrics import ccc, dtw_table, MODES, react_metrics
from listener_head_ros.features import extract_features
from listener_head_ros.models.frame_features import feature_matrix
from listener_head_ros.streams import COEFFICIENTS, FACIAL_ATTRIBUTES

FORMAT_NAME = 'listener_head_ros.react_predictions'
FORMAT_VERSION = 1
PREDICTIONS_FILE = 'predictions.npy'
COEFFICIENTS_FILE = 'coefficients.npy'
INDEX_FILE = 'index.json'
TASKS = ('online', 'offline')
DEFAULT_SAMPLES = 10
PAIRED_CHANNELS = {'valence': FACIAL_ATTRIBUTES.channels.index('valence'),
                   'arousal': FACIAL_ATTRIBUTES.channels.index('arousal')}
"""The attributes scored against the paired listener (MAE and CCC)."""
REFERENCE_ROWS = ('GT', 'Mime', 'Random', 'Neutral', 'Oracle')

Progress = Callable[[str], None]


class PredictionsError(ValueError):
    """A predictions directory is missing, malformed, or does not fit the release."""


@dataclass(frozen=True)
class ClipEntry:
    """One input of a predictions set: the speaker file it answers and its facial frames."""

    speaker: str  # the speaker's audio, relative to the data root (Dyad.relative)
    frames: int  # facial frames of the prediction: the paired listener's
    split: str
    session: str
    clip: str

    @classmethod
    def of(cls, dyad: Dyad, frames: int) -> 'ClipEntry':
        """Return the entry of ``dyad`` with ``frames`` facial frames."""
        return cls(dyad.relative('audio', 'speaker'), int(frames), dyad.split, dyad.session,
                   dyad.clip)


@dataclass
class Predictions:
    """Sampled reactions to N inputs: per input ``(S, T_n, 25)`` attributes (and coefficients)."""

    clips: List[ClipEntry]
    attributes: List[np.ndarray]
    coefficients: Optional[List[np.ndarray]] = None  # (S, T_n, 58) FaceVerse values
    fps: float = FACIAL_FPS
    task: str = ''  # 'online', 'offline', a reference row's name or the producer's own
    notes: List[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        """Return S, the reactions per input."""
        return int(self.attributes[0].shape[0])


# -- the predictions format -------------------------------------------------------------------

def _padded(arrays: Sequence[np.ndarray], dim: int) -> np.ndarray:
    """Return ``(N, S, T_max, dim)`` float32 with each input's frames and NaN after them."""
    t_max = max(a.shape[1] for a in arrays)
    out = np.full((len(arrays), arrays[0].shape[0], t_max, dim), np.nan, dtype=np.float32)
    for n, array in enumerate(arrays):
        out[n, :, :array.shape[1]] = array
    return out


def write_predictions(directory: Path | str, predictions: Predictions) -> Path:
    """Write ``predictions.npy``, ``coefficients.npy`` (if any) and ``index.json``; return it."""
    check_predictions(predictions, Path(directory))
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / PREDICTIONS_FILE, _padded(predictions.attributes, FACIAL_ATTRIBUTES.dim))
    if predictions.coefficients is not None:
        np.save(out / COEFFICIENTS_FILE, _padded(predictions.coefficients, COEFFICIENTS.dim))
    index = {'format': FORMAT_NAME, 'version': FORMAT_VERSION, 'fps': predictions.fps,
             'samples': predictions.samples, 'task': predictions.task,
             'clips': [vars(c) for c in predictions.clips]}
    (out / INDEX_FILE).write_text(json.dumps(index, indent=1) + '\n')
    return out


def check_predictions(predictions: Predictions, where: Path) -> None:
    """Raise PredictionsError unless every input has consistent shapes and finite values."""
    if not predictions.clips or len(predictions.attributes) != len(predictions.clips):
        raise PredictionsError(f'{where}: {len(predictions.attributes)} attribute arrays for '
                               f'{len(predictions.clips)} clips (need one per clip, >= 1)')
    kinds = [(PREDICTIONS_FILE, predictions.attributes, FACIAL_ATTRIBUTES.dim)]
    if predictions.coefficients is not None:
        kinds.append((COEFFICIENTS_FILE, predictions.coefficients, COEFFICIENTS.dim))
        if len(predictions.coefficients) != len(predictions.clips):
            raise PredictionsError(f'{where / COEFFICIENTS_FILE}: '
                                   f'{len(predictions.coefficients)} inputs for '
                                   f'{len(predictions.clips)} clips')
    samples = predictions.samples
    for name, arrays, dim in kinds:
        for clip, array in zip(predictions.clips, arrays):
            expected = (samples, clip.frames, dim)
            if tuple(array.shape) != expected:
                raise PredictionsError(f'{where / name}: {clip.speaker} has shape '
                                       f'{tuple(array.shape)}; expected (S, T, D) = {expected}')
            if not np.all(np.isfinite(array)):
                raise PredictionsError(f'{where / name}: {clip.speaker} has non-finite values '
                                       f'within its {clip.frames} frames')


def _read_index(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise PredictionsError(f'{path}: missing (a predictions directory holds '
                               f'{PREDICTIONS_FILE} and {INDEX_FILE})')
    try:
        index = json.loads(path.read_text())
    except ValueError as error:
        raise PredictionsError(f'{path}: not valid JSON ({error})') from None
    if not isinstance(index, dict) or index.get('format') != FORMAT_NAME:
        raise PredictionsError(f'{path}: "format" must be {FORMAT_NAME!r}')
    if index.get('version') != FORMAT_VERSION:
        raise PredictionsError(f'{path}: version {index.get("version")!r}; this reader knows '
                               f'version {FORMAT_VERSION}')
    for key, kind in (('fps', (int, float)), ('samples', int), ('clips', list)):
        if not isinstance(index.get(key), kind) or isinstance(index.get(key), bool):
            raise PredictionsError(f'{path}: "{key}" is missing or not a {kind}')
    if index['samples'] < 1 or not index['fps'] > 0 or not index['clips']:
        raise PredictionsError(f'{path}: need samples >= 1, fps > 0 and at least one clip')
    fields = ('speaker', 'frames', 'split', 'session', 'clip')
    for n, clip in enumerate(index['clips']):
        if not isinstance(clip, dict) or set(clip) != set(fields):
            raise PredictionsError(f'{path}: clips[{n}] must have exactly the fields {fields}')
        if not isinstance(clip['frames'], int) or clip['frames'] < 1:
            raise PredictionsError(f'{path}: clips[{n}] ({clip.get("speaker")}): frames must '
                                   f'be a positive integer, not {clip["frames"]!r}')
    return index


def _read_array(path: Path, clips: List[ClipEntry], samples: int, dim: int
                ) -> List[np.ndarray]:
    """Return per clip its ``(S, T_n, dim)`` view of a padded array file, checked."""
    try:
        array = np.load(path, mmap_mode='r', allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PredictionsError(f'{path}: not a readable .npy array ({error})') from None
    t_max = max(c.frames for c in clips)
    expected = (len(clips), samples, t_max, dim)
    if array.dtype != np.float32 or array.shape != expected:
        raise PredictionsError(f'{path}: {array.dtype} {array.shape}; expected float32 '
                               f'(N, S, T_max, D) = {expected} from {INDEX_FILE}')
    views = []
    for n, clip in enumerate(clips):
        if not np.all(np.isfinite(array[n, :, :clip.frames])):
            raise PredictionsError(f'{path}: input {n} ({clip.speaker}) has non-finite values '
                                   f'within its {clip.frames} frames')
        if not np.all(np.isnan(array[n, :, clip.frames:])):
            raise PredictionsError(f'{path}: input {n} ({clip.speaker}) has values after its '
                                   f'{clip.frames} frames, where the padding must be NaN')
        views.append(array[n, :, :clip.frames])
    return views


def read_predictions(directory: Path | str) -> Predictions:
    """Return the predictions of a directory in the documented format; raise PredictionsError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PredictionsError(f'{directory}: no predictions directory there')
    index = _read_index(directory / INDEX_FILE)
    clips = [ClipEntry(**c) for c in index['clips']]
    attributes = _read_array(directory / PREDICTIONS_FILE, clips, index['samples'],
                             FACIAL_ATTRIBUTES.dim)
    coefficients = None
    if (directory / COEFFICIENTS_FILE).exists():
        coefficients = _read_array(directory / COEFFICIENTS_FILE, clips, index['samples'],
                                   COEFFICIENTS.dim)
    return Predictions(clips, attributes, coefficients, float(index['fps']),
                       str(index.get('task', '')))


def match_release(predictions: Predictions, release: ReactRelease) -> List[Dyad]:
    """
    Return the dyad of each input; raise PredictionsError for an unknown or mismatched one.

    Each entry's ``speaker`` must be a speaker audio file of the release whose split, session
    and clip the entry repeats, listed once, with ``frames`` the paired listener's facial
    frames; the fps must be the release's.
    """
    if not math.isclose(predictions.fps, FACIAL_FPS):
        raise PredictionsError(f'predictions at {predictions.fps} fps; the release is at '
                               f'{FACIAL_FPS} fps')
    by_speaker = {d.relative('audio', 'speaker'): d for split in release.splits
                  for d in release.dyads(split)}
    dyads, seen = [], set()
    for n, clip in enumerate(predictions.clips):
        dyad = by_speaker.get(clip.speaker)
        if dyad is None:
            raise PredictionsError(f'clips[{n}]: {clip.speaker} is no speaker audio file of '
                                   f'the release at {release.root}')
        if (clip.split, clip.session, clip.clip) != (dyad.split, dyad.session, dyad.clip):
            raise PredictionsError(f'clips[{n}]: {clip.speaker} is {dyad.key}, not '
                                   f'{clip.split}/{clip.session}/{clip.clip}')
        if clip.speaker in seen:
            raise PredictionsError(f'clips[{n}]: {clip.speaker} is listed twice')
        seen.add(clip.speaker)
        frames = load_attributes(dyad.path('facial-attributes', 'listener')).shape[0]
        if clip.frames != frames:
            raise PredictionsError(f'clips[{n}]: {clip.speaker} has {clip.frames} frames; its '
                                   f'listener {dyad.relative("facial-attributes", "listener")} '
                                   f'has {frames}')
        dyads.append(dyad)
    return dyads


# -- predictions from a model -----------------------------------------------------------------

def facial_frame_sources(facial_frames: int, available: int, sample_rate: int,
                         hop_length: int, fps: float = FACIAL_FPS) -> np.ndarray:
    """
    Return, for each facial frame, the index of the model frame it takes.

    Model frame ``i`` ends at ``(i + 1) * hop / sr`` s; facial frame ``j`` is the face at
    ``j / fps`` s (:mod:`listener_head_ros.data.react2025`). Frame ``j`` takes the latest
    model frame that ended at or before ``j / fps``: ``floor(j * sr / (fps * hop)) - 1``
    (exact rational arithmetic), so it never uses audio after its own time. Frame 0 (and any
    frame before the first model frame ends) takes model frame 0; frames after the last of
    the ``available`` model frames hold the last one.
    """
    if available < 1:
        raise ValueError('need at least one model frame')
    ratio = Fraction(sample_rate) / (Fraction(fps).limit_denominator(1000) * hop_length)
    j = np.arange(facial_frames, dtype=np.int64)
    latest = (j * ratio.numerator) // ratio.denominator - 1
    return np.clip(latest, 0, available - 1)


@dataclass(frozen=True)
class GenerationConfig:
    """How :func:`predict_split` draws reactions from a model."""

    task: str = 'offline'  # 'online' (step frame by frame) or 'offline' (batched)
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    temperature: float = 1.0
    noise_correlation: Optional[float] = None  # AR(1) of the noise; None: the checkpoint's

    def __post_init__(self) -> None:
        if self.noise_correlation is not None and not 0.0 <= self.noise_correlation < 1.0:
            raise ValueError(f'noise_correlation must be in [0, 1), not '
                             f'{self.noise_correlation}')
        if self.task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, not {self.task!r}')
        if self.samples < 1 or self.seed < 0:
            raise ValueError(f'need samples >= 1 and seed >= 0, not {self.samples}, '
                             f'{self.seed}')


def facial_model(model: Any, checkpoint: str = 'the model') -> Any:
    """Return ``model`` if it is a learned model that predicts facial attributes; else raise."""
    from listener_head_ros.models.learned import TorchListenerModel
    if not isinstance(model, TorchListenerModel):
        raise ValueError(f'{checkpoint} is not a learned model: the REACT evaluation needs '
                         f'one whose targets include {FACIAL_ATTRIBUTES.name!r}')
    if FACIAL_ATTRIBUTES.name not in model.targets:
        raise ValueError(f'{checkpoint} predicts {list(model.targets)}, no '
                         f'{FACIAL_ATTRIBUTES.name!r}: it has no facial targets')
    return model


def _clip_model(model: Any, config: GenerationConfig, key: str) -> Any:
    """Return a copy of ``model`` that samples ``config.samples`` reactions, seeded per clip."""
    if not model.network.noise_dim and config.samples > 1:
        raise ValueError(f'the network {model.name} is deterministic: it gives one reaction '
                         'per input (use samples = 1)')
    seed = int(np.random.SeedSequence([config.seed, zlib.crc32(key.encode())])
               .generate_state(1)[0])
    mode = 'sample' if model.network.noise_dim else 'mean'
    correlation = (model.inference.noise_correlation if config.noise_correlation is None
                   else config.noise_correlation)
    return model.with_inference(mode=mode, num_samples=config.samples,
                                temperature=config.temperature, seed=seed,
                                noise_correlation=correlation)


def _model_streams(model: Any, audio: np.ndarray, frames: int, task: str
                   ) -> Dict[str, np.ndarray]:
    """Return each predicted stream ``(frames, S, dim)`` of ``frames`` model frames."""
    hop = model.hop_length
    if task == 'offline':
        features = feature_matrix(extract_features(audio[:frames * hop], model.feature_config))
        return model.predict(features).streams
    model.reset()
    steps = [model.step(audio[i * hop:(i + 1) * hop]).samples for i in range(frames)]
    return {name: np.stack([s[name] for s in steps]) for name in steps[0]}


def predict_dyad(model: Any, release: ReactRelease, dyad: Dyad, config: GenerationConfig
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """
    Return one dyad's ``(S, T, 25)`` attributes and ``(S, T, 58)`` coefficients (or None).

    ``T`` is the paired listener's facial frames. Coefficients come as released: training
    refuses a cache of normalised ones.
    """
    sampler = _clip_model(model, config, dyad.key)
    frames = load_attributes(dyad.path('facial-attributes', 'listener')).shape[0]
    sr, hop = model.sample_rate, model.hop_length
    audio = load_audio(dyad.path('audio', 'speaker'), sr)
    available = model_frames(frames, audio.size, sr, hop)
    if available < 1:
        raise ValueError(f'{dyad.path("audio", "speaker")}: too short for one model frame')
    streams = _model_streams(sampler, audio, available, config.task)
    sources = facial_frame_sources(frames, available, sr, hop)
    out = {name: np.ascontiguousarray(values[sources].transpose(1, 0, 2), dtype=np.float32)
           for name, values in streams.items()}
    return out[FACIAL_ATTRIBUTES.name], out.get(COEFFICIENTS.name)


def predict_split(model: Any, release: ReactRelease, split: str, config: GenerationConfig,
                  progress: Optional[Progress] = None) -> Predictions:
    """Return the model's predictions for every dyad of ``split`` (see the module docstring)."""
    facial_model(model)
    clips, attributes, coefficients = [], [], []
    for dyad in release.dyads(split):
        if progress is not None:
            progress(dyad.key)
        values, coefs = predict_dyad(model, release, dyad, config)
        clips.append(ClipEntry.of(dyad, values.shape[1]))
        attributes.append(values)
        coefficients.append(coefs)
    has_coefficients = all(c is not None for c in coefficients)
    return Predictions(clips, attributes, coefficients if has_coefficients else None,
                       FACIAL_FPS, config.task)


# -- scoring ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreConfig:
    """How :func:`score` and :func:`reference_rows` build appropriate sets and rows."""

    appropriate_size: int = 10  # the test protocol's set: the paired listener and 9 others
    appropriate_seed: int = 0
    dtw_band_seconds: Optional[float] = 2.0  # None: the full DTW (see docs/metrics.md)
    tlcc_seconds: float = 2.0
    mime_lag_seconds: float = 1.0  # the Mime row's delay of the speaker's own face
    random_seed: int = 0  # the Random row's draw of other sessions' listeners

    def __post_init__(self) -> None:
        if self.appropriate_size < 1 or self.appropriate_seed < 0 or self.random_seed < 0:
            raise ValueError('need appropriate_size >= 1 and non-negative seeds')
        if self.dtw_band_seconds is not None and not self.dtw_band_seconds > 0:
            raise ValueError(f'dtw_band_seconds must be > 0 or None, not '
                             f'{self.dtw_band_seconds}')
        if self.mime_lag_seconds < 0 or not self.tlcc_seconds > 0:
            raise ValueError('need mime_lag_seconds >= 0 and tlcc_seconds > 0')

    @property
    def dtw_band(self) -> Optional[int]:
        """Return the DTW band in facial frames (None: the full DTW)."""
        if self.dtw_band_seconds is None:
            return None
        return max(1, int(round(self.dtw_band_seconds * FACIAL_FPS)))


@dataclass
class ScoringSet:
    """The real data every row is scored against, loaded once: per input, cropped to T_n."""

    dyads: List[Dyad]
    frames: List[int]  # T_n: the shortest of the prediction, the speaker and the set
    appropriate: List[np.ndarray]  # (K_n, T_n, 25)
    appropriate_keys: List[List[str]]  # the dyad key of each appropriate listener
    speaker: List[np.ndarray]  # (T_n, 25)
    config: ScoreConfig = field(default_factory=ScoreConfig)

    @property
    def paired(self) -> List[np.ndarray]:
        """Return each input's paired listener ``(T_n, 25)`` (the appropriate set's first)."""
        return [a[0] for a in self.appropriate]


class _Attributes:
    """Load each listener or speaker attribute file once."""

    def __init__(self) -> None:
        self._cache: Dict[Path, np.ndarray] = {}

    def __call__(self, dyad: Dyad, side: str) -> np.ndarray:
        path = dyad.path('facial-attributes', side)
        if path not in self._cache:
            self._cache[path] = load_attributes(path)
        return self._cache[path]


def scoring_set(release: ReactRelease, dyads: Sequence[Dyad],
                config: Optional[ScoreConfig] = None) -> ScoringSet:
    """
    Return the appropriate sets, speaker attributes and scored lengths of ``dyads``.

    Each input is scored on ``T_n`` frames: the shortest of its paired listener (the
    prediction's length), its speaker and every listener of its appropriate set, all cropped
    to their first ``T_n`` frames.
    """
    config = config or ScoreConfig()
    load = _Attributes()
    frames, sets, keys, speakers = [], [], [], []
    for dyad in dyads:
        members = release.appropriate_set(dyad, size=config.appropriate_size,
                                          seed=config.appropriate_seed)
        listeners = [load(d, 'listener') for d in members]
        speaker = load(dyad, 'speaker')
        t = min([speaker.shape[0]] + [a.shape[0] for a in listeners])
        frames.append(t)
        sets.append(np.stack([a[:t] for a in listeners]))
        keys.append([d.key for d in members])
        speakers.append(speaker[:t])
    return ScoringSet(list(dyads), frames, sets, keys, speakers, config)


def _paired_scores(samples: List[np.ndarray], paired: List[np.ndarray]) -> Dict[str, float]:
    """Return MAE and CCC of valence and arousal against the paired listener."""
    out = {}
    for name, c in PAIRED_CHANNELS.items():
        mae = [np.mean(np.abs(s[:, :, c] - p[None, :, c]), axis=1)
               for s, p in zip(samples, paired)]
        out[f'MAE_{name}'] = float(np.mean(np.concatenate(mae)))
        with np.errstate(invalid='ignore', divide='ignore'):
            values = np.concatenate([
                ccc(s[:, :, c:c + 1], p[None, :, c:c + 1], 'corrected')[:, 0]
                for s, p in zip(samples, paired)])
        out[f'CCC_{name}'] = float(np.nanmean(values)) if np.any(np.isfinite(values)) \
            else math.nan
    return out


def score_samples(samples: Sequence[np.ndarray], data: ScoringSet,
                  sample_keys: Optional[Sequence[Sequence[str]]] = None) -> Dict[str, Any]:
    """
    Return the metric table of per-input ``(S, >= T_n, 25)`` samples: both modes and paired.

    ``sample_keys[n][s]``, when given, is the dyad key of a real sample: it is then scored
    leave-one-out, against the appropriate listeners other than that same clip.
    """
    cropped = [np.asarray(s[:, :t], dtype=np.float64) for s, t in zip(samples, data.frames)]
    allowed = None
    if sample_keys is not None:
        allowed = [np.array([[k != own for k in keys] for own in own_keys])
                   for own_keys, keys in zip(sample_keys, data.appropriate_keys)]
    table = dtw_table(cropped, data.appropriate, dtw_band=data.config.dtw_band)
    out: Dict[str, Any] = {mode: react_metrics(
        cropped, data.appropriate, data.speaker, mode, FACIAL_FPS, data.config.tlcc_seconds,
        dtw_band=data.config.dtw_band, allowed=allowed, table=table) for mode in MODES}
    out['paired'] = _paired_scores(cropped, data.paired)
    return out


def score(predictions: Predictions, release: ReactRelease,
          config: Optional[ScoreConfig] = None,
          data: Optional[ScoringSet] = None) -> Dict[str, Any]:
    """Return the metric table of ``predictions`` (matched to ``release``); see score_samples."""
    dyads = match_release(predictions, release)
    if data is None:
        data = scoring_set(release, dyads, config)
    elif [d.key for d in data.dyads] != [d.key for d in dyads]:
        raise PredictionsError('the predictions are not for the clips of the scoring set')
    return score_samples(predictions.attributes, data)


# -- reference rows ---------------------------------------------------------------------------

def _resized(reactions: np.ndarray, samples: int) -> np.ndarray:
    """Return ``samples`` reactions: those given, in order, repeated as needed."""
    return reactions[np.arange(samples) % reactions.shape[0]]


def _tiled(track: np.ndarray, frames: int) -> np.ndarray:
    """Return the first ``frames`` frames of ``track``, repeated from its start if shorter."""
    return track[np.arange(frames) % track.shape[0]]


def training_mean(release: ReactRelease, split: str = 'train') -> np.ndarray:
    """Return the mean ``(25,)`` listener attributes over every frame of ``split``."""
    total, count = np.zeros(FACIAL_ATTRIBUTES.dim), 0
    for dyad in release.dyads(split):
        values = load_attributes(dyad.path('facial-attributes', 'listener'))
        total += values.sum(axis=0, dtype=np.float64)
        count += values.shape[0]
    return total / count


@dataclass
class ReferenceRow:
    """A reference row's samples per input, and the keys of real samples (leave-one-out)."""

    samples: List[np.ndarray]  # (S, T_n, 25)
    sample_keys: Optional[List[List[str]]] = None
    note: str = ''


def reference_rows(release: ReactRelease, data: ScoringSet, samples: int,
                   train_split: str = 'train') -> Tuple[Dict[str, ReferenceRow], List[str]]:
    """
    Return the reference rows on the clips of ``data`` (each with ``samples`` samples).

    Rows and notes on rows left out (docs/metrics.md section 2.4): ``GT`` (the appropriate
    listeners, scored leave-one-out), ``Mime`` (the speaker delayed by
    ``mime_lag_seconds``), ``Random`` (listeners of other sessions of the split), ``Neutral``
    (the training split's mean listener, constant) and ``Oracle`` (the release's oracle).
    """
    config = data.config
    rows: Dict[str, ReferenceRow] = {}
    notes: List[str] = []
    rows['GT'] = ReferenceRow(
        [_resized(a, samples) for a in data.appropriate],
        [[keys[s % len(keys)] for s in range(samples)] for keys in data.appropriate_keys],
        'the appropriate listeners, each scored against the others (leave-one-out)')
    lag = int(round(config.mime_lag_seconds * FACIAL_FPS))
    rows['Mime'] = ReferenceRow(
        [np.repeat(sp[np.maximum(np.arange(sp.shape[0]) - lag, 0)][None], samples, axis=0)
         for sp in data.speaker],
        note=f'the speaker\'s own attributes {lag} frames ({config.mime_lag_seconds:g} s) later')
    random_row = _random_row(release, data, samples)
    if random_row is None:
        notes.append('Random: left out, the split has a single session')
    else:
        rows['Random'] = random_row
    if train_split in release.splits:
        mean = training_mean(release, train_split)
        rows['Neutral'] = ReferenceRow(
            [np.broadcast_to(mean, (samples, t, mean.size)) for t in data.frames],
            note=f'the {train_split} split\'s mean listener attributes, constant')
    else:
        notes.append(f'Neutral: left out, the {train_split} split was not scanned')
    oracles = [release.oracle(d) for d in data.dyads]
    if all(o is not None for o in oracles):
        rows['Oracle'] = ReferenceRow(
            [_resized(o[0][:, :t], samples) for o, t in zip(oracles, data.frames)],
            note='reactions drawn afresh from the synthetic release\'s true process')
    else:
        notes.append('Oracle: left out, the release has no oracle for these clips')
    return rows, notes


def _random_row(release: ReactRelease, data: ScoringSet, samples: int
                ) -> Optional[ReferenceRow]:
    """Return per input ``samples`` listeners of other sessions, or None if there are none."""
    load = _Attributes()
    out = []
    for n, (dyad, t) in enumerate(zip(data.dyads, data.frames)):
        others = [d for d in release.dyads(dyad.split) if d.session != dyad.session]
        if not others:
            return None
        rng = np.random.default_rng([data.config.random_seed, n])
        picked = rng.choice(len(others), size=samples, replace=len(others) < samples)
        out.append(np.stack([_tiled(load(others[int(i)], 'listener'), t) for i in picked]))
    return ReferenceRow(out, note='listeners of other sessions (repeated from their start '
                                  'when shorter)')


@dataclass
class Evaluation:
    """Every row's metric table on one set of clips, with what the report plots."""

    metrics: Dict[str, Any]  # what metrics.json holds
    data: ScoringSet
    samples: Dict[str, List[np.ndarray]]  # row -> per input (S, T, 25)


def evaluate(predicted: Dict[str, Predictions], release: ReactRelease,
             config: Optional[ScoreConfig] = None, train_split: str = 'train',
             progress: Optional[Progress] = None) -> Evaluation:
    """
    Score each set of predictions and the reference rows on the same clips.

    Every set must answer the same clips with the same S; the reference rows get that S too.
    """
    config = config or ScoreConfig()
    first = next(iter(predicted.values()))
    dyads = match_release(first, release)
    for name, other in predicted.items():
        if [c.speaker for c in other.clips] != [c.speaker for c in first.clips] \
                or other.samples != first.samples:
            raise PredictionsError(f'the {name} predictions answer other clips or have other '
                                   'samples than the first set')
    data = scoring_set(release, dyads, config)
    references, notes = reference_rows(release, data, first.samples, train_split)
    rows: Dict[str, Any] = {}
    samples: Dict[str, List[np.ndarray]] = {}
    row_notes: Dict[str, str] = {}
    for name, predictions in predicted.items():
        if progress is not None:
            progress(f'scoring {name}')
        rows[name] = score(predictions, release, config, data)
        samples[name] = list(predictions.attributes)
        row_notes[name] = f'the predictions ({predictions.task or "task unnamed"})'
    for name, row in references.items():
        if progress is not None:
            progress(f'scoring {name}')
        rows[name] = score_samples(row.samples, data, row.sample_keys)
        samples[name] = row.samples
        row_notes[name] = row.note
    notes.append('MAE and CCC of valence and arousal are against the paired listener only; '
                 'each input is scored on the shortest of its listener, speaker and '
                 'appropriate set (frames per input: '
                 f'{min(data.frames)}..{max(data.frames)})')
    metrics = {'split': dyads[0].split, 'n_inputs': len(dyads), 'samples': first.samples,
               'fps': FACIAL_FPS, 'settings': asdict(config), 'rows': rows,
               'row_notes': row_notes, 'notes': notes,
               'clips': [d.key for d in dyads]}
    return Evaluation(metrics, data, samples)
