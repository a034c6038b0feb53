"""
The dataset source contract: a corpus as continuous dialog streams with named targets.

The node streams one model state through a whole conversation, so training and evaluation
see corpora the same way: a :class:`DialogSource` yields one :class:`DialogStream` per dialog,

- ``audio``: what the listener hears (the interlocutor), mono float32 at the feature rate,
  one model frame per ``hop_length`` samples (a trailing partial hop has no frame);
- ``targets``: the listener's behaviour as named streams of :mod:`listener_head_ros.streams`,
  ``{name: (T, dim) float32}``, each with a per-frame validity mask in ``valid`` (invalid
  frames hold 0 and count nowhere);
- ``utterance`` and ``window``: per-frame masks of the interlocutor's utterances and of the
  listening windows (:mod:`listener_head_ros.data.windows`), and ``segments``, one per
  interlocutor utterance, from which both per-utterance figures are computed;
- ``turns``: every transcribed utterance of the dialog, both actors;
- ``transcripts``: what a live speech recogniser would have published of the interlocutor's
  utterances (:class:`~listener_head_ros.models.base.TranscriptEvent`, time-sorted, each
  available from its ``time`` on; :mod:`listener_head_ros.data.transcripts`), empty when the
  corpus has no text;
- ``group``: the unit of the split: the IEMOCAP session, or ``'train'``/``'val'``/``'test'``
  for a corpus that ships a fixed split.

A source declares the :attr:`DialogSource.role` its streams train (listening unless it
says otherwise; a speaking source's audio is the listener's own speech and its segments the
listener's own utterances), and its :class:`SplitScheme`: leave-one-group-out (IEMOCAP's
sessions) or a fixed train/val/test split.  :class:`DialogSource` is what the feature cache
consumes; it never needs to know which corpus is behind it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from listener_head_ros.features import FeatureConfig
from listener_head_ros.models.base import TranscriptEvent
from listener_head_ros.roles import LISTENING
from listener_head_ros.streams import get_stream

INTERLOCUTOR = 'interlocutor'  # Turn.role: the actor the listener listens to
LISTENER = 'listener'  # Turn.role: the listener's own turns
LEAVE_ONE_GROUP_OUT = 'leave_one_group_out'
FIXED = 'fixed'
FIXED_GROUPS = ('train', 'val', 'test')


@dataclass(frozen=True)
class Turn:
    """One transcribed utterance of a dialog; times in seconds since the audio's start."""

    utterance_id: str
    speaker: str  # the corpus's label of the actor who speaks
    role: str  # INTERLOCUTOR or LISTENER
    start: float
    end: float
    meta: Dict[str, Any] = field(default_factory=dict)  # JSON-ready: emotion, text, ...


@dataclass(frozen=True)
class Segment:
    """One interlocutor utterance in model frames: its span and its listening window."""

    utterance_id: str
    start: int  # first frame of the utterance
    end: int  # one past its last frame
    window_end: int  # one past the listening window's last frame (>= end)
    excluded: str = ''  # why the segment is left out of the figures; '' when it counts

    @property
    def utterance(self) -> slice:
        """Return the utterance's frames."""
        return slice(self.start, self.end)

    @property
    def window(self) -> slice:
        """Return the listening window's frames (the utterance and its tail)."""
        return slice(self.start, self.window_end)

    @property
    def tail(self) -> slice:
        """Return the frames of the window after the utterance."""
        return slice(self.end, self.window_end)


@dataclass
class DialogStream:
    """One dialog as the node would hear it, with the listener's behaviour as targets."""

    dialog_id: str
    group: str
    audio: np.ndarray  # (n,) float32 mono at sample_rate
    sample_rate: int
    hop_length: int
    targets: Dict[str, np.ndarray]  # stream name -> (T, dim) float32
    valid: Dict[str, np.ndarray]  # stream name -> (T,) bool
    utterance: np.ndarray  # (T,) bool: inside an interlocutor utterance
    window: np.ndarray  # (T,) bool: inside a listening window
    segments: List[Segment]
    turns: List[Turn]
    meta: Dict[str, Any] = field(default_factory=dict)  # JSON-ready, e.g. the listener
    transcripts: List[TranscriptEvent] = field(default_factory=list)  # time-sorted

    def __post_init__(self) -> None:
        n = self.n_frames
        times = [e.time for e in self.transcripts]
        if any(b < a for a, b in zip(times, times[1:])):
            raise ValueError(f'{self.dialog_id}: transcripts must be sorted by time')
        if set(self.targets) != set(self.valid):
            raise ValueError(f'{self.dialog_id}: targets {sorted(self.targets)} and validity '
                             f'masks {sorted(self.valid)} name different streams')
        for name, values in self.targets.items():
            dim = get_stream(name).dim
            if values.shape != (n, dim) or self.valid[name].shape != (n,):
                raise ValueError(f'{self.dialog_id}: stream {name} has shape {values.shape} '
                                 f'and mask {self.valid[name].shape}; expected ({n}, {dim})')
        if self.utterance.shape != (n,) or self.window.shape != (n,):
            raise ValueError(f'{self.dialog_id}: utterance/window masks need {n} frames')

    @property
    def n_frames(self) -> int:
        """Return the number of model frames: complete hops of audio."""
        return int(self.audio.size) // self.hop_length


@dataclass(frozen=True)
class Fold:
    """One training run of a split: the groups it trains on and those it is scored on."""

    name: str
    train: Tuple[str, ...]
    test: Tuple[str, ...]


@dataclass(frozen=True)
class SplitScheme:
    """
    How a corpus is split: ``kind`` is :data:`LEAVE_ONE_GROUP_OUT` or :data:`FIXED`.

    Leave-one-group-out holds out each group in turn (or those of ``selected``); the final
    model trains on all groups.  A fixed split trains on ``'train'`` and is scored on
    ``'test'`` (one fold named ``'test'``); ``'val'`` is left for model selection, and the
    final model trains on ``'train'`` and ``'val'``.
    """

    kind: str
    groups: Tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.groups)) != len(self.groups) or not self.groups:
            raise ValueError(f'split groups must be distinct and not empty: {self.groups}')
        if self.kind == FIXED:
            unknown = sorted(set(self.groups) - set(FIXED_GROUPS))
            if unknown or not {'train', 'test'} <= set(self.groups):
                raise ValueError(f'a fixed split has the groups train, test (and val), not '
                                 f'{list(self.groups)}')
        elif self.kind != LEAVE_ONE_GROUP_OUT:
            raise ValueError(f'split kind must be {LEAVE_ONE_GROUP_OUT!r} or {FIXED!r}, not '
                             f'{self.kind!r}')

    def folds(self, selected: Sequence[str] = ()) -> List[Fold]:
        """Return the folds to run; ``selected`` names a subset of them (all when empty)."""
        names = [str(s) for s in selected]
        if self.kind == FIXED:
            unknown = sorted(set(names) - {'test'})
            if unknown:
                raise ValueError(f"a fixed split has the one fold 'test', not {unknown}")
            return [Fold('test', ('train',), ('test',))]
        unknown = sorted(set(names) - set(self.groups))
        if unknown:
            raise ValueError(f'folds {unknown} are not among the groups {list(self.groups)}')
        if len(self.groups) < 2:
            raise ValueError(f'leave-one-group-out needs at least two groups, not '
                             f'{list(self.groups)}')
        return [Fold(g, tuple(o for o in self.groups if o != g), (g,))
                for g in (names or self.groups)]

    @property
    def final_groups(self) -> Tuple[str, ...]:
        """Return the groups the final (deployment) model trains on."""
        if self.kind == FIXED:
            return tuple(g for g in ('train', 'val') if g in self.groups)
        return tuple(self.groups)

    def restrict(self, groups: Sequence[str]) -> 'SplitScheme':
        """Return this scheme over the subset ``groups`` of its groups (all when empty)."""
        wanted = [str(g) for g in groups]
        unknown = sorted(set(wanted) - set(self.groups))
        if unknown:
            raise ValueError(f'groups {unknown} are not among {list(self.groups)}')
        return SplitScheme(self.kind, tuple(g for g in self.groups if g in wanted)
                           if wanted else self.groups)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dict."""
        return {'kind': self.kind, 'groups': list(self.groups)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'SplitScheme':
        """Rebuild a scheme written by :meth:`to_dict`."""
        return cls(str(data['kind']), tuple(str(g) for g in data['groups']))


class DialogSource(abc.ABC):
    """A corpus as dialog streams (see the module docstring)."""

    name: str = 'source'

    @property
    @abc.abstractmethod
    def feature_config(self) -> FeatureConfig:
        """Return the feature settings: sample rate and hop of the audio and frames."""

    @property
    @abc.abstractmethod
    def targets(self) -> Tuple[str, ...]:
        """Return the names of the target streams every dialog carries."""

    @property
    def role(self) -> str:
        """Return the role the streams train (:mod:`listener_head_ros.roles`): listening."""
        return LISTENING

    @property
    @abc.abstractmethod
    def split(self) -> SplitScheme:
        """Return how the corpus is split into training and test groups."""

    @abc.abstractmethod
    def describe(self) -> Dict[str, Any]:
        """Return a JSON-ready identity of the corpus and settings (a cache's up-to-date key)."""

    @abc.abstractmethod
    def dialog_ids(self) -> List[str]:
        """Return the ids of the dialogs :meth:`dialogs` will try, in order."""

    @abc.abstractmethod
    def dialogs(self) -> Iterator[DialogStream]:
        """Yield the usable dialogs; counts what was left out into :meth:`report`."""

    def report(self) -> Dict[str, Any]:
        """Return JSON-ready counts of the last pass over :meth:`dialogs`."""
        return {}

    def summary_table(self) -> str:
        """Return a plain-text table of :meth:`report`."""
        return ''

    def floors(self) -> Optional[Dict[str, Any]]:
        """Return reference floors shipped with the corpus (synthetic corpora), else None."""
        return None
