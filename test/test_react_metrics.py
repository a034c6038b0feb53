"""Hand-computed checks of the REACT metrics in challenge and corrected modes."""

import math

import numpy as np
import pytest

from listener_head_ros.eval.react_metrics import (
    ccc, dtw, dtw_table, frc, frd, frdiv, frdvs, frsyn, frvar, grouped_dtw, react_metrics,
    REACT_DTW_GROUPS, tlcc_curve, tlcc_max_lag, tlcc_offsets)

A = np.array([1.0, 2.0, 3.0])


def _col(*values):
    """Return a (T, 1) array: one channel."""
    return np.asarray(values, dtype=np.float64)[:, None]


def _brute_dtw(a, b, band=None):
    """Return DTW by the textbook double loop (squared local cost, square root at the end)."""
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    width = np.inf if band is None else max(band, abs(len(a) - len(b)))
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if abs(i - j) > width:
                continue
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
    # the other reaction is farther. Two identical samples: challenge 1 + 1 = 2; corrected
    # the mean 1 divided by sqrt(T) = sqrt(3).
    sample = np.stack([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]], axis=1)
    near = np.stack([[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]], axis=1)
    far = np.full((3, 2), 5.0)
    preds = np.stack([sample, sample])[None]
    groups = ((0, 1, 1.0), (1, 2, 0.5))
    appropriate = [np.stack([far, near])]
    assert frd(preds, appropriate, 'challenge', groups) == pytest.approx(2.0)
    assert frd(preds, appropriate, 'corrected', groups) == pytest.approx(1.0 / math.sqrt(3))


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
    # (The challenge FRD is also not divided by sqrt(T = 3).)
    assert frd(repeated, appropriate, 'challenge', groups) == pytest.approx(
        samples * math.sqrt(3) * d1)


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
    # The challenge window ignores the data's fps (quirk d): still 49 at 5 fps, where the
    # corrected window is +-(2 s * 5 fps - 1) = +-9 and still finds 7.
    assert frsyn(preds, speaker[None], 'challenge', fps=5.0) == 49.0
    assert frsyn(preds, speaker[None], 'corrected', fps=5.0) == 7.0


def test_frsyn_challenge_scores_only_the_first_sample():
    # Quirk (b). Offsets 7 and 3 (two samples of one input): the challenge scores sample 0
    # only (7); corrected averages both (5). Swapping the samples gives 3 in the challenge.
    l7, speaker = _lagged_pair(7)
    l3, _ = _lagged_pair(3)
    preds = np.stack([l7, l3])[None]
    assert frsyn(preds, speaker[None], 'challenge') == 7.0
    assert frsyn(preds, speaker[None], 'corrected') == 5.0
    assert frsyn(preds[:, ::-1], speaker[None], 'challenge') == 3.0


def test_frsyn_window_follows_the_data_fps_only_in_corrected():
    # Quirk (d). A lag of 55 frames at 30 fps (1.83 s, inside +-2 s). The challenge window
    # is +-49 frames (25 fps hard-coded), so it cannot see 55; at 30 fps corrected's window
    # is +-59 and finds it.
    listener, speaker = _lagged_pair(55, t=400)
    preds = listener[None, None]
    assert tlcc_max_lag('challenge', 30.0) == 49 and tlcc_max_lag('corrected', 30.0) == 59
    assert frsyn(preds, speaker[None], 'corrected', fps=30.0) == 55.0
    assert frsyn(preds, speaker[None], 'challenge', fps=30.0) != 55.0
    assert frsyn(preds, speaker[None], 'challenge', fps=30.0) <= 49.0


def test_frd_corrected_does_not_grow_with_the_clip_length():
    # Quirk (e). The prediction is 0.5 above a constant reaction, for T = 10 and T = 40
    # frames. Every path has at least T cells of cost 0.25, so the diagonal is optimal:
    # R = T * 0.25, and the challenge FRD is
    # sqrt(T) / 2: 1.58 and 3.16 (doubling with 4x the frames); corrected divides by
    # sqrt(T): 0.5 for both.
    groups = ((0, 1, 1.0),)
    for t in (10, 40):
        reaction = np.full((t, 1), 2.0)
        preds = (reaction + 0.5)[None, None]
        assert frd(preds, [reaction[None]], 'challenge', groups) == pytest.approx(
            math.sqrt(t) / 2)
        assert frd(preds, [reaction[None]], 'corrected', groups) == pytest.approx(0.5)


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
    # Challenge sums the raw DTW; corrected averages the DTW / sqrt(T = 60).
    assert out['FRD'] == pytest.approx(3 * math.sqrt(60) * corrected['FRD'])
    for key in ('FRDiv', 'FRVar', 'FRDvs'):
        assert out[key] == pytest.approx(corrected[key])
    assert out['FRSyn'] == frsyn(preds[:, :1], speaker, 'corrected', fps=25.0)
    partial = react_metrics(preds)
    assert partial['FRC'] is None and partial['FRSyn'] is None
    with pytest.raises(ValueError):
        react_metrics(preds, mode='official')
    with pytest.raises(ValueError):
        react_metrics(preds, appropriate[:1])


@pytest.mark.parametrize('shape', [(9, 6), (12, 12), (5, 11), (1, 4)])
@pytest.mark.parametrize('band', [1, 2, 4, None])
def test_banded_dtw_matches_the_banded_recursion(shape, band):
    # A Sakoe-Chiba band keeps |i - j| <= max(band, |T1 - T2|); band >= max(T1, T2) - 1 is
    # the full DTW, and a narrower band can only add cost.
    rng = np.random.default_rng(sum(shape) + (band or 0))
    a, b = rng.normal(size=(shape[0], 2)), rng.normal(size=(shape[1], 2))
    assert dtw(a, b, band) == pytest.approx(_brute_dtw(a, b, band), rel=1e-9)
    assert dtw(a, b, band) >= dtw(a, b) - 1e-12
    assert dtw(a, b, max(shape) - 1) == pytest.approx(dtw(a, b), rel=1e-12)
    with pytest.raises(ValueError):
        dtw(a, b, 0)


def test_grouped_dtw_is_one_dtw_per_group():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 1, 14, 25)), rng.normal(size=(1, 2, 11, 25))
    out = grouped_dtw(a, b, REACT_DTW_GROUPS, band=6)
    assert out.shape == (3, 2, 3)
    for g, (first, end, _) in enumerate(REACT_DTW_GROUPS):
        assert out[..., g] == pytest.approx(dtw(a[..., first:end], b[..., first:end], 6))


def test_unequal_lengths_score_each_input_on_its_own_frames():
    # Inputs of 60 and 75 frames: FRC, FRD, FRDiv, FRVar and FRSyn are per-input scores, so
    # the list gives the mean of the one-input results; FRDvs compares each pair over the
    # shorter one's frames (checked by brute force).
    rng = np.random.default_rng(11)
    preds = [rng.random((3, 60, 25)), rng.random((3, 75, 25))]
    sets = [rng.random((2, 60, 25)), rng.random((2, 75, 25))]
    speakers = [rng.random((60, 25)), rng.random((75, 25))]
    for mode in ('challenge', 'corrected'):
        both = react_metrics(preds, sets, speakers, mode, dtw_band=8)
        alone = [react_metrics(p[None], [k], s[None], mode, dtw_band=8)
                 for p, k, s in zip(preds, sets, speakers)]
        for key in ('FRC', 'FRD', 'FRDiv', 'FRVar', 'FRSyn'):
            assert both[key] == pytest.approx(np.mean([a[key] for a in alone]), rel=1e-9)
    brute = np.mean([np.mean((preds[0][s] - preds[1][s, :60]) ** 2) for s in range(3)])
    assert frdvs(preds) == pytest.approx(brute, rel=1e-9)
    three = preds + [rng.random((3, 30, 25))]
    pairs = [np.mean((x[:, :m] - y[:, :m]) ** 2) for i, x in enumerate(three)
             for j, y in enumerate(three) if i != j for m in [min(x.shape[1], y.shape[1])]]
    assert frdvs(three) == pytest.approx(np.mean(pairs), rel=1e-9)


def test_allowed_masks_leave_a_sample_out_of_its_own_set():
    # Ground truth scored leave-one-out: sample k may not match reaction k. Two real
    # reactions r1 = (1, 2, 3) and r2 = (3, 2, 1) as samples: each is matched to the other
    # (CCC -1), so FRC = -1 per sample; without the mask each matches itself (CCC 1).
    reactions = np.stack([A, A[::-1]])[:, :, None]
    preds = reactions[None]
    mask = [~np.eye(2, dtype=bool)]
    assert frc(preds, [reactions], 'corrected', mask) == pytest.approx(-1.0)
    assert frc(preds, [reactions], 'corrected') == pytest.approx(1.0)
    assert frc(preds, [reactions], 'challenge', mask) == pytest.approx(-2.0, rel=1e-6)
    groups = ((0, 1, 1.0),)
    table = dtw_table(preds, [reactions], groups)
    assert frd(preds, [reactions], 'challenge', groups, allowed=mask, table=table) == \
        pytest.approx(2 * dtw(A, A[::-1]))
    # A sample with nothing allowed is left out; an input with no defined sample too.
    none = [np.zeros((2, 2), dtype=bool)]
    assert math.isnan(frc(preds, [reactions], 'corrected', none))
