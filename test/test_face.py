"""Tests of the facial vocabularies and their array helpers."""

import numpy as np
import pytest

from listener_head_ros.face import (
    ACTION_UNIT_INDEX,
    ACTION_UNITS,
    ARKIT_BLENDSHAPES,
    BLENDSHAPE_INDEX,
    EXPRESSIONS,
    FACEVERSE_TO_ARKIT,
    FACEVERSE_V2_EXPRESSIONS,
    REACT_ACTION_UNITS,
    REACT_EXPRESSIONS,
    REACT_TO_EXPRESSION,
    action_unit_array,
    blendshape_array,
    faceverse_blendshapes,
    facs_number,
    named_values,
    react_attributes_to_face,
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
    assert len(ACTION_UNITS) == 16 == len(set(ACTION_UNITS))
    assert ACTION_UNITS == tuple(sorted(ACTION_UNITS))
    assert {f"AU{int(name[2:]):02d}" for name in REACT_ACTION_UNITS} | {"AU45"} == set(
        ACTION_UNITS)
    assert [facs_number(name) for name in ("AU01", "AU09", "AU12", "AU45")] == [1, 9, 12, 45]
    assert ACTION_UNIT_INDEX["AU01"] == 0
    assert len(EXPRESSIONS) == 25 == len(set(EXPRESSIONS))
    assert EXPRESSIONS[0] == "neutral" and {"happy", "confused", "excited"} <= set(EXPRESSIONS)


def test_named_arrays_round_trip():
    weights = blendshape_array({"mouthSmileLeft": 0.5, "eyeBlinkRight": 1.0})
    assert weights.shape == (52,) and weights.dtype == np.float32
    assert weights[BLENDSHAPE_INDEX["mouthSmileLeft"]] == 0.5 and weights.sum() == 1.5
    units = action_unit_array({"AU12": 0.25})
    assert units.shape == (len(ACTION_UNITS),) and units[ACTION_UNIT_INDEX["AU12"]] == 0.25
    assert named_values(ACTION_UNITS, units)["AU12"] == 0.25
    assert named_values(ARKIT_BLENDSHAPES, weights)["eyeBlinkRight"] == 1.0


def test_unknown_names_and_wrong_sizes_are_rejected():
    with pytest.raises(ValueError):
        blendshape_array({"mouthSmile": 1.0})
    with pytest.raises(ValueError):
        action_unit_array({"AU99": 1.0})
    with pytest.raises(ValueError):
        named_values(ACTION_UNITS, np.zeros(14))
    with pytest.raises(ValueError):
        facs_number("AU99")


def test_faceverse_table_covers_every_arkit_blendshape_once():
    """The FaceVerse v2 table names 52 distinct ARKit blendshapes: a permutation, no gaps."""
    assert len(FACEVERSE_V2_EXPRESSIONS) == 52 == len(set(FACEVERSE_V2_EXPRESSIONS))
    assert set(FACEVERSE_V2_EXPRESSIONS) == set(ARKIT_BLENDSHAPES)
    assert sorted(FACEVERSE_TO_ARKIT.tolist()) == list(range(52))
    assert all(ARKIT_BLENDSHAPES[FACEVERSE_TO_ARKIT[i]] == name
               for i, name in enumerate(FACEVERSE_V2_EXPRESSIONS))


@pytest.mark.parametrize("name", ["jawOpen", "mouthSmileLeft", "eyeBlinkRight", "browInnerUp"])
def test_a_faceverse_coefficient_drives_its_blendshape(name):
    """One expression weight gives that blendshape alone, at that weight."""
    coefficients = np.zeros(52, dtype=np.float32)
    coefficients[FACEVERSE_V2_EXPRESSIONS.index(name)] = 0.4
    weights = faceverse_blendshapes(coefficients)
    assert weights.shape == (52,) and weights.dtype == np.float32
    assert weights[BLENDSHAPE_INDEX[name]] == pytest.approx(0.4) and weights.sum() == (
        pytest.approx(0.4))


def test_faceverse_weights_are_clipped_and_checked():
    """Fitted weights outside 0..1 clip, non-finite ones give 0; a wrong size raises."""
    coefficients = np.linspace(-2.0, 2.0, 52).astype(np.float32)
    coefficients[:3] = (np.nan, np.inf, -np.inf)
    weights = faceverse_blendshapes(coefficients)
    assert weights.min() == 0.0 and weights.max() == 1.0
    assert np.all(weights[FACEVERSE_TO_ARKIT[:3]] == 0.0)
    with pytest.raises(ValueError, match="52"):
        faceverse_blendshapes(np.zeros(58))


def test_react_attributes_give_all_15_units_and_a_clipped_face():
    """Every REACT AU reaches its ACTION_UNITS slot; values clip; the top expression wins."""
    attributes = np.zeros(25, dtype=np.float32)
    attributes[:15] = np.linspace(0.1, 1.5, 15)
    attributes[15:17] = (2.0, np.nan)
    attributes[17 + REACT_EXPRESSIONS.index("Surprise")] = 0.9
    units, valence, arousal, expression = react_attributes_to_face(attributes)
    for i, name in enumerate(REACT_ACTION_UNITS):
        index = ACTION_UNIT_INDEX[f"AU{int(name[2:]):02d}"]
        assert units[index] == pytest.approx(min(attributes[i], 1.0))
    assert units[ACTION_UNIT_INDEX["AU45"]] == 0.0
    assert (valence, arousal) == (1.0, 0.0)
    assert expression == REACT_TO_EXPRESSION["Surprise"] == "surprised"
    assert set(REACT_TO_EXPRESSION.values()) <= set(EXPRESSIONS)
