"""
The real-time listener loop without ROS: buffered audio in, one safe output frame per tick.

The listener node calls :meth:`ListenerEngine.tick` from its timer. Each tick steps the model on
every complete hop that arrived since the last tick (at most ``max_frames_per_tick``: older hops
are dropped whole and counted, so latency stays bounded), then shapes the pose so that it is
finite, inside the limits and under the speed limit. When audio stops for longer than
``neutral_return_timeout`` the head eases back to neutral and the face relaxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import time
from typing import List, Optional

import numpy as np

from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.models.base import BackchannelEvent, ListenerFrame, StreamingListenerModel
from listener_head_ros.motion.pose_shaping import MotionLimits, PoseShaper


@dataclass(frozen=True)
class EngineConfig:
    """Timing, catch-up and output-shaping settings of the real-time loop."""

    tick_rate: float = 30.0  # Hz, the timer rate
    max_frames_per_tick: int = 5
    neutral_return_timeout: float = 1.0  # s without audio before easing to neutral
    neutral_return_time: float = 1.0  # s to get back to neutral
    smoothing_time_constant: float = 0.08  # s, low-pass on the model's pose
    face_relax_time_constant: float = 0.3  # s, decay of the face towards neutral without audio
    limits: MotionLimits = field(default_factory=MotionLimits)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tick_rate) and self.tick_rate > 0):
            raise ValueError('tick_rate must be a positive number of Hz')
        if self.max_frames_per_tick < 1:
            raise ValueError('max_frames_per_tick must be at least 1')
        for name in ('neutral_return_timeout', 'face_relax_time_constant'):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f'{name} must be positive')


@dataclass(frozen=True)
class TickOutput:
    """What one tick produced: the safe frame to publish and how it was obtained."""

    frame: ListenerFrame  # shaped pose; backchannels of every frame stepped in this tick
    angular_velocity: np.ndarray  # (3,) rad/s of roll, pitch, yaw
    state: str  # 'listening', 'holding', 'neutral' or 'robot_speaking'
    frames_stepped: int
    frames_dropped: int
    compute_seconds: float  # wall time of the tick, waits for the GIL included
    cpu_seconds: float  # CPU time of the ticking thread


class ListenerEngine:
    """Step a streaming listener model from a ring buffer and shape its output, once per tick."""

    def __init__(self, model: StreamingListenerModel, buffer: AudioRingBuffer,
                 config: Optional[EngineConfig] = None) -> None:
        self.model = model
        self.buffer = buffer
        self.config = config or EngineConfig()
        self.shaper = PoseShaper(self.config.limits, self.config.smoothing_time_constant,
                                 self.config.neutral_return_time)
        self.frames_stepped = 0
        self.frames_dropped = 0
        self.robot_speaking = False
        self._period = 1.0 / self.config.tick_rate
        self._last_frame = ListenerFrame.neutral()
        self._seconds_without_audio = math.inf

    def reset(self) -> None:
        """Forget model state, buffered audio and counters; put the head at neutral."""
        self.model.reset()
        self.buffer.clear()
        self.shaper.reset()
        self.frames_stepped = 0
        self.frames_dropped = 0
        self._last_frame = ListenerFrame.neutral()
        self._seconds_without_audio = math.inf

    def warm_up(self) -> None:
        """Run the model once on silence and reset it, so the first real tick is not slow."""
        self.model.step(np.zeros(self.model.hop_length, dtype=np.float32))
        self.model.reset()

    def tick(self) -> TickOutput:
        """Consume the complete hops in the buffer and return the frame to publish now."""
        start, cpu_start = time.perf_counter(), time.thread_time()
        hop = self.model.hop_length
        dropped = self.buffer.drop_excess_hops(hop, self.config.max_frames_per_tick)
        hops = self.buffer.read_hops(hop, self.config.max_frames_per_tick)
        events: List[BackchannelEvent] = []
        for samples in hops:
            self._last_frame = self.model.step(samples)
            events.extend(self._last_frame.backchannels)
        self.frames_stepped += len(hops)
        self.frames_dropped += dropped
        if len(hops):
            self._seconds_without_audio = 0.0
        else:
            self._seconds_without_audio += self._period
        if self.robot_speaking:
            state, target, events = 'robot_speaking', None, []
        elif self._seconds_without_audio <= self.config.neutral_return_timeout:
            state = 'listening' if len(hops) else 'holding'
            target = self._last_frame.pose
        else:
            state, target = 'neutral', None
        if state in ('neutral', 'robot_speaking'):
            self._relax_face()
        shaped = self.shaper.update(target, self._period)
        frame = replace(self._last_frame, roll=shaped.roll, pitch=shaped.pitch, yaw=shaped.yaw,
                        backchannels=tuple(events))
        return TickOutput(frame=frame, angular_velocity=shaped.angular_velocity, state=state,
                          frames_stepped=len(hops), frames_dropped=dropped,
                          compute_seconds=time.perf_counter() - start,
                          cpu_seconds=time.thread_time() - cpu_start)

    def _relax_face(self) -> None:
        decay = math.exp(-self._period / self.config.face_relax_time_constant)
        last = self._last_frame
        self._last_frame = replace(
            last, blendshapes=last.blendshapes * decay, action_units=last.action_units * decay,
            valence=last.valence * decay, arousal=last.arousal * decay,
            expression='neutral', confidence=last.confidence * decay, backchannels=())
