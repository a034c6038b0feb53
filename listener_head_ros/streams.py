"""
Named output streams of a listener: the head pose and the face, each a fixed list of channels.

A model predicts some streams and may fill others by a rule; training targets, losses, metrics
and checkpoints all name streams from :data:`STREAMS`, so a stream's size and channel order are
defined here once:

``head``
    roll, pitch, yaw in radians relative to the neutral head (REP-103), as in ``HeadPose``.
``facial_attributes``
    the REACT challenge's 25 facial attributes: 15 AU occurrences (0..1), valence and arousal
    (-1..1), 8 expression probabilities (0..1).
``coefficients``
    FaceVerse v2 3DMM coefficients of the REACT 2025 release: 52 expression, 3 rotation,
    3 translation.
``blendshapes``
    the ARKit-52 blendshape weights (0..1) of ``FacialReaction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

from listener_head_ros.face import ARKIT_BLENDSHAPES, REACT_ACTION_UNITS, REACT_EXPRESSIONS
from listener_head_ros.schema import closest

PREDICTED = 'predicted'
RULE = 'rule'
SOURCES = (PREDICTED, RULE)
"""How a model provides a stream: learned from data, or filled by a hand-written rule."""


@dataclass(frozen=True)
class Stream:
    """One named output stream: its channels in order, their units and what it is."""

    name: str
    channels: Tuple[str, ...]
    units: str
    description: str

    @property
    def dim(self) -> int:
        """Return the number of channels."""
        return len(self.channels)


HEAD = Stream('head', ('roll', 'pitch', 'yaw'), 'rad',
              'head angles relative to the neutral head (REP-103)')
FACIAL_ATTRIBUTES = Stream(
    'facial_attributes',
    REACT_ACTION_UNITS + ('valence', 'arousal') + tuple(f'p_{e}' for e in REACT_EXPRESSIONS),
    'AU and expression probabilities 0..1, valence and arousal -1..1',
    'REACT facial attributes: 15 AU occurrences, valence, arousal, 8 expression probabilities')
COEFFICIENTS = Stream(
    'coefficients',
    tuple(f'exp{i:02d}' for i in range(52)) + ('rot_x', 'rot_y', 'rot_z', 'trans_x',
                                               'trans_y', 'trans_z'),
    'FaceVerse v2 units (rotations in radians)',
    'FaceVerse v2 3DMM: 52 expression, 3 rotation and 3 translation coefficients')
BLENDSHAPES = Stream('blendshapes', ARKIT_BLENDSHAPES, 'weight 0..1', 'ARKit-52 blendshapes')

STREAMS: Dict[str, Stream] = {s.name: s for s in (HEAD, FACIAL_ATTRIBUTES, COEFFICIENTS,
                                                  BLENDSHAPES)}
"""Every stream a model may predict or a dataset may hold, by name."""


def get_stream(name: str) -> Stream:
    """Return the stream called ``name``; raise ValueError naming the closest known one."""
    try:
        return STREAMS[name]
    except (KeyError, TypeError):
        raise ValueError(f'unknown stream {name!r}{closest(str(name), STREAMS)}; known: '
                         f'{", ".join(STREAMS)}') from None


def stream_slices(names: Sequence[str]) -> Dict[str, slice]:
    """Return each stream's columns when ``names`` are concatenated in order."""
    slices, start = {}, 0
    for name in names:
        if name in slices:
            raise ValueError(f'stream {name!r} is listed twice')
        dim = get_stream(name).dim
        slices[name] = slice(start, start + dim)
        start += dim
    return slices


def total_dim(names: Sequence[str]) -> int:
    """Return the number of columns of ``names`` concatenated."""
    return sum(get_stream(name).dim for name in names)
