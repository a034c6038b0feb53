"""
The streaming listener model contract shared by the embedded and the learned models.

Inputs.  Every step receives one hop of the interlocutor's audio and a :class:`StepContext`
of timestamped side inputs: the transcript events recognised since the previous step, the
robot-speaking state and, optionally, the robot's own speech audio for the hop. A model
declares in :attr:`StreamingListenerModel.inputs` which of :data:`INPUTS` it uses; one that
uses only ``audio`` ignores the context and works unchanged wherever no side input exists.

Outputs.  A :class:`ListenerFrame` carries the head pose and the face as named streams (see
:mod:`listener_head_ros.streams`), and the ``S`` samples of a generative model as a
first-class field, :attr:`ListenerFrame.samples`. A model declares in
:attr:`StreamingListenerModel.outputs` whether it predicts each stream or fills it by a rule.

Parity.  After :meth:`~StreamingListenerModel.reset`, stepping consecutive hops (with the
contexts of :meth:`SideInputs.contexts`) gives, to float tolerance, every stream and sample
that :meth:`~StreamingListenerModel.run` returns for the whole signal.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES
from listener_head_ros.streams import BLENDSHAPES, HEAD, RULE

AUDIO, TRANSCRIPT, ROBOT_SPEAKING, ROBOT_AUDIO = 'audio', 'transcript', 'robot_speaking', \
    'robot_audio'
INPUTS: Tuple[str, ...] = (AUDIO, TRANSCRIPT, ROBOT_SPEAKING, ROBOT_AUDIO)
"""Everything a model may listen to: each name is one kind of side input of a step."""


@dataclass(frozen=True)
class TranscriptEvent:
    """A partial or final speech-recognition result, available from ``time`` on."""

    time: float  # s of stream time when the recogniser published it
    text: str
    final: bool = True
    start: Optional[float] = None  # s, when the words began, if the recogniser says
    end: Optional[float] = None  # s, when they ended
    confidence: float = 1.0


@dataclass(frozen=True)
class StepContext:
    """The side inputs of one step, known at the end of its hop."""

    time: float = 0.0  # s of stream time at the end of the hop
    transcripts: Tuple[TranscriptEvent, ...] = ()  # recognised since the previous step
    robot_speaking: bool = False
    robot_audio: Optional[np.ndarray] = None  # the robot's own speech for this hop, if known


EMPTY_CONTEXT = StepContext()


@dataclass(frozen=True)
class SideInputs:
    """A timeline of side inputs for an offline run, cut into per-step contexts."""

    transcripts: Sequence[TranscriptEvent] = ()
    robot_speaking: Sequence[Tuple[float, bool]] = ()  # (time, state) changes, time-sorted

    def contexts(self, n_frames: int, frame_period: float) -> List[StepContext]:
        """Return the context of each of ``n_frames`` steps ending at ``(i + 1) * period``."""
        events = sorted(self.transcripts, key=lambda e: e.time)
        changes = sorted(self.robot_speaking)
        contexts, next_event, next_change, speaking = [], 0, 0, False
        for i in range(n_frames):
            now = (i + 1) * frame_period
            first = next_event
            while next_event < len(events) and events[next_event].time <= now:
                next_event += 1
            while next_change < len(changes) and changes[next_change][0] <= now:
                speaking = bool(changes[next_change][1])
                next_change += 1
            contexts.append(StepContext(now, tuple(events[first:next_event]), speaking))
        return contexts


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
    facial_attributes: Optional[np.ndarray] = None  # (25,) REACT attributes, when provided
    coefficients: Optional[np.ndarray] = None  # (58,) 3DMM coefficients, when provided
    samples: Dict[str, np.ndarray] = field(default_factory=dict)  # stream -> (S, dim)

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

    def stream(self, name: str) -> Optional[np.ndarray]:
        """Return the frame's value of stream ``name`` (None when the frame has none)."""
        if name == HEAD.name:
            return np.array(self.pose, dtype=np.float32)
        if name == BLENDSHAPES.name:
            return self.blendshapes
        return getattr(self, name, None)

    @property
    def num_samples(self) -> int:
        """Return how many samples the frame carries (1 for a deterministic model)."""
        return max((len(v) for v in self.samples.values()), default=1)


class StreamingListenerModel(abc.ABC):
    """
    A causal listener model that maps one hop of speech audio to one :class:`ListenerFrame`.

    Contract: after :meth:`reset`, calling :meth:`step` on consecutive hops of a signal gives,
    to float tolerance, the frames that :meth:`run` returns for the whole signal.
    """

    name: str = "listener"
    sample_rate: int = 16000
    inputs: FrozenSet[str] = frozenset({AUDIO})
    outputs: Mapping[str, str] = {HEAD.name: RULE, BLENDSHAPES.name: RULE}

    @property
    @abc.abstractmethod
    def hop_length(self) -> int:
        """Return the number of samples consumed per frame."""

    @property
    def num_samples(self) -> int:
        """Return the reactions drawn per frame (1 unless the model is generative)."""
        return 1

    @property
    def frame_rate(self) -> float:
        """Return frames per second, exactly ``sample_rate / hop_length``."""
        return self.sample_rate / self.hop_length

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all streaming state, as if no audio had been heard."""

    @abc.abstractmethod
    def step(self, hop: np.ndarray, context: StepContext = EMPTY_CONTEXT) -> ListenerFrame:
        """Consume ``hop_length`` mono float32 samples at ``sample_rate``; return a frame."""

    def run(self, audio: np.ndarray, side: Optional[SideInputs] = None) -> List[ListenerFrame]:
        """
        Reset, then return one frame per complete hop of ``audio``; drop a trailing partial hop.

        This is the offline path; subclasses may override it with a batched implementation.
        Afterwards the streaming state is unspecified: call :meth:`reset` before stepping again.
        """
        samples = self.as_audio(audio)
        self.reset()
        hop = self.hop_length
        n_frames = samples.size // hop
        contexts = self.contexts(n_frames, side)
        return [self.step(samples[i * hop:(i + 1) * hop], contexts[i]) for i in range(n_frames)]

    def contexts(self, n_frames: int, side: Optional[SideInputs]) -> List[StepContext]:
        """Return the per-step contexts of an offline run of ``n_frames`` frames."""
        return (side or SideInputs()).contexts(n_frames, 1.0 / self.frame_rate)

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
