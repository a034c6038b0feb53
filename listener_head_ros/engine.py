"""
The real-time listener loop without ROS: buffered audio in, one safe output frame per tick.

The listener node calls :meth:`ListenerEngine.tick` from its timer. Each tick steps the model on
the complete hops that arrived since the last tick, as many as its compute budget allows (one
frame period in the node): hops left over wait for the next tick, which catches up. Only audio
older than ``max_latency`` is dropped, whole hops at a time, and each drop is counted by its
cause: inference that cannot keep up (a model step takes longer than the audio it consumes), or
else audio that arrived in bursts longer than ``max_latency``. The pose is then shaped so that
it is finite, inside the limits and under the speed limit (and low-passed, for a rule-based
head). When audio stops for longer than ``neutral_return_timeout`` the head eases back to
neutral and the face relaxes.

One consistent reaction: a generative model draws several reactions (samples) per frame; the
robot follows one of them, the same from frame to frame, never switching between samples
mid-turn (:class:`ReactionPolicy`). With ``reaction_redraw: turn`` it draws another, from a
generator seeded by ``reaction_seed``, at each of the speaker's turn onsets: speech (a hop
louder than ``turn_speech_db``) after at least ``turn_pause`` of silence (quieter hops, or no
audio at all). The engine decides from the audio it steps the model on, so the node and offline
simulation switch at the same hops.

Live transcripts. A recognition result that arrives while the engine runs
(:meth:`ListenerEngine.add_live_transcript`, from another thread than the tick) is stamped with
the stream time of the audio received by then: the end of the last stepped hop plus the audio
still buffered. It reaches the context of the first step whose hop ends at or after that time,
so a backlog of hops stepped in one tick never sees text from the future. At most
:data:`MAX_PENDING_TRANSCRIPTS` wait (the oldest beyond are dropped), each text keeps its last
:data:`MAX_TRANSCRIPT_CHARS` characters, an empty text is ignored; each case is counted.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, fields, replace
import math
import threading
import time
from typing import List, Optional

import numpy as np

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.models.base import (
    BackchannelEvent, ListenerFrame, StepContext, StreamingListenerModel, TranscriptEvent)
from listener_head_ros.motion.pose_shaping import MotionLimits, PoseShaper
from listener_head_ros.schema import group, setting
from listener_head_ros.streams import HEAD, PREDICTED

MAX_PENDING_TRANSCRIPTS = 64
"""Most transcript events waiting for their step; beyond it the oldest are dropped (counted)."""
MAX_TRANSCRIPT_CHARS = 2000
"""Longest text of one transcript event: a longer one keeps its last characters (counted)."""

REACTION_REDRAWS = ('never', 'turn')
"""When the robot draws another of a generative model's sampled reactions: never, or per turn."""


@dataclass(frozen=True)
class EngineConfig:
    """Timing, catch-up and output-shaping settings of the real-time loop."""

    frame_rate: float = setting(30.0, 'Model frames and published poses per second, Hz.',
                                (1.0, 200.0))
    max_latency: float = setting(
        0.5, 'Most audio, s, that may wait for the model: older whole frames are dropped and '
        'counted, so the head lags the speaker by at most this much.', (0.01, 10.0))
    neutral_return_timeout: float = setting(
        1.0, 'Seconds without audio before the head eases back to neutral.', (0.05, 60.0))
    neutral_return_time: float = setting(1.0, 'Duration of the ease back to neutral, s.',
                                         (0.05, 10.0))
    smoothing_time_constant: float = setting(
        0.08, 'Low-pass time constant on a rule-based pose (the embedded model), s. A model '
        'that predicts the head is not smoothed: it learned the timing of real motion.',
        (0.0, 5.0))
    face_relax_time_constant: float = setting(
        0.3, 'Time constant of the face relaxing to neutral without audio, s.', (0.01, 10.0))
    handover_time: float = setting(
        0.4, 'Cross-fade between the listening and the speaking motion, s; the robot counts as '
        'speaking this long after its last own audio.', (0.01, 5.0))
    limits: MotionLimits = group(MotionLimits, 'Head angle and speed limits.')
    reaction_redraw: str = setting(
        'never', "Which of a generative model's sampled reactions the robot follows: 'never' "
        "keeps sample 0 throughout; 'turn' draws another (seeded) at each speaker turn onset.")
    turn_pause: float = setting(
        1.0, 'Silence, s, after which speech starts a new speaker turn (reaction_redraw: turn).',
        (0.05, 60.0))
    turn_speech_db: float = setting(
        -45.0, 'Level of a hop, dBFS, above which the speaker counts as speaking (turn onsets).',
        (-120.0, 0.0))
    reaction_seed: int = setting(0, 'Seed of the reactions drawn at turn onsets.',
                                 (0, 2 ** 31 - 1))

    def __post_init__(self) -> None:
        if not (math.isfinite(self.frame_rate) and self.frame_rate > 0):
            raise ValueError('frame_rate must be a positive number of Hz')
        if self.reaction_redraw not in REACTION_REDRAWS:
            raise ValueError(f'reaction_redraw must be one of {", ".join(REACTION_REDRAWS)}, '
                             f'not {self.reaction_redraw!r}')
        for name in ('max_latency', 'neutral_return_timeout', 'face_relax_time_constant'):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f'{name} must be positive')


# The settings that a running engine can take without a restart (the node applies them live).
LIVE_SETTINGS = ('max_latency', 'neutral_return_timeout', 'neutral_return_time',
                 'smoothing_time_constant', 'face_relax_time_constant', 'handover_time')


@dataclass(frozen=True)
class TickOutput:
    """What one tick produced: the safe frame to publish and how it was obtained."""

    frame: ListenerFrame  # shaped pose; backchannels of every frame stepped in this tick
    angular_velocity: np.ndarray  # (3,) rad/s of roll, pitch, yaw
    state: str  # 'listening', 'holding', 'neutral', 'speaking' or 'robot_speaking'
    frames_stepped: int
    frames_dropped: int
    frames_deferred: int  # complete hops left for the next tick: the compute budget ran out
    compute_seconds: float  # wall time of the tick, waits for the GIL included
    cpu_seconds: float  # CPU time of the ticking thread


class ReactionPolicy:
    """
    Choose which sampled reaction the robot follows, and draw another at speaker turn onsets.

    :meth:`hear` takes each hop the model steps on, :meth:`wait` the time that passes without
    audio. A hop at least ``turn_speech_db`` loud after at least ``turn_pause`` of silence is
    a turn onset (the first speech too); with ``reaction_redraw: turn`` and more than one
    sample, :attr:`reaction` then becomes another sample, drawn uniformly from the others by a
    generator seeded with ``reaction_seed`` at :meth:`reset`, so a replay draws the same ones.
    """

    def __init__(self, config: EngineConfig, num_samples: int) -> None:
        self.config = config
        self.num_samples = int(num_samples)
        self.reset()

    def reset(self) -> None:
        """Follow sample 0 again, forget the silence and reseed the draws."""
        self.reaction = 0
        self.turns = 0  # turn onsets heard
        self._rng = np.random.default_rng(self.config.reaction_seed)
        self._silence = math.inf

    def wait(self, seconds: float) -> None:
        """Count ``seconds`` without audio as silence."""
        self._silence += seconds

    def hear(self, samples: np.ndarray, seconds: float) -> bool:
        """Take one hop of ``seconds``; tell whether it starts a turn (after updating the draw)."""
        power = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
        if 10.0 * math.log10(power + 1e-20) < self.config.turn_speech_db:
            self._silence += seconds
            return False
        onset = self._silence >= self.config.turn_pause
        self._silence = 0.0
        if onset:
            self.turns += 1
            if self.config.reaction_redraw == 'turn' and self.num_samples > 1:
                other = int(self._rng.integers(self.num_samples - 1))
                self.reaction = other + (other >= self.reaction)
        return onset


class ListenerEngine:
    """
    Step a streaming listener model from a ring buffer and shape its output, once per tick.

    A generative model (``num_samples > 1``) must let the engine pick the reaction it follows,
    through ``select_reaction(index)`` (as
    :class:`~listener_head_ros.models.learned.TorchListenerModel` does).
    """

    def __init__(self, model: StreamingListenerModel, buffer: AudioRingBuffer,
                 config: Optional[EngineConfig] = None, *,
                 speaker: Optional[StreamingListenerModel] = None,
                 robot_buffer: Optional[AudioRingBuffer] = None) -> None:
        if (speaker is None) != (robot_buffer is None):
            raise ValueError('a speaking model needs a buffer of the robot audio, and back')
        self.model = model
        self.buffer = buffer
        self.speaker = speaker  # steps on the robot's own speech, and drives the head then
        self.robot_buffer = robot_buffer
        self.config = config or EngineConfig()
        self.shaper = PoseShaper(self.config.limits, self.smoothing_time_constant,
                                 self.config.neutral_return_time)
        self.frames_stepped = 0
        self.speaking_frames_stepped = 0  # hops of the robot's own speech
        self.speaking_frames_dropped = 0  # of the robot's speech, older than max_latency
        self.frames_dropped_burst = 0  # older than max_latency, inference keeping up: bursts
        self.frames_dropped_slow = 0  # older than max_latency, steps slower than real time
        self.ticks_over_budget = 0  # ticks that left complete hops for the next one
        self.nonfinite_frames = 0  # model frames with a NaN or infinite value
        self.robot_speaking = False
        self.time = 0.0  # s of stream time: the end of the last hop stepped
        self.transcripts_received = 0  # results handed in (live or not), ignored ones too
        self.transcripts_delivered = 0  # events handed to a model step
        self.transcripts_dropped = 0  # the oldest pending, beyond MAX_PENDING_TRANSCRIPTS
        self.transcripts_truncated = 0  # texts cut to MAX_TRANSCRIPT_CHARS
        self.transcripts_ignored = 0  # live results with an empty text
        # Guards the pending events and keeps the stream clock (time + buffered audio) coherent
        # with the tick; held only to read, drop or count, never during a model step.
        self._clock = threading.Lock()
        self._transcripts: collections.deque = collections.deque()
        self._period = 1.0 / self.config.frame_rate
        self._last_frame = ListenerFrame.neutral()
        self._seconds_without_audio = math.inf
        self._step_seconds = 0.0  # running estimate of one model step's wall time
        self._speaking_frame = ListenerFrame.neutral()
        self._seconds_without_robot_audio = math.inf
        self.speaking_weight = 0.0  # 0 listening .. 1 speaking: the cross-fade of the head
        if model.num_samples > 1 and not callable(getattr(model, 'select_reaction', None)):
            raise ValueError(f'model {model.name} draws {model.num_samples} reactions but has '
                             'no select_reaction(index): the robot could not follow one')
        self.reactions = ReactionPolicy(self.config, model.num_samples)
        self._follow_reaction()

    @property
    def reaction(self) -> int:
        """Return the index of the sampled reaction the robot follows (0 for one sample)."""
        return self.reactions.reaction

    def _follow_reaction(self) -> None:
        """Let the model drive its frames with the policy's reaction."""
        if self.model.num_samples > 1:
            self.model.select_reaction(self.reactions.reaction)

    @property
    def frames_dropped(self) -> int:
        """Return every frame dropped so far, whatever the cause."""
        return self.frames_dropped_burst + self.frames_dropped_slow

    @property
    def max_backlog_hops(self) -> int:
        """Return the most complete hops that may wait for the model (``max_latency``)."""
        return max(1, int(self.config.max_latency / self._hop_seconds + 1e-9))

    @property
    def slower_than_real_time(self) -> bool:
        """Tell whether a model step takes longer than the audio it consumes (recently)."""
        return self._step_seconds > self._hop_seconds

    @property
    def _hop_seconds(self) -> float:
        return self.model.hop_length / self.model.sample_rate

    @property
    def smoothing_time_constant(self) -> float:
        """
        Return the low-pass applied to the model's pose: the setting for a rule, else 0.

        A learned head was trained and scored on the timing of real motion; a low-pass adds
        its time constant of lag to every movement (80 ms raised even the planted motion's
        MAE by 72 % on the synthetic corpus), while the speed limit and the angle limits still
        bound what is published.
        """
        if self.model.outputs.get(HEAD.name) == PREDICTED:
            return 0.0
        return self.config.smoothing_time_constant

    def reset(self) -> None:
        """Forget model state, buffered audio and counters; put the head at neutral."""
        self.model.reset()
        self.buffer.clear()
        if self.speaker is not None:
            self.speaker.reset()
            self.robot_buffer.clear()
        self.shaper.reset()
        self.frames_stepped = 0
        self.speaking_frames_stepped = 0
        self.speaking_frames_dropped = 0
        self._speaking_frame = ListenerFrame.neutral()
        self._seconds_without_robot_audio = math.inf
        self.speaking_weight = 0.0
        self.frames_dropped_burst = 0
        self.frames_dropped_slow = 0
        self.ticks_over_budget = 0
        self.nonfinite_frames = 0
        with self._clock:
            self.time = 0.0
            self._transcripts.clear()
            self.transcripts_received = self.transcripts_delivered = 0
            self.transcripts_dropped = self.transcripts_truncated = 0
            self.transcripts_ignored = 0
        self._last_frame = ListenerFrame.neutral()
        self._seconds_without_audio = math.inf
        self._step_seconds = 0.0
        self.reactions.reset()
        self._follow_reaction()

    def update_config(self, config: EngineConfig) -> None:
        """Take a new config that changes only :data:`LIVE_SETTINGS`; the head keeps its pose."""
        changed = {f.name for f in fields(EngineConfig)
                   if getattr(config, f.name) != getattr(self.config, f.name)}
        frozen = sorted(changed - set(LIVE_SETTINGS))
        if frozen:
            raise ValueError(f'{", ".join(frozen)} cannot change while the engine runs')
        self.config = config
        self.shaper.smoothing_time_constant = self.smoothing_time_constant
        self.shaper.neutral_return_time = config.neutral_return_time

    def set_robot_speaking(self, speaking: bool) -> None:
        """
        Tell whether the robot is talking: no backchannel and the face relaxes.

        The head then follows the speaking model when there is one, else it eases to neutral.
        """
        self.robot_speaking = bool(speaking)

    def add_transcript(self, event: TranscriptEvent) -> None:
        """Queue a recognition result for the first step whose hop ends at or after its time."""
        with self._clock:
            self._queue(event)

    def add_live_transcript(self, text: str, *, final: bool = True,
                            confidence: float = 1.0) -> Optional[TranscriptEvent]:
        """
        Stamp a result arriving now with the stream time of the audio received, and queue it.

        Thread-safe against :meth:`tick`. Returns the event queued, or None for an empty text
        (ignored and counted).
        """
        text = text.strip()
        with self._clock:
            if not text:
                self.transcripts_received += 1
                self.transcripts_ignored += 1
                return None
            received = self.time + self.buffer.available / self.model.sample_rate
            event = TranscriptEvent(time=received, text=text, final=final,
                                    confidence=confidence)
            return self._queue(event)

    def _queue(self, event: TranscriptEvent) -> TranscriptEvent:
        """Cap the text and queue the event, dropping the oldest beyond the limit (locked)."""
        if len(event.text) > MAX_TRANSCRIPT_CHARS:
            event = replace(event, text=event.text[-MAX_TRANSCRIPT_CHARS:])
            self.transcripts_truncated += 1
        self.transcripts_received += 1
        self._transcripts.append(event)
        while len(self._transcripts) > MAX_PENDING_TRANSCRIPTS:
            self._transcripts.popleft()
            self.transcripts_dropped += 1
        return event

    @property
    def pending_transcripts(self) -> int:
        """Return how many transcript events wait for their step."""
        with self._clock:
            return len(self._transcripts)

    def warm_up(self) -> None:
        """Run the model once on silence and reset it, so the first real tick is not slow."""
        for model in filter(None, (self.model, self.speaker)):
            model.step(np.zeros(model.hop_length, dtype=np.float32))
            model.reset()

    def tick(self, budget: Optional[float] = None) -> TickOutput:
        """
        Step the model on the buffered complete hops and return the frame to publish now.

        ``budget`` is the wall time, s, the tick may spend stepping (the node gives one frame
        period); the tick always steps at least one hop, and stops before a step that would
        overrun it. None steps every hop, as offline simulation's ideal node does.
        """
        start, cpu_start = time.perf_counter(), time.thread_time()
        voiced = self._step_speaker()
        speaking = self.robot_speaking or voiced
        hop = self.model.hop_length
        with self._clock:
            dropped = self.buffer.drop_excess_hops(hop, self.max_backlog_hops)
            if dropped:
                self._advance_pending(dropped * self._hop_seconds)
        if self.slower_than_real_time:
            self.frames_dropped_slow += dropped
        else:
            self.frames_dropped_burst += dropped
        events: List[BackchannelEvent] = []
        stepped = 0
        while self.buffer.available >= hop and (
                budget is None or stepped == 0
                or time.perf_counter() - start + self._step_seconds <= budget):
            step_start = time.perf_counter()
            self._step(events)
            self._step_seconds = _running_mean(self._step_seconds,
                                               time.perf_counter() - step_start)
            stepped += 1
        deferred = self.buffer.available // hop
        self.ticks_over_budget += deferred > 0
        self.frames_stepped += stepped
        if stepped:
            self._seconds_without_audio = 0.0
        else:
            self._seconds_without_audio += self._period
            self.reactions.wait(self._period)
        if voiced:
            state, target, events = 'speaking', self._last_frame.pose, []
        elif speaking:
            state, target, events = 'robot_speaking', None, []
        elif self._seconds_without_audio <= self.config.neutral_return_timeout:
            state = 'listening' if stepped else 'holding'
            target = self._last_frame.pose
        else:
            state, target = 'neutral', None
        if state in ('neutral', 'robot_speaking', 'speaking'):
            self._relax_face()
        target, blendshapes = self._hand_over(voiced, target)
        shaped = self.shaper.update(target, self._period)
        frame = replace(self._last_frame, roll=shaped.roll, pitch=shaped.pitch, yaw=shaped.yaw,
                        blendshapes=blendshapes, backchannels=tuple(events))
        return TickOutput(frame=frame, angular_velocity=shaped.angular_velocity, state=state,
                          frames_stepped=stepped, frames_dropped=dropped,
                          frames_deferred=deferred,
                          compute_seconds=time.perf_counter() - start,
                          cpu_seconds=time.thread_time() - cpu_start)

    def _step_speaker(self) -> bool:
        """Step the speaking model on the robot's buffered speech; tell if it drives the head."""
        if self.speaker is None:
            return False
        hop = self.speaker.hop_length
        self.speaking_frames_dropped += self.robot_buffer.drop_excess_hops(
            hop, self.max_backlog_hops)
        hops = self.robot_buffer.read_hops(hop)
        for samples in hops:
            self._speaking_frame = self.speaker.step(samples, StepContext(
                self.time, robot_speaking=True, robot_audio=samples))
            if not _finite(self._speaking_frame):
                self.nonfinite_frames += 1
        self.speaking_frames_stepped += len(hops)
        self._seconds_without_robot_audio = (
            0.0 if len(hops) else self._seconds_without_robot_audio + self._period)
        return self._seconds_without_robot_audio < self.config.handover_time

    def _hand_over(self, voiced: bool, listening: Optional[tuple]) -> tuple:
        """
        Return the head target and blendshapes, cross-faded between listening and speaking.

        The weight of the speaking motion moves linearly to 1 while the robot's own speech
        arrives and back to 0 after, over ``handover_time``; the pose shaper's speed limit
        holds throughout. A None target (ease to neutral) stays None.
        """
        blendshapes = self._last_frame.blendshapes
        if self.speaker is None:
            return listening, blendshapes
        step = self._period / self.config.handover_time
        goal = 1.0 if voiced else 0.0
        self.speaking_weight += float(np.clip(goal - self.speaking_weight, -step, step))
        weight = self.speaking_weight
        if weight == 0.0 or (listening is None and not voiced):
            return listening, blendshapes
        listen = np.zeros(3) if listening is None else np.asarray(listening, dtype=np.float64)
        speak = np.nan_to_num(np.asarray(self._speaking_frame.pose, dtype=np.float64))
        own = np.nan_to_num(np.clip(self._speaking_frame.blendshapes, 0.0, 1.0))
        return tuple((1.0 - weight) * listen + weight * speak), np.maximum(
            blendshapes, (weight * own).astype(np.float32))

    def _advance_pending(self, seconds: float) -> None:
        """
        Move the pending events ``seconds`` earlier, never before the clock (locked).

        The audio of ``seconds`` was dropped unstepped: the audio an event arrived with now
        ends that much earlier in stream time.
        """
        self._transcripts = collections.deque(
            replace(e, time=max(self.time, e.time - seconds)) if e.time > self.time else e
            for e in self._transcripts)

    def _step(self, events: List[BackchannelEvent]) -> None:
        """Step the model on the next hop, counting a non-finite frame and keeping its events."""
        with self._clock:
            samples = self.buffer.read_hops(self.model.hop_length, 1)[0]
            self.time += samples.size / self.model.sample_rate
            # Half a sample of slack: the stamp of an event and the clock add the same hops
            # in different orders.
            due = self.time + 0.5 / self.model.sample_rate
            ready = tuple(e for e in self._transcripts if e.time <= due)
            if ready:
                self._transcripts = collections.deque(
                    e for e in self._transcripts if e.time > due)
                self.transcripts_delivered += len(ready)
        seconds = samples.size / self.model.sample_rate
        if self.reactions.hear(samples, seconds):
            self._follow_reaction()
        context = StepContext(self.time, ready, self.robot_speaking)
        self._last_frame = self.model.step(samples, context)
        if not _finite(self._last_frame):
            self.nonfinite_frames += 1  # shaped and sanitised by tick: never published
        events.extend(self._last_frame.backchannels)

    def _relax_face(self) -> None:
        decay = math.exp(-self._period / self.config.face_relax_time_constant)
        last = self._last_frame
        self._last_frame = replace(
            last, blendshapes=last.blendshapes * decay, action_units=last.action_units * decay,
            valence=last.valence * decay, arousal=last.arousal * decay,
            expression='neutral', confidence=last.confidence * decay, backchannels=())


def _finite(frame: ListenerFrame) -> bool:
    """Tell whether every number of a model frame is finite."""
    scalars = (frame.roll, frame.pitch, frame.yaw, frame.valence, frame.arousal,
               frame.confidence)
    arrays = [frame.blendshapes, frame.action_units] + [
        a for a in (frame.facial_attributes, frame.coefficients) if a is not None]
    return all(math.isfinite(v) for v in scalars) and all(
        bool(np.all(np.isfinite(a))) for a in arrays)


def _running_mean(mean: float, value: float, weight: float = 0.1) -> float:
    """Return an exponential running mean updated with ``value`` (the first value sets it)."""
    return value if mean == 0.0 else mean + weight * (value - mean)
