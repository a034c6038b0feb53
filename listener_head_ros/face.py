"""
Facial parameter vocabularies and the maps between them.

Vocabularies: the ARKit-52 blendshapes and the FACS action units of ``FacialReaction``, the
``hri_msgs/Expression`` labels, and the REACT challenge's facial attributes. Maps: REACT
attributes to action units, valence, arousal and an expression label
(:func:`react_attributes_to_face`), and FaceVerse v2 expression coefficients to ARKit
blendshape weights (:data:`FACEVERSE_V2_EXPRESSIONS`, :func:`faceverse_blendshapes`).
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

ARKIT_BLENDSHAPES: Tuple[str, ...] = (
    # Left eye.
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    # Right eye.
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    # Mouth and jaw.
    "jawForward",
    "jawLeft",
    "jawRight",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthLeft",
    "mouthRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    # Eyebrows.
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    # Cheeks.
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    # Nose.
    "noseSneerLeft",
    "noseSneerRight",
    # Tongue.
    "tongueOut",
)
"""The 52 ARKit blendshape names, in the order of Apple's ARFaceAnchor.BlendShapeLocation docs."""

ACTION_UNITS: Tuple[str, ...] = (
    "AU01",  # inner brow raiser
    "AU02",  # outer brow raiser
    "AU04",  # brow lowerer
    "AU06",  # cheek raiser
    "AU07",  # lid tightener
    "AU09",  # nose wrinkler
    "AU10",  # upper lip raiser
    "AU12",  # lip corner puller
    "AU14",  # dimpler
    "AU15",  # lip corner depressor
    "AU17",  # chin raiser
    "AU23",  # lip tightener
    "AU24",  # lip pressor
    "AU25",  # lips part
    "AU26",  # jaw drop
    "AU45",  # blink
)
"""
The FACS action units ``FacialReaction`` reports, named ``AU<FACS number>``.

The 15 of the REACT facial attributes (:data:`REACT_ACTION_UNITS`) and the blink (AU45) that
the embedded listener drives; :func:`facs_number` gives each one's FACS code.
"""

EXPRESSIONS: Tuple[str, ...] = (
    "neutral",
    "angry",
    "sad",
    "happy",
    "surprised",
    "disgusted",
    "scared",
    "pleading",
    "vulnerable",
    "despaired",
    "guilty",
    "disappointed",
    "embarrassed",
    "horrified",
    "skeptical",
    "annoyed",
    "furious",
    "suspicious",
    "rejected",
    "bored",
    "tired",
    "asleep",
    "confused",
    "amazed",
    "excited",
)
"""Expression labels of the hri_msgs/Expression vocabulary."""

REACT_ACTION_UNITS: Tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU23",
    "AU24", "AU25", "AU26")
"""The 15 AU occurrences of the REACT facial attributes, in their column order."""

REACT_EXPRESSIONS: Tuple[str, ...] = (
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
"""The 8 expression probabilities of the REACT facial attributes, in their column order."""

REACT_TO_EXPRESSION: Dict[str, str] = {
    "Neutral": "neutral", "Happy": "happy", "Sad": "sad", "Surprise": "surprised",
    "Fear": "scared", "Disgust": "disgusted", "Anger": "angry", "Contempt": "skeptical"}
"""The hri_msgs/Expression label closest to each REACT expression."""

BLENDSHAPE_INDEX: Dict[str, int] = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}
"""Position of each blendshape name in :data:`ARKIT_BLENDSHAPES`."""

ACTION_UNIT_INDEX: Dict[str, int] = {name: i for i, name in enumerate(ACTION_UNITS)}
"""Position of each action unit name in :data:`ACTION_UNITS`."""


FACEVERSE_V2_EXPRESSIONS: Tuple[str, ...] = ARKIT_BLENDSHAPES
"""
The ARKit blendshape that each of the 52 FaceVerse v2 expression coefficients drives, by column.

What is known: FaceVerse v2 (Wang et al., CVPR 2022; github.com/LizhenWangT/FaceVerse) fitted
its 52 expression components "to the 52 blendshapes defined by Apple", and its model file
``faceverse_simple_v2.npy`` names them, column by column, in ``exp_name_list`` (ARKit names,
e.g. ``jawOpen``). The REACT 2025 coefficients are that basis's 52 weights, then 3 rotation and
3 translation values.

What is assumed: the column order. ``exp_name_list`` ships only inside that pickled model file,
which this package neither redistributes nor unpickles, and no public text we found lists it;
this table assumes Apple's documented order (:data:`ARKIT_BLENDSHAPES`). Check it against your
copy of the model (``np.load(path, allow_pickle=True).item()['exp_name_list']``, on a file you
trust) and change this one table if it differs.

Where the semantics differ:

- The components are FaceVerse's own mesh deltas fitted to Apple's shapes, not Apple's; a
  FaceVerse weight of 1 is FaceVerse's full shape, close to but not Apple's calibration.
- Tracked coefficients are least-squares fits, not bounded: they go below 0 and above 1. The
  ARKit range is 0..1, so :func:`faceverse_blendshapes` clips, and a negative weight (a shape
  pushed the other way) is lost.
- Left and right follow ARKit's names (the subject's own left); that FaceVerse's ``...Left``
  deltas move the subject's left, not the image's, is assumed, not verified.
- The v2 mesh has no eyeballs and no mouth interior (removed in v1), so the ``eyeLook*``
  weights move lids rather than gaze, and ``tongueOut`` has little or no geometry behind it.
"""

FACEVERSE_TO_ARKIT: np.ndarray = np.array(
    [BLENDSHAPE_INDEX[name] for name in FACEVERSE_V2_EXPRESSIONS], dtype=np.intp)
"""The :data:`ARKIT_BLENDSHAPES` position of each FaceVerse v2 expression column."""


def faceverse_blendshapes(expression: np.ndarray) -> np.ndarray:
    """
    Return the (52,) ARKit blendshape weights, in 0..1, of 52 FaceVerse v2 expression weights.

    Each coefficient drives the blendshape :data:`FACEVERSE_V2_EXPRESSIONS` names, clipped to
    0..1; a non-finite value gives 0. Raises ValueError unless 52 values are given.
    """
    values = np.asarray(expression, dtype=np.float32).reshape(-1)
    if values.size != len(FACEVERSE_V2_EXPRESSIONS):
        raise ValueError(f"expected {len(FACEVERSE_V2_EXPRESSIONS)} FaceVerse expression "
                         f"coefficients, got {values.size}")
    weights = np.zeros(len(ARKIT_BLENDSHAPES), dtype=np.float32)
    weights[FACEVERSE_TO_ARKIT] = np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0,
                                                        neginf=0.0), 0.0, 1.0)
    return weights


def facs_number(name: str) -> int:
    """Return the FACS code of an action unit name of :data:`ACTION_UNITS` (``AU12`` -> 12)."""
    if name not in ACTION_UNIT_INDEX:
        raise ValueError(f"unknown action unit name: {name!r}")
    return int(name[2:])


def _named_array(
    values: Mapping[str, float], index: Mapping[str, int], kind: str
) -> np.ndarray:
    out = np.zeros(len(index), dtype=np.float32)
    for name, value in values.items():
        if name not in index:
            raise ValueError(f"unknown {kind} name: {name!r}")
        out[index[name]] = value
    return out


def blendshape_array(weights: Mapping[str, float]) -> np.ndarray:
    """
    Return a (52,) float32 array in ARKit order from a name->weight mapping; unset names are 0.

    Raises ValueError for a name that is not an ARKit blendshape.
    """
    return _named_array(weights, BLENDSHAPE_INDEX, "blendshape")


def action_unit_array(values: Mapping[str, float]) -> np.ndarray:
    """
    Return a float32 array in :data:`ACTION_UNITS` order; unset units are 0.

    Raises ValueError for a name that is not in :data:`ACTION_UNITS`.
    """
    return _named_array(values, ACTION_UNIT_INDEX, "action unit")


def named_values(names: Sequence[str], values: np.ndarray) -> Dict[str, float]:
    """Return a name->value dict pairing ``names`` with the entries of ``values``."""
    flat = np.asarray(values, dtype=float).reshape(-1)
    if flat.size != len(names):
        raise ValueError(f"expected {len(names)} values, got {flat.size}")
    return {name: float(v) for name, v in zip(names, flat)}


def react_attributes_to_face(attributes: np.ndarray) -> Tuple[np.ndarray, float, float, str]:
    """
    Return (action units, valence, arousal, expression) of 25 REACT facial attributes.

    The 15 AUs are copied (clipped to 0..1; AU45, which REACT does not report, is 0), valence
    and arousal clipped to -1..1; the expression is the most probable of the 8, as an
    hri_msgs/Expression label. Non-finite values count as 0.
    """
    values = np.nan_to_num(np.asarray(attributes, dtype=np.float32).reshape(-1),
                           nan=0.0, posinf=0.0, neginf=0.0)
    n_au = len(REACT_ACTION_UNITS)
    if values.size != n_au + 2 + len(REACT_EXPRESSIONS):
        raise ValueError(f"expected {n_au + 2 + len(REACT_EXPRESSIONS)} facial attributes, "
                         f"got {values.size}")
    units = np.zeros(len(ACTION_UNITS), dtype=np.float32)
    for name, value in zip(REACT_ACTION_UNITS, values[:n_au]):
        units[ACTION_UNIT_INDEX[f"AU{int(name[2:]):02d}"]] = min(max(float(value), 0.0), 1.0)
    valence, arousal = (min(max(float(v), -1.0), 1.0) for v in values[n_au:n_au + 2])
    expression = REACT_TO_EXPRESSION[REACT_EXPRESSIONS[int(np.argmax(values[n_au + 2:]))]]
    return units, valence, arousal, expression
