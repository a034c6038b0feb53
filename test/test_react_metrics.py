"""Hand-computed checks of the REACT metrics in challenge and corrected modes."""

import math

import numpy as np
import pytest

from listener_head_ros.eval.react_metrics import (
    ccc, dtw, frc, frd, frdiv, frdvs, frsyn, frvar, react_metrics, tlcc_curve, tlcc_offsets)

A = np.array([1.0, 2.0, 3.0])


def _col(*values):
    """Return a (T, 1) array: one channel."""
    return np.asarray(values, dtype=np.float64)[:, None]


def _brute_dtw(a, b):
    """Return DTW by the textbook double loop (squared local cost, square root at the end)."""
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            acc[i, j] = np.sum((a[i - 1] - b[j - 1]) ** 2) + min(
                acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return math.sqrt(acc[-1, -1])


@pytest.mark.parametrize('mode', ['challenge', 'corrected'])
def test_ccc_of_identical_is_one(mode):
    # var = 2/3, cov = 2/3: CCC = 2 (2/3) / (2/3 + 2/3 + 0) = 1 (challenge: + 1e-8 in the
    # denominator).
    assert ccc(_col(*A), _col(*A), mode)[0] == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize('mode', ['challenge', 'corrected'])
def test_ccc_of_scaled_and_shifted(mode):
    # b = 2a + 1 = (3, 5, 7): means 2 and 5, var 2/3 and 8/3, cov 4/3.
    # CCC = 2 (4/3) / (2/3 + 8/3 + 3^2) = (8/3) / (37/3) = 8/37.
    assert ccc(_col(*A), _col(*(2 * A + 1)), mode)[0] == pytest.approx(8 / 37, rel=1e-6)


def test_ccc_of_constant_channels_per_mode():
    # Both constant and equal: 0/0. The challenge takes r = 0, so CCC = 0; corrected gives NaN.
    same = _col(2.0, 2.0, 2.0)
    assert ccc(same, same, 'challenge')[0] == 0.0
    assert math.isnan(ccc(same, same, 'corrected')[0])
    # One side constant: cov = 0, so CCC = 0 in both modes.
    assert ccc(same, _col(*A), 'corrected')[0] == 0.0
    assert ccc(same, _col(*A), 'challenge')[0] == 0.0


def test_dtw_hand_values():
    # a = (0, 1, 2), b = (0, 2): squared costs rows a, columns b: [[0, 4], [1, 1], [4, 0]].
    # R(1,1)=0, R(2,1)=1, R(3,1)=5, R(1,2)=4, R(2,2)=1+min(4,1,0)=1, R(3,2)=0+min(1,5,1)=1.
    assert dtw(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0])) == pytest.approx(1.0)
    # a = (1, 3), b = (2): both frames match b, 1 + 1 = 2, distance sqrt(2).
    assert dtw(np.array([1.0, 3.0]), np.array([2.0])) == pytest.approx(math.sqrt(2.0))
    # 2-d: a = ((0,0), (1,1)), b = ((0,0), (1,2)): the diagonal path costs 0 + 1 = 1.
    assert dtw(np.array([[0.0, 0.0], [1.0, 1.0]]),
               np.array([[0.0, 0.0], [1.0, 2.0]])) == pytest.approx(1.0)


def test_dtw_matches_the_textbook_recursion_and_broadcasts():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 1, 9, 3))
    b = rng.normal(size=(1, 3, 6, 3))
    out = dtw(a, b)
    assert out.shape == (2, 3)
    for i in range(2):
        for k in range(3):
            assert out[i, k] == pytest.approx(_brute_dtw(a[i, 0], b[0, k]), rel=1e-9)


def _frc_case():
    """Return (predictions (1, 2, 3, 1), appropriate) for the FRC/FRD hand cases."""
    # Appropriate reactions r1 = (1, 2, 3) and r2 = (3, 2, 1).
    # Sample 1 = (1, 2, 3): CCC 1 with r1, -1 with r2: best 1.
    # Sample 2 = (3, 5, 7) = 2 r1 + 1: CCC 8/37 with r1, -8/37 with r2: best 8/37.
    preds = np.stack([A, 2 * A + 1])[None, :, :, None]
    appropriate = [np.stack([A, A[::-1]])[:, :, None]]
    return preds, appropriate


def test_frc_sums_over_samples_in_challenge_and_averages_in_corrected():
    preds, appropriate = _frc_case()
    assert frc(preds, appropriate, 'challenge') == pytest.approx(1 + 8 / 37, rel=1e-6)
    assert frc(preds, appropriate, 'corrected') == pytest.approx((1 + 8 / 37) / 2, rel=1e-9)


def test_frc_averages_over_inputs_and_channels():
    # Input 1: one sample equal to its reaction on channel 0 (CCC 1), channel 1 of the
    # reaction is constant 0 while the sample's is (1, 2, 3) (CCC 0): mean over channels 1/2.
    # Input 2: sample (3, 2, 1) against (1, 2, 3) on both channels: CCC -1.
    # FRC = mean over inputs of (1/2, -1) = -1/4 in both modes (one sample: sum = mean).
    preds = np.zeros((2, 1, 3, 2))
    preds[0, 0] = np.stack([A, A], axis=1)
    preds[1, 0] = np.stack([A[::-1], A[::-1]], axis=1)
    appropriate = [np.stack([A, np.zeros(3)], axis=1)[None], np.stack([A, A], axis=1)[None]]
    for mode in ('challenge', 'corrected'):
        assert frc(preds, appropriate, mode) == pytest.approx(-0.25, rel=1e-6)


def test_frc_corrected_leaves_out_constant_channels():
    # Channel 0 matches exactly (CCC 1); channel 1 is 5 in both prediction and reaction.
    # Challenge: CCC 0 on channel 1, mean (1 + 0) / 2 = 0.5. Corrected: channel 1 is
    # undefined and left out, so 1.
    pred = np.stack([A, np.full(3, 5.0)], axis=1)[None, None]
    appropriate = [pred[0]]
    assert frc(pred, appropriate, 'challenge') == pytest.approx(0.5, rel=1e-6)
    assert frc(pred, appropriate, 'corrected') == pytest.approx(1.0)


def test_frd_takes_the_closest_reaction_with_group_weights():
    # Channel 0: sample (0, 1, 2); reactions (0, 0, 2) and (5, 5, 5).
    # DTW to (0, 0, 2): costs [[0,0,4],[1,1,1],[4,4,0]] -> R(3,3) = 1 -> distance 1.
    # Channel 1 (weight 0.5): sample (0, 0, 0) vs (0, 0, 0) -> 0. Total 1 + 0.5 * 0 = 1;
    # the other reaction is farther. Two identical samples: challenge 1 + 1 = 2, corrected 1.
    sample = np.stack([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]], axis=1)
    near = np.stack([[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]], axis=1)
    far = np.full((3, 2), 5.0)
    preds = np.stack([sample, sample])[None]
    groups = ((0, 1, 1.0), (1, 2, 0.5))
    appropriate = [np.stack([far, near])]
    assert frd(preds, appropriate, 'challenge', groups) == pytest.approx(2.0)
    assert frd(preds, appropriate, 'corrected', groups) == pytest.approx(1.0)


def test_frd_react_group_weights():
    # One frame, prediction 0 and reaction 1 on all 25 attributes. Per group the DTW is
    # sqrt(group size): AU sqrt(15) / 15 + VA sqrt(2) * 1 + expressions sqrt(8) / 8.
    preds = np.zeros((1, 1, 1, 25))
    appropriate = [np.ones((1, 1, 25))]
    expected = math.sqrt(15) / 15 + math.sqrt(2) + math.sqrt(8) / 8
    assert frd(preds, appropriate, 'challenge') == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError):
        frd(np.zeros((1, 1, 1, 3)), [np.ones((1, 1, 3))])  # default groups need D = 25


@pytest.mark.parametrize('samples', [1, 2, 5])
def test_challenge_scales_with_the_number_of_samples_and_corrected_does_not(samples):
    # The same sample repeated S times: the challenge FRC and FRD are S times the corrected
    # ones; the corrected values do not depend on S.
    preds, appropriate = _frc_case()
    repeated = np.repeat(preds[:, 1:], samples, axis=1)
    single = frc(repeated[:, :1], appropriate, 'corrected')
    assert frc(repeated, appropriate, 'corrected') == pytest.approx(single)
    assert frc(repeated, appropriate, 'challenge') == pytest.approx(samples * single, rel=1e-6)
    groups = ((0, 1, 1.0),)
    d1 = frd(repeated[:, :1], appropriate, 'corrected', groups)
    assert frd(repeated, appropriate, 'corrected', groups) == pytest.approx(d1)
    assert frd(repeated, appropriate, 'challenge', groups) == pytest.approx(samples * d1)


def test_frdiv_two_samples():
    # Samples (0, 0) and (1, 3): MSE = (1 + 9) / 2 = 5 for each of the 2 ordered pairs,
    # S-MSE = (5 + 5) / (2 * 1) = 5.
    preds = np.array([[[0.0, 0.0], [1.0, 3.0]]])[..., None]
    assert frdiv(preds) == pytest.approx(5.0)


def test_frdiv_three_samples_and_one_sample():
    # One frame, samples 0, 1, 2: squared differences 1, 4, 1 per unordered pair;
    # over 6 ordered pairs (2 + 8 + 2) / 6 = 2.
    preds = np.array([0.0, 1.0, 2.0])[None, :, None, None]
    assert frdiv(preds) == pytest.approx(2.0)
    assert frdiv(preds[:, :1], 'challenge') == 0.0
    assert math.isnan(frdiv(preds[:, :1], 'corrected'))


def test_frvar():
    # Unbiased variance over time: (1, 2, 3) -> 1; (0, 0, 3) -> (1 + 1 + 4) / 2 = 3; mean 2.
    preds = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]])[None, :, :, None]
    assert frvar(preds) == pytest.approx(2.0)


def test_frdvs():
    # Sample 0: inputs (0, 0) and (1, 3): MSE 5. Sample 1: inputs (1, 1) and (1, 2): MSE 1/2.
    # Mean over samples (5 + 0.5) / 2 = 2.75.
    preds = np.array([[[0.0, 0.0], [1.0, 1.0]],
                      [[1.0, 3.0], [1.0, 2.0]]])[..., None]
    assert frdvs(preds) == pytest.approx(2.75)
    assert math.isnan(frdvs(preds[:1]))


def _lagged_pair(lag, t=200, dim=2):
    """Return (listener, speaker) with listener[t] = speaker[t - lag] where both exist."""
    rng = np.random.default_rng(7)
    speaker = rng.normal(size=(t, dim))
    listener = rng.normal(size=(t, dim))
    if lag >= 0:
        listener[lag:] = speaker[:t - lag]
    else:
        listener[:lag] = speaker[-lag:]
    return listener, speaker


@pytest.mark.parametrize('lag', [7, -4, 0])
@pytest.mark.parametrize('mode', ['challenge', 'corrected'])
def test_tlcc_recovers_a_planted_lag(lag, mode):
    listener, speaker = _lagged_pair(lag)
    curve = tlcc_curve(listener, speaker, 10)
    assert curve[10 + lag] == pytest.approx([1.0, 1.0])
    assert tlcc_offsets(listener, speaker, 10, mode) == abs(lag)


def test_tlcc_constant_channel_falls_to_the_max_lag_only_in_challenge():
    # Channel 1 of the listener is constant: its r is NaN at every lag. The challenge takes
    # the first NaN lag (-max_lag) as the peak: offset = max_lag = 2 s * 25 fps - 1 = 49.
    # Corrected leaves channel 1 out and finds the planted lag 7 on channel 0.
    listener, speaker = _lagged_pair(7)
    listener[:, 1] = 0.0
    preds = listener[None, None]
    assert frsyn(preds, speaker[None], 'challenge') == 49.0
    assert frsyn(preds, speaker[None], 'corrected') == 7.0
    # The window follows fps: at 5 fps, +-2 s is lags -9..9.
    assert frsyn(preds, speaker[None], 'challenge', fps=5.0) == 9.0


def test_frsyn_averages_over_inputs_and_samples():
    # Offsets 7 and 3 (two samples of one input): mean 5 in both modes.
    l7, speaker = _lagged_pair(7)
    l3, _ = _lagged_pair(3)
    preds = np.stack([l7, l3])[None]
    for mode in ('challenge', 'corrected'):
        assert frsyn(preds, speaker[None], mode) == 5.0


def test_react_metrics_suite():
    rng = np.random.default_rng(0)
    preds = rng.random((2, 3, 60, 25))
    appropriate = [rng.random((2, 60, 25)) for _ in range(2)]
    speaker = rng.random((2, 60, 25))
    out = react_metrics(preds, appropriate, speaker, mode='challenge')
    corrected = react_metrics(preds, appropriate, speaker, mode='corrected')
    assert set(out) == {'mode', 'n_inputs', 'n_samples', 'FRC', 'FRD', 'FRDiv', 'FRVar',
                        'FRDvs', 'FRSyn'}
    assert (out['n_inputs'], out['n_samples']) == (2, 3)
    assert out['FRC'] == pytest.approx(3 * corrected['FRC'], rel=1e-6)
    assert out['FRD'] == pytest.approx(3 * corrected['FRD'])
    for key in ('FRDiv', 'FRVar', 'FRDvs', 'FRSyn'):
        assert out[key] == pytest.approx(corrected[key])
    partial = react_metrics(preds)
    assert partial['FRC'] is None and partial['FRSyn'] is None
    with pytest.raises(ValueError):
        react_metrics(preds, mode='official')
    with pytest.raises(ValueError):
        react_metrics(preds, appropriate[:1])
