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
    3 translation. :func:`faceverse_rotation_to_head` turns the rotation into a ``head``;
    :func:`listener_head_ros.face.faceverse_blendshapes` the expression into ``blendshapes``.
``blendshapes``
    the ARKit-52 blendshape weights (0..1) of ``FacialReaction``.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Dict, Sequence, Tuple

import numpy as np

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
EXPRESSION_COLUMNS = slice(0, 52)
"""The FaceVerse v2 expression weights among the :data:`COEFFICIENTS` channels."""
ROTATION_COLUMNS = slice(52, 55)
"""The FaceVerse rotation (rot_x, rot_y, rot_z) among the :data:`COEFFICIENTS` channels."""
FACEVERSE_FRONTAL_ROTATION: Tuple[float, float, float] = (math.pi, 0.0, 0.0)
"""
FaceVerse's rotation of a face looking straight at the camera: its trackers start from it.

FaceVerse's mean mesh is stored upside down and facing away from its camera (y down, z away);
its fitting code starts every face at ``rot_x = pi``, which turns it upright to face the
camera. A release that removed this flip (neutral near 0) needs its own neutral.
"""


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    """Return the 3x3 right-handed rotation by ``angle`` radians about coordinate ``axis``."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def faceverse_rotation_matrix(rotation: Sequence[float]) -> np.ndarray:
    """
    Return FaceVerse's rotation matrix of (rot_x, rot_y, rot_z) radians: ``Rz @ Ry @ Rx``.

    As FaceVerse's ``compute_rotation_matrix``, which applies it to the mesh's vertices
    (column vectors; the code multiplies row vectors by its transpose).
    """
    rot_x, rot_y, rot_z = (float(v) for v in rotation)
    return _axis_rotation(2, rot_z) @ _axis_rotation(1, rot_y) @ _axis_rotation(0, rot_x)


# Camera axes (x image right, y up, z toward the camera, once the face is upright) as REP-103
# head axes of a listener facing the camera: forward = +z, left = +x (the listener's left is
# the image's right), up = +y. Rows: the head's x, y, z in camera coordinates.
_CAMERA_TO_HEAD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def faceverse_rotation_to_head(
        rotation: Sequence[float],
        neutral: Sequence[float] = FACEVERSE_FRONTAL_ROTATION) -> np.ndarray:
    """
    Return REP-103 (roll, pitch, yaw) radians of a FaceVerse rotation relative to ``neutral``.

    The head's rotation is the one that takes the neutral face to this one, in the camera's
    axes, ``R(rotation) @ R(neutral).T``, re-expressed in the head's axes (x forward toward the
    camera, y the listener's left, z up) and read as REP-103 fixed-axis roll-pitch-yaw
    (``R = Rz(yaw) Ry(pitch) Rx(roll)``). So from a frontal neutral, ``rot_x`` is a nod
    (positive: the head top comes toward the camera, pitch down, as ``HeadPose``), ``rot_y``
    a turn (positive: toward the image's right, the listener's left, positive yaw) and ``rot_z``
    a tilt (positive: counter-clockwise in the image, toward the listener's right shoulder,
    positive roll); for small angles ``(roll, pitch, yaw) ~ (rot_z, rot_x - neutral, rot_y)``.

    The axes are those of FaceVerse's fitting code (it renders with the camera on the +z axis
    looking back at the face, image y up); that the REACT release kept them is assumed. A
    rotation of more than 90 degrees of pitch has two readings: the one with |pitch| <= pi/2 is
    returned. Non-finite input raises ValueError.
    """
    values = np.asarray(rotation, dtype=np.float64).reshape(-1)
    base = np.asarray(neutral, dtype=np.float64).reshape(-1)
    if values.size != 3 or base.size != 3:
        raise ValueError(f'a FaceVerse rotation has 3 angles, got {values.size} and {base.size}')
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(base))):
        raise ValueError('a FaceVerse rotation must be finite')
    relative = faceverse_rotation_matrix(values) @ faceverse_rotation_matrix(base).T
    head = _CAMERA_TO_HEAD @ relative @ _CAMERA_TO_HEAD.T
    pitch = math.asin(min(max(-head[2, 0], -1.0), 1.0))
    roll = math.atan2(head[2, 1], head[2, 2])
    yaw = math.atan2(head[1, 0], head[0, 0])
    return np.array((roll, pitch, yaw), dtype=np.float32)


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
