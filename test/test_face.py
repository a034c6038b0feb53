"""Tests of the facial vocabularies and their array helpers."""

import numpy as np
import pytest

from listener_head_ros.face import (
    ACTION_UNIT_INDEX,
    ACTION_UNITS,
    ARKIT_BLENDSHAPES,
    BLENDSHAPE_INDEX,
    EXPRESSIONS,
    action_unit_array,
    blendshape_array,
    named_values,
)


def test_arkit_blendshapes_are_the_52_in_apple_order():
    assert len(ARKIT_BLENDSHAPES) == 52 == len(set(ARKIT_BLENDSHAPES))
    assert ARKIT_BLENDSHAPES[:3] == ("eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft")
    assert ARKIT_BLENDSHAPES[7] == "eyeBlinkRight"
    assert ARKIT_BLENDSHAPES[14:18] == ("jawForward", "jawLeft", "jawRight", "jawOpen")
    assert ARKIT_BLENDSHAPES[-1] == "tongueOut"
    for side in ("Left", "Right"):
        for stem in ("mouthSmile", "mouthFrown", "cheekSquint", "browOuterUp", "noseSneer"):
            assert stem + side in BLENDSHAPE_INDEX
    assert {"browInnerUp", "cheekPuff", "mouthClose", "mouthFunnel"} <= set(ARKIT_BLENDSHAPES)
    assert all(ARKIT_BLENDSHAPES[i] == name for name, i in BLENDSHAPE_INDEX.items())


def test_action_units_and_expressions():
    assert len(ACTION_UNITS) == 15 == len(set(ACTION_UNITS))
    assert ACTION_UNITS == tuple(sorted(ACTION_UNITS))
    assert {"AU12", "AU45"} <= set(ACTION_UNITS)
    assert ACTION_UNIT_INDEX["AU01"] == 0
    assert len(EXPRESSIONS) == 25 == len(set(EXPRESSIONS))
    assert EXPRESSIONS[0] == "neutral" and {"happy", "confused", "excited"} <= set(EXPRESSIONS)


def test_named_arrays_round_trip():
    weights = blendshape_array({"mouthSmileLeft": 0.5, "eyeBlinkRight": 1.0})
    assert weights.shape == (52,) and weights.dtype == np.float32
    assert weights[BLENDSHAPE_INDEX["mouthSmileLeft"]] == 0.5 and weights.sum() == 1.5
    units = action_unit_array({"AU12": 0.25})
    assert units.shape == (15,) and units[ACTION_UNIT_INDEX["AU12"]] == 0.25
    assert named_values(ACTION_UNITS, units)["AU12"] == 0.25
    assert named_values(ARKIT_BLENDSHAPES, weights)["eyeBlinkRight"] == 1.0


def test_unknown_names_and_wrong_sizes_are_rejected():
    with pytest.raises(ValueError):
        blendshape_array({"mouthSmile": 1.0})
    with pytest.raises(ValueError):
        action_unit_array({"AU99": 1.0})
    with pytest.raises(ValueError):
        named_values(ACTION_UNITS, np.zeros(14))
