"""
The REACT challenge metrics for models that output several reactions per input.

Shapes: ``predictions`` is ``(N, S, T, D)`` (N inputs, S samples each, T frames, D attributes);
``appropriate[n]`` is ``(K_n, T, D)``, the real reactions deemed appropriate for input ``n``;
``speaker`` is ``(N, T, D)``. In the challenge, D = 25 facial attributes (15 AU occurrences,
valence, arousal, 8 expression probabilities) at 25 fps.

* FRC: CCC against the closest appropriate reaction (higher is better).
* FRD: DTW distance to the closest appropriate reaction (lower is better).
* FRDiv: S-MSE, the diversity among the samples of one input.
* FRVar: the variance over time within a sample.
* FRDvs: the diversity between reactions to different inputs.
* FRSyn: the lag (frames) of the peak time-lagged cross-correlation (TLCC) with the speaker.

``mode='challenge'`` follows the challenge's reference conventions, quirks included: FRC and
FRD are **summed** over the samples, and a constant channel makes the TLCC NaN, which sends
its peak to the largest lag. ``mode='corrected'`` averages over samples and leaves out
undefined (constant) channels. ``docs/metrics.md`` gives the formulas and the differences.
"""

from __future__ import annotations

from contextlib import contextmanager
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
import warnings

import numpy as np

MODES = ('challenge', 'corrected')
REACT_DIM = 25
REACT_FPS = 25.0
# (first, end, weight) of the AU, valence/arousal and expression groups in the FRD sum.
REACT_DTW_GROUPS: Tuple[Tuple[int, int, float], ...] = (
    (0, 15, 1.0 / 15.0), (15, 17, 1.0), (17, 25, 1.0 / 8.0))
# The reference CCC adds this to its denominator (challenge mode only).
CCC_EPS = 1e-8
# Largest cost matrix (elements) built at once by dtw().
_DTW_CHUNK_ELEMENTS = 16_000_000

DtwGroups = Sequence[Tuple[int, int, float]]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')


def _is_constant(x: np.ndarray, axis: int) -> np.ndarray:
    return np.ptp(x, axis=axis) == 0.0


def ccc(a: np.ndarray, b: np.ndarray, mode: str = 'corrected') -> np.ndarray:
    """
    Return the concordance correlation coefficient of each channel.

    ``CCC = 2 cov(a, b) / (var(a) + var(b) + (mean(a) - mean(b))**2)`` with population
    moments, over the time axis (second to last) of ``(..., T, D)`` arrays that broadcast.

    * ``challenge``: the Pearson factor of a constant channel is taken as 0 (so its CCC is 0,
      even when both channels are the same constant) and ``CCC_EPS`` is added to the
      denominator, as in the reference code.
    * ``corrected``: plain formula; NaN only where it is 0/0 (both channels constant and
      equal), which the callers leave out.
    """
    _check_mode(mode)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu_a = a.mean(axis=-2)
    mu_b = b.mean(axis=-2)
    cov = ((a - mu_a[..., None, :]) * (b - mu_b[..., None, :])).mean(axis=-2)
    denom = a.var(axis=-2) + b.var(axis=-2) + (mu_a - mu_b) ** 2
    if mode == 'challenge':
        constant = _is_constant(a, -2) | _is_constant(b, -2)
        return np.where(constant, 0.0, 2.0 * cov) / (denom + CCC_EPS)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(denom > 0.0, 2.0 * cov / np.where(denom > 0.0, denom, 1.0), np.nan)


def dtw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """
    Return the dynamic time warping distance between sequences.

    ``a`` is ``(..., T1, D)`` and ``b`` is ``(..., T2, D)`` (1-d inputs are one channel);
    their leading dimensions broadcast. With the local cost ``c(i, j) = ||a_i - b_j||**2``,
    the accumulated cost is ``R(i, j) = c(i, j) + min(R(i-1, j), R(i, j-1), R(i-1, j-1))``
    with no window, and the distance is ``sqrt(R(T1, T2))``. This is the convention of
    ``tslearn.metrics.dtw`` that the REACT reference code calls. O(T1 * T2) time per pair,
    vectorised over anti-diagonals and over the batch. The local costs come from one matrix
    product, so identical sequences give a distance near (not exactly) 0: about 1e-7 of
    their scale.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f'channel counts differ: {a.shape[-1]} and {b.shape[-1]}')
    t1, t2, dim = a.shape[-2], b.shape[-2], a.shape[-1]
    if t1 == 0 or t2 == 0:
        raise ValueError('dtw needs non-empty sequences')
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, lead + (t1, dim)).reshape(-1, t1, dim)
    b = np.broadcast_to(b, lead + (t2, dim)).reshape(-1, t2, dim)
    chunk = max(1, _DTW_CHUNK_ELEMENTS // (t1 * t2))
    out = np.concatenate([_dtw_batch(a[i:i + chunk], b[i:i + chunk])
                          for i in range(0, a.shape[0], chunk)])
    return out.reshape(lead)


def _dtw_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    batch, t1, t2 = a.shape[0], a.shape[1], b.shape[1]
    # Squared distances through one matrix product, after a shift common to both sequences
    # (distances do not change) that keeps the rounding of ||a||^2 + ||b||^2 - 2 a.b small.
    shift = a.mean(axis=1, keepdims=True)
    a = a - shift
    b = b - shift
    cost = ((a * a).sum(axis=2)[:, :, None] + (b * b).sum(axis=2)[:, None, :]
            - 2.0 * np.matmul(a, b.transpose(0, 2, 1)))
    cost = np.maximum(cost, 0.0).reshape(batch, t1 * t2)
    # Anti-diagonal k holds the cells i + j = k of the (T1 + 1) x (T2 + 1) accumulated-cost
    # matrix whose row 0 and column 0 are the boundary; it is stored indexed by i.
    before_last = np.full((batch, t1 + 1), np.inf)
    before_last[:, 0] = 0.0
    last = np.full((batch, t1 + 1), np.inf)
    for k in range(2, t1 + t2 + 1):
        lo, hi = max(1, k - t2), min(t1, k - 1)
        rows = np.arange(lo, hi + 1)
        current = np.full((batch, t1 + 1), np.inf)
        best = np.minimum(np.minimum(last[:, lo - 1:hi], last[:, lo:hi + 1]),
                          before_last[:, lo - 1:hi])
        current[:, lo:hi + 1] = np.take(cost, (rows - 1) * t2 + (k - rows - 1), axis=1) + best
        before_last, last = last, current
    return np.sqrt(last[:, t1])


def _check_predictions(predictions: np.ndarray) -> np.ndarray:
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim != 4 or 0 in predictions.shape:
        raise ValueError(f'predictions must have shape (N, S, T, D), got {predictions.shape}')
    if not np.all(np.isfinite(predictions)):
        raise ValueError('predictions must be finite')
    return predictions


def _check_appropriate(predictions: np.ndarray,
                       appropriate: Sequence[np.ndarray]) -> List[np.ndarray]:
    if len(appropriate) != predictions.shape[0]:
        raise ValueError(f'{len(appropriate)} appropriate sets for {predictions.shape[0]} inputs')
    sets = []
    for n, reactions in enumerate(appropriate):
        reactions = np.asarray(reactions, dtype=np.float64)
        if reactions.ndim != 3 or reactions.shape[0] == 0 \
                or reactions.shape[1:] != predictions.shape[2:]:
            raise ValueError(f'appropriate[{n}] must have shape (K>0, T, D) = '
                             f'(K, {predictions.shape[2]}, {predictions.shape[3]}), '
                             f'got {reactions.shape}')
        sets.append(reactions)
    return sets


def _over_samples(per_sample: np.ndarray, mode: str) -> float:
    """Sum (challenge) or average (corrected) over samples, then average over inputs."""
    if mode == 'challenge':
        return float(np.mean(per_sample.sum(axis=1)))
    with _quiet_nan_warnings():
        return float(np.nanmean(np.nanmean(per_sample, axis=1)))


@contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' warnings; an all-NaN mean is NaN by design."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        yield


def frc(predictions: np.ndarray, appropriate: Sequence[np.ndarray],
        mode: str = 'challenge') -> float:
    """
    Return the facial reaction correlation (FRC, higher is better).

    For each input n and sample s: the largest, over the appropriate reactions k, of the mean
    over channels of CCC(prediction, reaction k). ``challenge`` sums these over samples and
    averages over inputs; ``corrected`` averages over both and leaves out undefined channels.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    sets = _check_appropriate(predictions, appropriate)
    best = np.empty(predictions.shape[:2])
    with _quiet_nan_warnings():
        for n, reactions in enumerate(sets):
            per_channel = ccc(predictions[n][:, None], reactions[None], mode)  # (S, K, D)
            if mode == 'challenge':
                best[n] = per_channel.mean(axis=-1).max(axis=1)
            else:
                best[n] = np.nanmax(np.nanmean(per_channel, axis=-1), axis=1)
    return _over_samples(best, mode)


def _dtw_groups(dim: int, groups: Optional[DtwGroups]) -> DtwGroups:
    if groups is None:
        if dim != REACT_DIM:
            raise ValueError(f'the REACT DTW groups need D = {REACT_DIM} attributes, got {dim};'
                             ' pass dtw_groups for other data')
        return REACT_DTW_GROUPS
    for first, end, _ in groups:
        if not 0 <= first < end <= dim:
            raise ValueError(f'DTW group ({first}, {end}) does not fit D = {dim}')
    return groups


def frd(predictions: np.ndarray, appropriate: Sequence[np.ndarray], mode: str = 'challenge',
        dtw_groups: Optional[DtwGroups] = None) -> float:
    """
    Return the facial reaction distance (FRD, lower is better).

    For each input n and sample s: the smallest, over the appropriate reactions k, of
    ``sum_g w_g * dtw(prediction[:, g], reaction_k[:, g])`` over the attribute groups ``g``
    (default :data:`REACT_DTW_GROUPS`: weights 1/15, 1 and 1/8). ``challenge`` sums over
    samples and averages over inputs; ``corrected`` averages over both.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    sets = _check_appropriate(predictions, appropriate)
    groups = _dtw_groups(predictions.shape[-1], dtw_groups)
    best = np.empty(predictions.shape[:2])
    for n, reactions in enumerate(sets):
        total = sum(weight * dtw(predictions[n][:, None, :, first:end],
                                 reactions[None, :, :, first:end])
                    for first, end, weight in groups)  # (S, K)
        best[n] = total.min(axis=1)
    return _over_samples(best, mode)


def _mean_pairwise_sq(x: np.ndarray) -> np.ndarray:
    """
    Return the mean squared distance over ordered pairs of distinct rows, per element.

    ``x`` is ``(..., M, F)``; the result is ``sum_{i != j} ||x_i - x_j||**2 / (M (M-1) F)``,
    computed as ``2 sum_i ||x_i - mean||**2 / ((M-1) F)``.
    """
    m, f = x.shape[-2], x.shape[-1]
    centred = x - x.mean(axis=-2, keepdims=True)
    return 2.0 * (centred ** 2).sum(axis=(-2, -1)) / ((m - 1) * f)


def frdiv(predictions: np.ndarray, mode: str = 'challenge') -> float:
    """
    Return FRDiv (S-MSE): the diversity among the samples of one input (higher is more diverse).

    Per input, the mean over ordered pairs of distinct samples of the mean squared difference
    over frames and channels; then the mean over inputs. With one sample per input it is 0 in
    ``challenge`` mode (as the reference returns) and NaN (undefined) in ``corrected`` mode.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    n, s = predictions.shape[:2]
    if s < 2:
        return 0.0 if mode == 'challenge' else math.nan
    return float(np.mean(_mean_pairwise_sq(predictions.reshape(n, s, -1))))


def frvar(predictions: np.ndarray) -> float:
    """
    Return FRVar: the variance over time of each channel of each sample, averaged.

    Unbiased variance (divide by T - 1), as the reference's ``torch.var``; NaN if T < 2.
    The same in both modes.
    """
    predictions = _check_predictions(predictions)
    if predictions.shape[2] < 2:
        return math.nan
    return float(np.mean(np.var(predictions, axis=2, ddof=1)))


def frdvs(predictions: np.ndarray) -> float:
    """
    Return FRDvs: the diversity between the reactions to different inputs.

    For each sample index s, the mean over ordered pairs of distinct inputs of the mean
    squared difference over frames and channels between their s-th samples; then the mean
    over s. NaN with fewer than two inputs. The same in both modes.
    """
    predictions = _check_predictions(predictions)
    n, s = predictions.shape[:2]
    if n < 2:
        return math.nan
    by_sample = predictions.reshape(n, s, -1).transpose(1, 0, 2)  # (S, N, T * D)
    return float(np.mean(_mean_pairwise_sq(by_sample)))


def _window_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r over axis -2 per channel, NaN where either side is constant."""
    xc = x - x.mean(axis=-2, keepdims=True)
    yc = y - y.mean(axis=-2, keepdims=True)
    num = (xc * yc).sum(axis=-2)
    den = np.sqrt((xc ** 2).sum(axis=-2) * (yc ** 2).sum(axis=-2))
    constant = _is_constant(x, -2) | _is_constant(y, -2)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(constant, np.nan, num / np.where(constant, 1.0, den))


def tlcc_curve(listener: np.ndarray, speaker: np.ndarray, max_lag: int) -> np.ndarray:
    """
    Return the per-channel Pearson's r of the listener and speaker at each lag.

    ``listener`` is ``(..., T, D)``, ``speaker`` is ``(T, D)``; the result is
    ``(..., 2 * max_lag + 1, D)`` for lags ``-max_lag .. max_lag``. At lag L > 0 the listener
    frame ``t + L`` is paired with the speaker frame ``t`` (the listener follows); at L < 0
    the speaker follows. A channel constant over a window gives NaN.
    """
    t = listener.shape[-2]
    if not 0 <= max_lag < t - 1:
        raise ValueError(f'max_lag must be in [0, T - 2] = [0, {t - 2}], got {max_lag}')
    curves = []
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            curves.append(_window_pearson(listener[..., lag:, :], speaker[:t - lag]))
        else:
            curves.append(_window_pearson(listener[..., :lag, :], speaker[-lag:]))
    return np.stack(curves, axis=-2)


def tlcc_offsets(listener: np.ndarray, speaker: np.ndarray, max_lag: int,
                 mode: str = 'challenge') -> np.ndarray:
    """
    Return the absolute lag (frames) of the peak channel-mean TLCC of each listener sequence.

    ``listener`` is ``(..., T, D)`` and ``speaker`` ``(T, D)``; the result has shape ``(...)``.
    The curve is the mean over channels of :func:`tlcc_curve`; its first maximum wins ties.

    * ``challenge``: a NaN channel makes the mean NaN at that lag and the first NaN lag is
      taken as the peak (the reference's argmax treats NaN as the maximum), so a channel
      constant over the clip puts the peak at ``-max_lag``: offset ``max_lag``.
    * ``corrected``: NaN channels are left out of the mean; a sequence with no defined
      channel at any lag gives NaN.
    """
    _check_mode(mode)
    curve = tlcc_curve(listener, speaker, max_lag)  # (..., L, D)
    lags = np.arange(-max_lag, max_lag + 1, dtype=np.float64)
    if mode == 'challenge':
        mean = curve.mean(axis=-1)
        peak = np.where(np.isnan(mean).any(axis=-1),
                        np.argmax(np.isnan(mean), axis=-1),
                        np.argmax(np.nan_to_num(mean, nan=-np.inf), axis=-1))
        return np.abs(lags[peak])
    with _quiet_nan_warnings():
        mean = np.nanmean(curve, axis=-1)
    undefined = np.isnan(mean).all(axis=-1)
    peak = np.argmax(np.where(np.isnan(mean), -np.inf, mean), axis=-1)
    return np.where(undefined, np.nan, np.abs(lags[peak]))


def frsyn(predictions: np.ndarray, speaker: np.ndarray, mode: str = 'challenge',
          fps: float = REACT_FPS, seconds: float = 2.0) -> float:
    """
    Return FRSyn: the mean absolute TLCC peak lag, in frames, between listener and speaker.

    Lags run over ``-(W - 1) .. W - 1`` with ``W = round(seconds * fps)`` (±49 frames for 2 s at
    25 fps), the range of the reference code. Speaker and prediction channels are paired one to
    one, so they need the same D. The mean runs over all inputs and samples in both modes
    (the reference averages here); see :func:`tlcc_offsets` for the per-mode NaN handling.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    speaker = np.asarray(speaker, dtype=np.float64)
    if speaker.shape != (predictions.shape[0],) + predictions.shape[2:]:
        raise ValueError(f'speaker must have shape (N, T, D) = ({predictions.shape[0]}, '
                         f'{predictions.shape[2]}, {predictions.shape[3]}), got {speaker.shape}')
    max_lag = int(round(seconds * fps)) - 1
    offsets = np.stack([tlcc_offsets(predictions[n], speaker[n], max_lag, mode)
                        for n in range(predictions.shape[0])])
    with _quiet_nan_warnings():
        return float(np.nanmean(offsets))


def react_metrics(predictions: np.ndarray, appropriate: Optional[Sequence[np.ndarray]] = None,
                  speaker: Optional[np.ndarray] = None, mode: str = 'challenge',
                  fps: float = REACT_FPS, tlcc_seconds: float = 2.0,
                  dtw_groups: Optional[DtwGroups] = None) -> Dict[str, Any]:
    """
    Compute the REACT suite.

    :param predictions: ``(N, S, T, D)`` generated reactions (S samples per input).
    :param appropriate: per input, ``(K_n, T, D)`` appropriate real reactions; without it,
        FRC and FRD are None.
    :param speaker: ``(N, T, D)`` speaker attributes; without it, FRSyn is None.
    :param mode: ``'challenge'`` (the reference conventions) or ``'corrected'``.
    :param fps: frame rate, for the TLCC window.
    :param tlcc_seconds: half-width of the TLCC window in seconds.
    :param dtw_groups: ``(first, end, weight)`` attribute groups for FRD; default the REACT
        groups (needs D = 25).
    :returns: ``{'mode', 'n_inputs', 'n_samples', 'FRC', 'FRD', 'FRDiv', 'FRVar', 'FRDvs',
        'FRSyn'}``; a metric can be NaN where it is undefined (see the metric functions).
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    have_sets = appropriate is not None
    return {
        'mode': mode,
        'n_inputs': int(predictions.shape[0]),
        'n_samples': int(predictions.shape[1]),
        'FRC': frc(predictions, appropriate, mode) if have_sets else None,
        'FRD': frd(predictions, appropriate, mode, dtw_groups) if have_sets else None,
        'FRDiv': frdiv(predictions, mode),
        'FRVar': frvar(predictions),
        'FRDvs': frdvs(predictions),
        'FRSyn': (frsyn(predictions, speaker, mode, fps, tlcc_seconds)
                  if speaker is not None else None),
    }
