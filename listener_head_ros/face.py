"""Facial parameter vocabularies: ARKit-52 blendshapes, action units and expression labels."""

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
"""The 15 FACS action units reported, as in the REACT challenge facial attributes."""

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
    Return a (15,) float32 array in :data:`ACTION_UNITS` order; unset units are 0.

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

    The AUs that :data:`ACTION_UNITS` also reports are copied (clipped to 0..1), the others are
    0; the expression is the most probable of the 8, as an hri_msgs/Expression label.
    """
    values = np.nan_to_num(np.asarray(attributes, dtype=np.float32).reshape(-1))
    n_au = len(REACT_ACTION_UNITS)
    if values.size != n_au + 2 + len(REACT_EXPRESSIONS):
        raise ValueError(f"expected {n_au + 2 + len(REACT_EXPRESSIONS)} facial attributes, "
                         f"got {values.size}")
    units = np.zeros(len(ACTION_UNITS), dtype=np.float32)
    for name, value in zip(REACT_ACTION_UNITS, values[:n_au]):
        index = ACTION_UNIT_INDEX.get(f"AU{int(name[2:]):02d}")
        if index is not None:
            units[index] = min(max(float(value), 0.0), 1.0)
    valence, arousal = (min(max(float(v), -1.0), 1.0) for v in values[n_au:n_au + 2])
    expression = REACT_TO_EXPRESSION[REACT_EXPRESSIONS[int(np.argmax(values[n_au + 2:]))]]
    return units, valence, arousal, expression
