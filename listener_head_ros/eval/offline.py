"""
Offline evaluation of a listener model on a bag: no ROS runtime, much faster than real time.

Reading.  :func:`read_bag` loads a bag written by :mod:`listener_head_ros.bags.convert` (or
recorded on a robot with the same topics) through ``rosbags``' ``AnyReader`` with the real
message types, and checks it first, so that a bad bag fails before any work starts with a
:class:`BagError` that says what is wrong: not a bag, truncated or corrupt, no audio topic, an
audio topic of another type. A bag without ``AudioInfo`` is accepted with a warning: the audio
is then decoded with the node's ``input.*`` parameters (S16LE, 16 kHz, mono by default), exactly
as the listener node does until an ``AudioInfo`` arrives.

Running.  :func:`simulate_node` runs the model through the node's own real-time loop: the
payloads go through the same :class:`~listener_head_ros.audio.stream_input.AudioStreamInput`
(decoding, channel selection, resampling, ring buffer) and the same
:class:`~listener_head_ros.engine.ListenerEngine` (hop stepping, drop policy, pose shaping,
neutral return), built from the same parameter file. Ticks are simulated on bag time at the
node's ``frame_rate``, one period after the first message; before a tick at time ``t`` every
audio message stamped ``<= t`` has been pushed (it would have arrived). This is the node in
ideal conditions: every tick on time, no message late, so no frame is dropped. The poses are
stamped with the tick time, as the node stamps its ``HeadPose`` with its (sim) clock, so the
replay trace and this one are scored by the same code.

Scoring.  :func:`score_trace` scores per listener sample: the turns on ``/speaker_turn``
whose speaker is not the listener (the marker wearer). The poses stamped inside a turn are
paired with the ground truth interpolated linearly at their stamps; a turn whose truth has a
gap longer than ``max_gap_seconds`` (the NaN policy of training) or does not cover the turn is
left out and counted. Metrics are those of :mod:`listener_head_ros.eval.head_metrics` (per-axis
MAE in degrees and Pearson's r, means over utterances), with the neutral-pose baseline.

REACT.  For a model that draws several samples per frame (``TorchListenerModel`` in
``'sample'`` mode, ``last_samples``), the REACT suite is computed on the head angles: D = 3
(roll, pitch, yaw in degrees), windows of ``react_window_s`` cut from each listener turn, the
ground truth as the single appropriate reaction (so FRC and FRD measure closeness to the one
real reaction; FRD uses one DTW group of weight 1). FRSyn needs the speaker's facial
attributes, which a head-only bag does not have, so it is not computed; neither are the 25-d
facial-attribute versions of the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
import json
import math
from pathlib import Path
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from listener_head_ros.audio.pcm import AudioFormat, parse_channel_mix
from listener_head_ros.audio.stream_input import AudioStreamInput
from listener_head_ros.engine import EngineConfig, ListenerEngine
from listener_head_ros.eval.head_metrics import (
    aggregate, HeadMetrics, neutral_baseline, utterance_metrics, UtteranceMetrics)
from listener_head_ros.eval.react_metrics import react_metrics
from listener_head_ros.models.base import StreamingListenerModel
from listener_head_ros.models.checkpoint import EMBEDDED_MODEL, load_checkpoint
from listener_head_ros.models.prosodic import ProsodicListener, ProsodicListenerConfig
from listener_head_ros.motion.pose_shaping import MotionLimits

AUDIO_TOPIC = '/audio/audio'
AUDIO_INFO_TOPIC = '/audio/audio_info'
TRUTH_TOPIC = '/listener/head_pose_truth'
TURN_TOPIC = '/speaker_turn'
AUDIO_TYPES = ('audio_common_msgs/msg/AudioData', 'audio_common_msgs/msg/AudioDataStamped')


class BagError(RuntimeError):
    """A bag cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Turn:
    """One transcribed utterance, in bag seconds."""

    utterance: str
    speaker: str
    listener: str
    start: float
    end: float

    @property
    def is_listener_sample(self) -> bool:
        """Return True when the listener listens (the other actor speaks)."""
        return self.speaker != self.listener


@dataclass
class BagContents:
    """What an evaluation needs from a bag (times in seconds of bag time)."""

    path: Path
    audio_stamps: np.ndarray  # (n,) seconds
    audio_payloads: List[bytes]
    audio_format: Optional[AudioFormat]  # None: the bag has no AudioInfo
    truth_times: np.ndarray  # (m,) seconds
    truth: np.ndarray  # (m, 3) radians roll, pitch, yaw
    turns: List[Turn]
    start: float  # bag start, seconds
    end: float  # bag end, seconds
    warnings: List[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Return the bag's duration in seconds."""
        return self.end - self.start

    @property
    def audio_seconds(self) -> float:
        """Return the duration of the audio, from the bag start to the last audio stamp."""
        return float(self.audio_stamps[-1] - self.start) if self.audio_stamps.size else 0.0


def _seconds(ns: int) -> float:
    return ns * 1e-9


def read_bag(path: Path | str, audio_topic: str = AUDIO_TOPIC,
             audio_info_topic: str = AUDIO_INFO_TOPIC, truth_topic: str = TRUTH_TOPIC,
             turn_topic: str = TURN_TOPIC) -> BagContents:
    """Read and check a bag; raise :class:`BagError` with a clear message if it is unusable."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from listener_head_ros.bags.typestore import listener_typestore
    path = Path(path)
    if not path.exists():
        raise BagError(f'bag {path} does not exist')
    contents = BagContents(path, np.zeros(0), [], None, np.zeros(0), np.zeros((0, 3)), [],
                           0.0, 0.0)
    read = 0
    try:
        with AnyReader([path], default_typestore=listener_typestore()) as reader:
            topics = reader.topics
            if audio_topic not in topics:
                raise BagError(f'bag {path} has no audio topic {audio_topic} (topics: '
                               f'{", ".join(sorted(topics)) or "none"})')
            audio_type = topics[audio_topic].msgtype
            if audio_type not in AUDIO_TYPES:
                raise BagError(f'bag {path}: topic {audio_topic} has type {audio_type}, '
                               f'expected {AUDIO_TYPES[0]} (or {AUDIO_TYPES[1]})')
            contents.start, contents.end = (_seconds(reader.start_time),
                                            _seconds(reader.end_time))
            wanted = [c for c in reader.connections
                      if c.topic in (audio_topic, audio_info_topic, truth_topic, turn_topic)]
            stamps, truth_t, truth = [], [], []
            for connection, ns, raw in reader.messages(connections=wanted):
                msg = reader.deserialize(raw, connection.msgtype)
                read += 1
                topic = connection.topic
                if topic == audio_topic:
                    data = msg.audio.data if connection.msgtype == AUDIO_TYPES[1] else msg.data
                    stamps.append(_seconds(ns))
                    contents.audio_payloads.append(np.asarray(data, dtype=np.uint8).tobytes())
                elif topic == audio_info_topic and contents.audio_format is None:
                    contents.audio_format = AudioFormat(
                        channels=int(msg.channels), sample_rate=int(msg.sample_rate),
                        sample_format=msg.sample_format or 'S16LE',
                        coding_format=msg.coding_format)
                elif topic == truth_topic:
                    truth_t.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
                    truth.append((msg.roll, msg.pitch, msg.yaw))
                elif topic == turn_topic:
                    _add_turn_event(contents, ns, msg.data)
    except BagError:
        raise
    except (AnyReaderError, OSError, ValueError, KeyError, EOFError) as error:
        where = f' after {read} messages' if read else ''
        raise BagError(f'cannot read bag {path}{where}: {error} (is it truncated or corrupt? '
                       'a bag cut while recording must be reindexed first)') from error
    except Exception as error:  # noqa: B902 - storage back ends raise their own error types
        where = f' after {read} messages' if read else ''
        raise BagError(f'cannot read bag {path}{where}: {type(error).__name__}: {error} '
                       '(is it truncated or corrupt?)') from error
    contents.audio_stamps = np.asarray(stamps, dtype=np.float64)
    contents.truth_times = np.asarray(truth_t, dtype=np.float64)
    contents.truth = np.asarray(truth, dtype=np.float64).reshape(-1, 3)
    if not contents.audio_payloads:
        raise BagError(f'bag {path}: topic {audio_topic} holds no message')
    if contents.audio_format is None:
        contents.warnings.append(
            f'no AudioInfo on {audio_info_topic}: the audio is decoded with the node\'s '
            'input.* parameters (S16LE, 16 kHz, mono unless the parameter file says otherwise)')
    if not contents.truth_times.size:
        contents.warnings.append(f'no ground truth on {truth_topic}: nothing can be scored')
    if not any(t.is_listener_sample for t in contents.turns):
        contents.warnings.append(f'no listener turn on {turn_topic}: nothing can be scored')
    return contents


def _add_turn_event(contents: BagContents, ns: int, text: str) -> None:
    """Add the turn of a ``start`` event; the message's bag time is the turn's start."""
    try:
        event = json.loads(text)
        if event.get('event') != 'start':
            return
        start = _seconds(ns)
        length = float(event['end']) - float(event['start'])
        contents.turns.append(Turn(str(event['utterance']), str(event['speaker']),
                                   str(event['listener']), start, start + length))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        contents.warnings.append(f'ignored a malformed speaker turn event: {text[:80]!r}')


# Parameters ---------------------------------------------------------------------------------


def default_params_file() -> Path:
    """Return ``config/listener.yaml`` of the install space, else of the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory('listener_head_ros'))
    except (ImportError, LookupError, ValueError):
        share = Path(__file__).resolve().parents[2]
    return share / 'config' / 'listener.yaml'


def load_listener_params(params_file: Optional[Path] = None) -> Dict[str, Any]:
    """Return the listener's parameters of a ROS parameter file, flattened to dotted names."""
    path = Path(params_file) if params_file else default_params_file()
    data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    section = next((v for k, v in data.items() if k.split('/')[-1] == 'listener'), None)
    if not isinstance(section, dict) or 'ros__parameters' not in section:
        raise ValueError(f'{path} has no listener ros__parameters section')
    flat: Dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f'{prefix}{key}.' if isinstance(value, dict) else f'{prefix}{key}', value)
        else:
            flat[prefix] = node
    for key, value in section['ros__parameters'].items():
        walk(f'{key}.' if isinstance(value, dict) else key, value)
    return flat


def engine_config_from_params(params: Dict[str, Any]) -> EngineConfig:
    """Build the engine settings from the parameters as ``ListenerNode.on_configure`` does."""
    limits = MotionLimits(**{k: float(params[f'limits.{k}']) for k in (
        'roll_min', 'roll_max', 'pitch_min', 'pitch_max', 'yaw_min', 'yaw_max',
        'max_angular_velocity')})
    return EngineConfig(
        tick_rate=float(params['frame_rate']),
        max_frames_per_tick=int(params['max_frames_per_tick']),
        neutral_return_timeout=float(params['neutral_return_timeout']),
        neutral_return_time=float(params['neutral_return_time']),
        smoothing_time_constant=float(params['smoothing_time_constant']),
        limits=limits)


def build_model(model: str, params: Dict[str, Any], device: str = 'cpu'
                ) -> StreamingListenerModel:
    """Build the model as the node does: ``'prosodic'`` from ``prosodic.*``, else a checkpoint."""
    frame_rate = float(params['frame_rate'])
    if model == EMBEDDED_MODEL:
        settings = {f.name: params[f'prosodic.{f.name}'] for f in fields(ProsodicListenerConfig)
                    if f'prosodic.{f.name}' in params}
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        return ProsodicListener(ProsodicListenerConfig(**settings), frame_rate=frame_rate)
    return load_checkpoint(model, frame_rate=frame_rate, device=device)


def fallback_format(params: Dict[str, Any]) -> AudioFormat:
    """Return the format the node assumes until AudioInfo arrives (``input.*``)."""
    return AudioFormat(channels=int(params['input.channels']),
                       sample_rate=int(params['input.sample_rate']),
                       sample_format=str(params['input.sample_format']))


# Traces -------------------------------------------------------------------------------------


@dataclass
class Trace:
    """What a listener published over a bag: poses at their stamps, events and counters."""

    times: np.ndarray  # (n,) seconds of bag time (header stamps)
    poses: np.ndarray  # (n, 3) radians
    backchannels: List[Tuple[float, str, float, float]]  # (time, kind, intensity, duration)
    frames_stepped: int
    frames_dropped: int
    samples: Optional[np.ndarray] = None  # (n, S, 3) radians for multi-sample models
    latency: Dict[str, Any] = field(default_factory=dict)  # replay only
    notes: List[str] = field(default_factory=list)


def simulate_node(contents: BagContents, model: StreamingListenerModel,
                  params: Dict[str, Any],
                  progress: Optional[Callable[[float], None]] = None) -> Trace:
    """Run ``model`` through the node's loop on the bag's audio (see the module docstring)."""
    config = engine_config_from_params(params)
    audio_input = AudioStreamInput(model.sample_rate, float(params['buffer_seconds']),
                                   fallback_format(params),
                                   parse_channel_mix(params['input.channel']))
    if contents.audio_format is not None:
        error = audio_input.set_format(contents.audio_format)
        if error:
            raise BagError(f'bag {contents.path}: AudioInfo {contents.audio_format}: {error}')
    engine = ListenerEngine(model, audio_input.buffer, config)
    engine.reset()
    period_ns = int(1e9 / config.tick_rate)  # the integer period of the node's rcl timer
    start_ns = int(round(contents.start * 1e9))
    end_ns = int(round(contents.end * 1e9))
    stamps_ns = np.round(contents.audio_stamps * 1e9).astype(np.int64)
    multi = getattr(model, 'last_samples', None) is not None and np.shape(
        model.last_samples)[0] > 1
    times, poses, samples, events, next_audio = [], [], [], [], 0
    tick_ns, ticks = start_ns + period_ns, 0
    while tick_ns <= end_ns:
        while next_audio < stamps_ns.size and stamps_ns[next_audio] <= tick_ns:
            audio_input.push(contents.audio_payloads[next_audio])
            next_audio += 1
        output = engine.tick()
        t = tick_ns * 1e-9
        times.append(t)
        poses.append(output.frame.pose)
        if multi:
            samples.append(np.array(model.last_samples, dtype=np.float64))
        events.extend((t, e.kind, float(e.intensity), float(e.duration))
                      for e in output.frame.backchannels)
        tick_ns += period_ns
        ticks += 1
        if progress is not None and ticks % 30 == 0:
            progress(t - contents.start)
    errors = audio_input.stats.malformed_messages + audio_input.stats.rejected_messages
    notes = [f'{errors} audio message(s) refused: {audio_input.last_error}'] if errors else []
    return Trace(np.asarray(times), np.asarray(poses, dtype=np.float64).reshape(-1, 3), events,
                 engine.frames_stepped, engine.frames_dropped,
                 np.asarray(samples) if multi else None, notes=notes)


# Scoring ------------------------------------------------------------------------------------


@dataclass
class UtteranceScore:
    """The score of one listener turn."""

    turn: Turn
    metrics: UtteranceMetrics
    truth: np.ndarray  # (T, 3) radians at the trace stamps
    pred: np.ndarray  # (T, 3)
    times: np.ndarray  # (T,)
    samples: Optional[np.ndarray] = None  # (T, S, 3)


@dataclass
class EvalResult:
    """Metrics of one trace on one bag."""

    name: str  # 'offline' or 'replay'
    trace: Trace
    utterances: List[UtteranceScore]
    dropped_turns: Dict[str, int]
    head: Optional[HeadMetrics]
    baseline: Optional[HeadMetrics]
    react: Dict[str, Any]
    wall_seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Return audio seconds processed per wall second (NaN when not timed)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary."""
        rtf = self.real_time_factor
        return {
            'head': self.head.to_dict() if self.head else None,
            'neutral_baseline': self.baseline.to_dict() if self.baseline else None,
            'per_utterance': {u.turn.utterance: u.metrics.to_dict() for u in self.utterances},
            'dropped_turns': dict(self.dropped_turns),
            'react': self.react,
            'frames_stepped': self.trace.frames_stepped,
            'frames_dropped': self.trace.frames_dropped,
            'poses': int(self.trace.times.size),
            'backchannels': len(self.trace.backchannels),
            'latency': {k: v for k, v in self.trace.latency.items()
                        if not k.endswith('_samples_s')},
            'notes': list(self.trace.notes),
            'wall_seconds': self.wall_seconds,
            'audio_seconds': self.audio_seconds,
            'real_time_factor': rtf if math.isfinite(rtf) else None,
        }


def truth_at(contents: BagContents, times: np.ndarray, max_gap_seconds: float = 0.25,
             truth_period: Optional[float] = None) -> Tuple[Optional[np.ndarray], str]:
    """
    Return the ground truth interpolated at ``times`` and ``''``, or None and a reason.

    The reason is ``'outside_truth'`` when ``times`` leave the truth's span and ``'nan_gap'``
    when a bracketing pair of truth messages is more than ``max_gap_seconds`` further apart
    than the truth's period (the NaN policy of training).
    """
    tt = contents.truth_times
    if tt.size < 2 or times[0] < tt[0] or times[-1] > tt[-1]:
        return None, 'outside_truth'
    period = truth_period if truth_period is not None else float(np.median(np.diff(tt)))
    k = np.clip(np.searchsorted(tt, times, side='right'), 1, tt.size - 1)
    if np.any((tt[k] - tt[k - 1]) - period > max_gap_seconds + 1e-9):
        return None, 'nan_gap'
    return np.stack([np.interp(times, tt, contents.truth[:, a]) for a in range(3)], axis=1), ''


def score_trace(name: str, trace: Trace, contents: BagContents, max_gap_seconds: float = 0.25,
                react_window_s: float = 2.0) -> EvalResult:
    """Score a trace per listener turn (see the module docstring)."""
    scores: List[UtteranceScore] = []
    dropped: Dict[str, int] = {}
    for turn in (t for t in contents.turns if t.is_listener_sample):
        inside = (trace.times >= turn.start) & (trace.times <= turn.end)
        reason = '' if np.count_nonzero(inside) >= 2 else 'no_poses'
        truth = None
        if not reason:
            truth, reason = truth_at(contents, trace.times[inside], max_gap_seconds)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        pred = trace.poses[inside]
        scores.append(UtteranceScore(
            turn, utterance_metrics(pred, truth), truth, pred, trace.times[inside],
            trace.samples[inside] if trace.samples is not None else None))
    head = aggregate([s.metrics for s in scores]) if scores else None
    baseline = neutral_baseline([s.truth for s in scores]) if scores else None
    return EvalResult(name, trace, scores, dropped, head, baseline,
                      react_on_heads(scores, trace, react_window_s))


def react_on_heads(scores: Sequence[UtteranceScore], trace: Trace,
                   window_s: float = 2.0) -> Dict[str, Any]:
    """Return the REACT suite on head angles for multi-sample traces, else why it is absent."""
    if trace.samples is None:
        return {'computed': False,
                'reason': 'the model gives one sample per frame; the REACT suite needs several'}
    rate = (trace.times.size - 1) / max(trace.times[-1] - trace.times[0], 1e-9)
    window = max(2, int(round(window_s * rate)))
    preds, truths = [], []
    for s in scores:
        for first in range(0, s.times.size - window + 1, window):
            preds.append(np.degrees(np.moveaxis(s.samples[first:first + window], 1, 0)))
            truths.append(np.degrees(s.truth[first:first + window])[None])
    if len(preds) < 2:
        return {'computed': False, 'reason': f'fewer than two {window_s} s windows'}
    out: Dict[str, Any] = {'computed': True, 'attributes': 'head roll, pitch, yaw (degrees)',
                           'window_frames': window,
                           'not_computed': 'FRSyn (no speaker attributes in a head-only bag); '
                                           '25-d facial-attribute versions'}
    for mode in ('challenge', 'corrected'):
        result = react_metrics(np.stack(preds), truths, None, mode=mode, fps=rate,
                               dtw_groups=((0, 3, 1.0),))
        out[mode] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in result.items()}
    return out


def evaluate_offline(contents: BagContents, model: str = EMBEDDED_MODEL,
                     params_file: Optional[Path] = None, device: str = 'cpu',
                     progress: Optional[Callable[[float], None]] = None) -> EvalResult:
    """Run and score ``model`` on a bag offline; time it."""
    params = load_listener_params(params_file)
    listener = build_model(model, params, device)
    start = time.perf_counter()
    trace = simulate_node(contents, listener, params, progress)
    result = score_trace('offline', trace, contents)
    result.wall_seconds = time.perf_counter() - start
    result.audio_seconds = contents.audio_seconds
    return result
