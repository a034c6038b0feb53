"""The streaming listener model interface shared by the embedded and the learned models."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES


@dataclass(frozen=True)
class BackchannelEvent:
    """A discrete listener response that starts at the frame that carries it."""

    kind: str  # 'nod', 'shake', 'smile', ...
    intensity: float  # 0..1
    duration: float  # seconds


@dataclass
class ListenerFrame:
    """
    Listener behaviour for one model frame.

    Angles are radians relative to the neutral head (REP-103: x forward, z up, so a positive
    pitch lowers the head). ``blendshapes`` follow :data:`listener_head_ros.face.ARKIT_BLENDSHAPES`
    and ``action_units`` follow :data:`listener_head_ros.face.ACTION_UNITS`, all in 0..1.
    """

    roll: float
    pitch: float
    yaw: float
    blendshapes: np.ndarray
    action_units: np.ndarray
    valence: float = 0.0  # -1..1
    arousal: float = 0.0  # -1..1
    expression: str = "neutral"  # from listener_head_ros.face.EXPRESSIONS
    confidence: float = 0.0  # 0..1
    backchannels: Tuple[BackchannelEvent, ...] = field(default_factory=tuple)

    @classmethod
    def neutral(cls) -> "ListenerFrame":
        """Return a frame with the head at neutral, a relaxed face and no events."""
        return cls(
            roll=0.0,
            pitch=0.0,
            yaw=0.0,
            blendshapes=np.zeros(len(ARKIT_BLENDSHAPES), dtype=np.float32),
            action_units=np.zeros(len(ACTION_UNITS), dtype=np.float32),
        )

    @property
    def pose(self) -> Tuple[float, float, float]:
        """Return (roll, pitch, yaw) in radians."""
        return (self.roll, self.pitch, self.yaw)


class StreamingListenerModel(abc.ABC):
    """
    A causal listener model that maps one hop of speech audio to one :class:`ListenerFrame`.

    Contract: after :meth:`reset`, calling :meth:`step` on consecutive hops of a signal gives,
    to float tolerance, the frames that :meth:`run` returns for the whole signal.
    """

    name: str = "listener"
    sample_rate: int = 16000

    @property
    @abc.abstractmethod
    def hop_length(self) -> int:
        """Return the number of samples consumed per frame."""

    @property
    def frame_rate(self) -> float:
        """Return frames per second, exactly ``sample_rate / hop_length``."""
        return self.sample_rate / self.hop_length

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all streaming state, as if no audio had been heard."""

    @abc.abstractmethod
    def step(self, hop: np.ndarray) -> ListenerFrame:
        """Consume ``hop_length`` mono float32 samples at ``sample_rate``; return a frame."""

    def run(self, audio: np.ndarray) -> List[ListenerFrame]:
        """
        Reset, then return one frame per complete hop of ``audio``; drop a trailing partial hop.

        This is the offline path; subclasses may override it with a batched implementation.
        Afterwards the streaming state is unspecified: call :meth:`reset` before stepping again.
        """
        samples = self.as_audio(audio)
        self.reset()
        hop = self.hop_length
        return [self.step(samples[i:i + hop]) for i in range(0, samples.size - hop + 1, hop)]

    @staticmethod
    def as_audio(audio: np.ndarray) -> np.ndarray:
        """Return ``audio`` as a 1-D float32 array with non-finite samples replaced by 0."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(samples)):
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        return samples

    def check_hop(self, hop: np.ndarray) -> np.ndarray:
        """Return ``hop`` sanitized by :meth:`as_audio`; raise ValueError on a wrong length."""
        samples = self.as_audio(hop)
        if samples.size != self.hop_length:
            raise ValueError(f"expected a hop of {self.hop_length} samples, got {samples.size}")
        return samples
