"""Hand-computed checks of the Active Listener head-pose metrics."""

import json
import math

import numpy as np
import pytest

from listener_head_ros.eval.head_metrics import (
    aggregate, cross_validate, neutral_baseline, pearson, score_utterances, utterance_metrics)


def _rad(values):
    """Return radians of a (T, 3) array given in degrees."""
    return np.radians(np.asarray(values, dtype=np.float64))


def _same_on_axes(column):
    """Return a (T, 3) array repeating one column of degrees on all three axes, in radians."""
    return _rad(np.repeat(np.asarray(column, dtype=np.float64)[:, None], 3, axis=1))


def test_constant_offset_mae_in_degrees():
    # 2 frames, error 1, 2, 3 degrees on roll, pitch, yaw: MAE = (1, 2, 3), mean (1+2+3)/3 = 2.
    truth = np.zeros((2, 3))
    pred = _rad([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    m = utterance_metrics(pred, truth)
    assert m.mae_deg == pytest.approx((1.0, 2.0, 3.0))
    assert m.mae_mean_deg == pytest.approx(2.0)
    assert m.n_frames == 2


def test_mae_takes_absolute_values():
    # Errors +4 and -2 degrees on roll: MAE = (4 + 2) / 2 = 3 (not (4 - 2) / 2 = 1).
    truth = np.zeros((2, 3))
    pred = _rad([[4.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    assert utterance_metrics(pred, truth).mae_deg[0] == pytest.approx(3.0)


def test_pearson_linear_relations():
    x = np.array([0.1, 0.2, 0.4, 0.3])
    assert pearson(x, 3.0 * x - 1.0) == pytest.approx(1.0)
    assert pearson(x, -2.0 * x) == pytest.approx(-1.0)


def test_pearson_hand_value():
    # x = [1, 2, 3], y = [1, 3, 2]: centred (-1, 0, 1) and (-1, 1, 0);
    # r = (1 + 0 + 0) / sqrt(2 * 2) = 0.5.
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)


def test_pearson_constant_is_nan_and_excluded_from_the_axis_mean():
    # Roll and pitch follow the truth (r = 1); yaw prediction is constant: r undefined.
    truth = _rad([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])
    pred = truth.copy()
    pred[:, 2] = 0.0
    m = utterance_metrics(pred, truth)
    assert m.pearson[:2] == pytest.approx((1.0, 1.0))
    assert math.isnan(m.pearson[2])
    assert m.pearson_mean == pytest.approx(1.0)  # mean of (1, 1), yaw left out
    agg = aggregate([m])
    assert agg.n_pearson == {'roll': 1, 'pitch': 1, 'yaw': 0}
    assert math.isnan(agg.pearson['yaw'])
    assert agg.pearson_mean == pytest.approx(1.0)


def test_pearson_aggregate_skips_undefined_utterances():
    # Utterance A: r = 1 on every axis. Utterance B: constant truth, r = NaN on every axis.
    # The mean over utterances uses A only: 1, with n_pearson = 1.
    a = utterance_metrics(_same_on_axes([0.0, 2.0]), _same_on_axes([1.0, 3.0]))
    b = utterance_metrics(_same_on_axes([0.0, 2.0]), _same_on_axes([5.0, 5.0]))
    agg = aggregate([a, b])
    assert agg.pearson == pytest.approx({'roll': 1.0, 'pitch': 1.0, 'yaw': 1.0})
    assert agg.n_pearson == {'roll': 1, 'pitch': 1, 'yaw': 1}


def test_per_utterance_and_pooled_mae_differ_on_unequal_lengths():
    # A: 1 frame, error 1 deg. B: 3 frames, error 3 deg (all axes).
    # Per-utterance mean (protocol): (1 + 3) / 2 = 2. Pooled over frames: (1 + 3 * 3) / 4 = 2.5.
    a = utterance_metrics(_same_on_axes([1.0]), np.zeros((1, 3)))
    b = utterance_metrics(_same_on_axes([3.0, 3.0, 3.0]), np.zeros((3, 3)))
    agg = aggregate([a, b])
    assert agg.mae_deg['roll'] == pytest.approx(2.0)
    assert agg.mae_mean_deg == pytest.approx(2.0)
    assert agg.pooled_mae_deg['yaw'] == pytest.approx(2.5)
    assert agg.pooled_mae_mean_deg == pytest.approx(2.5)
    assert (agg.n_utterances, agg.n_frames) == (2, 4)


def test_pooled_pearson_hand_value():
    # A: pred (0, 1), truth (0, 1): r = 1. B: pred (2, 3), truth (3, 2): r = -1. Mean r = 0.
    # Pooled: x = (0, 1, 2, 3), y = (0, 1, 3, 2), centred (-1.5, -.5, .5, 1.5) and
    # (-1.5, -.5, 1.5, .5): sum xy = 2.25 + .25 + .75 + .75 = 4, sum x^2 = sum y^2 = 5, r = 0.8.
    a = utterance_metrics(_same_on_axes([0.0, 1.0]), _same_on_axes([0.0, 1.0]))
    b = utterance_metrics(_same_on_axes([2.0, 3.0]), _same_on_axes([3.0, 2.0]))
    agg = aggregate([a, b])
    assert agg.pearson['roll'] == pytest.approx(0.0)
    assert agg.pooled_pearson['pitch'] == pytest.approx(0.8)


def test_neutral_baseline():
    # Truth roll (2, -4) deg, pitch (1, 1), yaw (0, 6): predicting zeros gives MAE
    # roll (2 + 4) / 2 = 3, pitch 1, yaw 3, mean 7 / 3; r undefined (constant prediction).
    truth = _rad([[2.0, 1.0, 0.0], [-4.0, 1.0, 6.0]])
    m = neutral_baseline([truth])
    assert m.mae_deg == pytest.approx({'roll': 3.0, 'pitch': 1.0, 'yaw': 3.0})
    assert m.mae_mean_deg == pytest.approx(7.0 / 3.0)
    assert math.isnan(m.pearson_mean)
    d = m.to_dict()
    assert d['pearson_mean'] is None and d['n_pearson'] == {'roll': 0, 'pitch': 0, 'yaw': 0}
    json.dumps(d, allow_nan=False)


def test_cross_validation_per_fold_and_overall():
    # Fold A: one utterance with error 1 deg. Fold B: utterances with errors 2 and 6 deg.
    # Fold MAEs 1 and (2 + 6) / 2 = 4: fold mean 2.5, population std 1.5.
    # Overall, each utterance once: (1 + 2 + 6) / 3 = 3.
    def utt(err):
        return utterance_metrics(_same_on_axes([err, err]), np.zeros((2, 3)))

    cv = cross_validate({'A': [utt(1.0)], 'B': [utt(2.0), utt(6.0)]})
    assert cv.folds['A'].mae_mean_deg == pytest.approx(1.0)
    assert cv.folds['B'].mae_mean_deg == pytest.approx(4.0)
    assert cv.overall.mae_mean_deg == pytest.approx(3.0)
    assert cv.fold_mean_mae_deg['mean'] == pytest.approx(2.5)
    assert cv.fold_std_mae_deg['roll'] == pytest.approx(1.5)
    json.dumps(cv.to_dict(), allow_nan=False)


def test_score_utterances_matches_aggregate():
    truth = [_same_on_axes([0.0, 1.0, 2.0]), _same_on_axes([4.0])]
    pred = [_same_on_axes([1.0, 1.0, 1.0]), _same_on_axes([0.0])]
    # Utterance errors (1, 0, 1) -> 2/3 and (4) -> 4: mean (2/3 + 4) / 2 = 7/3.
    assert score_utterances(pred, truth).mae_mean_deg == pytest.approx(7.0 / 3.0)


@pytest.mark.parametrize('pred,truth', [
    (np.zeros((3, 3)), np.zeros((2, 3))),
    (np.zeros((3, 2)), np.zeros((3, 2))),
    (np.zeros((0, 3)), np.zeros((0, 3))),
    (np.full((2, 3), np.nan), np.zeros((2, 3))),
])
def test_bad_inputs_are_refused(pred, truth):
    with pytest.raises(ValueError):
        utterance_metrics(pred, truth)


def test_empty_aggregate_is_refused():
    with pytest.raises(ValueError):
        aggregate([])
