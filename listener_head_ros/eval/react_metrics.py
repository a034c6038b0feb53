"""
The REACT challenge metrics for models that output several reactions per input.

Shapes: ``predictions`` is ``(N, S, T, D)`` (N inputs, S samples each, T frames, D attributes),
or a sequence of N ``(S, T_n, D)`` arrays when the inputs differ in length;
``appropriate[n]`` is ``(K_n, T_n, D)``, the real reactions deemed appropriate for input ``n``;
``speaker`` is ``(N, T, D)`` (or N ``(T_n, D)`` arrays). In the challenge, D = 25 facial
attributes (15 AU occurrences, valence, arousal, 8 expression probabilities).

* FRC: CCC against the closest appropriate reaction (higher is better).
* FRD: DTW distance to the closest appropriate reaction (lower is better).
* FRDiv: S-MSE, the diversity among the samples of one input.
* FRVar: the variance over time within a sample.
* FRDvs: the diversity between reactions to different inputs.
* FRSyn: the lag (frames) of the peak time-lagged cross-correlation (TLCC) with the speaker.

``mode='challenge'`` follows the challenge's reference code, quirks included; ``'corrected'``
fixes each quirk: (a) FRC and FRD are summed over the samples (corrected: averaged); (b) the
TLCC scores only sample 0 (corrected: every sample); (c) a constant channel makes the TLCC NaN,
which sends its peak to the largest lag (corrected: undefined channels left out); (d) the TLCC
window assumes 25 fps whatever the data (corrected: the data's ``fps``); (e) the DTW grows with
the clip's length (corrected: divided by the length, see :func:`frd`). ``docs/metrics.md``
gives the formulas, the differences and the DTW band that keeps long clips tractable.
"""

from __future__ import annotations

from contextlib import contextmanager
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union
import warnings

import numpy as np

MODES = ('challenge', 'corrected')
REACT_DIM = 25
REACT_FPS = 25.0  # the frame rate the reference's TLCC assumes, whatever the data's
# (first, end, weight) of the AU, valence/arousal and expression groups in the FRD sum.
REACT_DTW_GROUPS: Tuple[Tuple[int, int, float], ...] = (
    (0, 15, 1.0 / 15.0), (15, 17, 1.0), (17, 25, 1.0 / 8.0))
# The reference CCC adds this to its denominator (challenge mode only).
CCC_EPS = 1e-8
# Largest accumulated-cost buffer (elements) that dtw() holds for one chunk of pairs.
_DTW_CHUNK_ELEMENTS = 8_000_000
# Largest block of frames (elements per input) that frdvs() multiplies at once.
_GRAM_CHUNK_ELEMENTS = 4_000_000

DtwGroups = Sequence[Tuple[int, int, float]]
Reactions = Union[np.ndarray, Sequence[np.ndarray]]


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


def dtw(a: np.ndarray, b: np.ndarray, band: Optional[int] = None) -> np.ndarray:
    """
    Return the dynamic time warping distance between sequences.

    ``a`` is ``(..., T1, D)`` and ``b`` is ``(..., T2, D)`` (1-d inputs are one channel);
    their leading dimensions broadcast. See :func:`grouped_dtw`, here with one group of all
    channels.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    return grouped_dtw(a, b, ((0, a.shape[-1], 1.0),), band)[..., 0]


def grouped_dtw(a: np.ndarray, b: np.ndarray, groups: DtwGroups,
                band: Optional[int] = None) -> np.ndarray:
    """
    Return the DTW distance of each channel group: ``(..., G)`` for ``G = len(groups)``.

    ``a`` is ``(..., T1, D)`` and ``b`` is ``(..., T2, D)``; their leading dimensions broadcast
    (without being copied); ``groups`` are contiguous, ordered ``(first, end, weight)``
    channel ranges. For a group's channels, the local cost is
    ``c(i, j) = ||a_i - b_j||**2``, the accumulated cost
    ``R(i, j) = c(i, j) + min(R(i-1, j), R(i, j-1), R(i-1, j-1))`` and the distance
    ``sqrt(R(T1, T2))``: the convention of ``tslearn.metrics.dtw`` that the REACT reference
    code calls. ``band=None`` allows every cell (O(T1 * T2) per pair); a band of ``w`` frames
    (a Sakoe-Chiba band, widened to ``|T1 - T2|`` if narrower) keeps the cells with
    ``|i - j| <= w`` (O(max(T1, T2) * w)), which is exact whenever ``w >= max(T1, T2) - 1``
    and otherwise an upper bound. Vectorised over anti-diagonals, over the pairs and over the
    groups; the weights of ``groups`` are not applied here.
    """
    t1, t2, dim = a.shape[-2], b.shape[-2], a.shape[-1]
    if b.shape[-1] != dim:
        raise ValueError(f'channel counts differ: {dim} and {b.shape[-1]}')
    if t1 == 0 or t2 == 0:
        raise ValueError('dtw needs non-empty sequences')
    if any(g[1] != h[0] for g, h in zip(groups, groups[1:])) or any(
            not 0 <= g[0] < g[1] <= dim for g in groups):
        raise ValueError(f'DTW groups must be contiguous, ordered (first, end) ranges within '
                         f'D = {dim}, got {[tuple(g[:2]) for g in groups]}')
    if band is not None and band < 1:
        raise ValueError(f'the DTW band must be at least 1 frame (or None), got {band}')
    width = max(t1, t2) if band is None else max(int(band), abs(t1 - t2))
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    lead = shape or (1,)
    a = np.broadcast_to(a, lead + (t1, dim))
    b = np.broadcast_to(b, lead + (t2, dim))[..., ::-1, :]  # reversed in time
    per_row = int(np.prod(lead[1:], dtype=np.int64)) * (t1 + 2) * len(groups)
    chunk = max(1, _DTW_CHUNK_ELEMENTS // per_row)
    out = np.concatenate([_dtw_chunk(a[i:i + chunk], b[i:i + chunk], groups, width)
                          for i in range(0, lead[0], chunk)])
    return out.reshape(shape + (len(groups),))


def _dtw_chunk(a: np.ndarray, b_reversed: np.ndarray, groups: DtwGroups,
               width: int) -> np.ndarray:
    """Return ``(..., G)`` distances; ``b_reversed`` is ``b`` with its time axis reversed."""
    t1, t2 = a.shape[-2], b_reversed.shape[-2]
    lead = np.broadcast_shapes(a.shape[:-2], b_reversed.shape[:-2])
    # Anti-diagonal k holds the cells i + j = k of the (T1 + 1) x (T2 + 1) accumulated-cost
    # matrix whose row 0 and column 0 are the boundary; it is stored indexed by i. Three
    # buffers rotate; each diagonal writes its cells and one infinite cell on either side,
    # which is all that the next two diagonals read.
    before_last, last, current = (np.full(lead + (t1 + 2, len(groups)), np.inf)
                                  for _ in range(3))
    before_last[..., 0, :] = 0.0
    first, end = groups[0][0], groups[-1][1]
    starts = [g[0] - first for g in groups]
    for k in range(2, t1 + t2 + 1):
        lo = max(1, k - t2, -((width - k) // 2))
        hi = min(t1, k - 1, (k + width) // 2)
        # Rows i = lo..hi meet columns j = k - i, whose frames b[j - 1] lie at t2 - k + i
        # in reversed time: both are plain slices.
        diff = (a[..., lo - 1:hi, first:end]
                - b_reversed[..., t2 - k + lo:t2 - k + hi + 1, first:end])
        diff *= diff
        cells = current[..., lo:hi + 1, :]
        np.add.reduceat(diff, starts, axis=-1, out=cells)
        best = np.minimum(last[..., lo - 1:hi, :], last[..., lo:hi + 1, :])
        np.minimum(best, before_last[..., lo - 1:hi, :], out=best)
        cells += best
        current[..., lo - 1, :] = np.inf
        if hi < t1:
            current[..., hi + 1, :] = np.inf
        before_last, last, current = last, current, before_last
    return np.sqrt(last[..., t1, :])


def _check_predictions(predictions: Reactions) -> List[np.ndarray]:
    """Return the inputs' ``(S, T_n, D)`` float64 arrays; raise ValueError if malformed."""
    items = list(predictions)
    if not items:
        raise ValueError('predictions must hold at least one input')
    checked = []
    for n, item in enumerate(items):
        item = np.asarray(item, dtype=np.float64)
        if item.ndim != 3 or 0 in item.shape:
            raise ValueError(f'predictions[{n}] must have shape (S, T, D), got {item.shape}')
        if item.shape[0] != items[0].shape[0] or item.shape[2] != items[0].shape[-1]:
            raise ValueError(f'predictions[{n}] has shape {item.shape}; every input needs the '
                             f'S = {items[0].shape[0]} samples and D = {items[0].shape[-1]} '
                             'attributes of the first')
        if not np.all(np.isfinite(item)):
            raise ValueError(f'predictions[{n}] must be finite')
        checked.append(item)
    return checked


def _check_appropriate(predictions: List[np.ndarray],
                       appropriate: Sequence[np.ndarray]) -> List[np.ndarray]:
    if len(appropriate) != len(predictions):
        raise ValueError(f'{len(appropriate)} appropriate sets for {len(predictions)} inputs')
    sets = []
    for n, (pred, reactions) in enumerate(zip(predictions, appropriate)):
        reactions = np.asarray(reactions, dtype=np.float64)
        if reactions.ndim != 3 or reactions.shape[0] == 0 or reactions.shape[1:] != pred.shape[1:]:
            raise ValueError(f'appropriate[{n}] must have shape (K>0, T, D) = '
                             f'(K, {pred.shape[1]}, {pred.shape[2]}), got {reactions.shape}')
        sets.append(reactions)
    return sets


def _check_allowed(allowed: Optional[Sequence[np.ndarray]], predictions: List[np.ndarray],
                   sets: List[np.ndarray]) -> List[np.ndarray]:
    """Return per input the ``(S, K)`` mask of the reactions each sample may be matched to."""
    if allowed is None:
        return [np.ones((p.shape[0], r.shape[0]), dtype=bool) for p, r in zip(predictions, sets)]
    if len(allowed) != len(sets):
        raise ValueError(f'{len(allowed)} allowed masks for {len(sets)} inputs')
    masks = []
    for n, (mask, pred, reactions) in enumerate(zip(allowed, predictions, sets)):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (pred.shape[0], reactions.shape[0]):
            raise ValueError(f'allowed[{n}] must have shape (S, K) = ({pred.shape[0]}, '
                             f'{reactions.shape[0]}), got {mask.shape}')
        masks.append(mask)
    return masks


def _over_samples(per_sample: List[np.ndarray], mode: str) -> float:
    """
    Sum (challenge) or average (corrected) over samples, then average over inputs.

    A NaN sample (no allowed reaction) is left out of its input's sum or mean, and an input
    without any defined sample is left out of the mean over inputs.
    """
    with _quiet_nan_warnings():
        if mode == 'challenge':
            values = [np.nansum(v) if np.any(np.isfinite(v)) else np.nan for v in per_sample]
        else:
            values = [np.nanmean(v) for v in per_sample]
        return float(np.nanmean(values))


@contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' warnings; an all-NaN mean is NaN by design."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        yield


def frc(predictions: Reactions, appropriate: Sequence[np.ndarray], mode: str = 'challenge',
        allowed: Optional[Sequence[np.ndarray]] = None) -> float:
    """
    Return the facial reaction correlation (FRC, higher is better).

    For each input n and sample s: the largest, over the appropriate reactions k (those that
    ``allowed[n][s]`` marks, default all), of the mean over channels of
    CCC(prediction, reaction k). ``challenge`` sums these over samples and averages over
    inputs; ``corrected`` averages over both and leaves out undefined channels.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    sets = _check_appropriate(predictions, appropriate)
    masks = _check_allowed(allowed, predictions, sets)
    best = []
    with _quiet_nan_warnings():
        for pred, reactions, mask in zip(predictions, sets, masks):
            per_channel = ccc(pred[:, None], reactions[None], mode)  # (S, K, D)
            scores = (per_channel.mean(axis=-1) if mode == 'challenge'
                      else np.nanmean(per_channel, axis=-1))
            best.append(np.nanmax(np.where(mask, scores, np.nan), axis=1))
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


def dtw_table(predictions: Reactions, appropriate: Sequence[np.ndarray],
              dtw_groups: Optional[DtwGroups] = None,
              dtw_band: Optional[int] = None) -> List[np.ndarray]:
    """
    Return per input the ``(S, K)`` weighted DTW sums ``sum_g w_g * dtw(sample, reaction)``.

    The reference's FRD distances before the closest reaction is taken; :func:`frd` computes
    them, or takes them precomputed (so that both modes share one DTW pass). ``dtw_band``
    (frames) is the band of :func:`grouped_dtw`.
    """
    predictions = _check_predictions(predictions)
    sets = _check_appropriate(predictions, appropriate)
    groups = _dtw_groups(predictions[0].shape[-1], dtw_groups)
    weights = np.array([weight for _, _, weight in groups])
    return [grouped_dtw(pred[:, None], reactions[None], groups, dtw_band) @ weights
            for pred, reactions in zip(predictions, sets)]


def frd(predictions: Reactions, appropriate: Sequence[np.ndarray], mode: str = 'challenge',
        dtw_groups: Optional[DtwGroups] = None, dtw_band: Optional[int] = None,
        allowed: Optional[Sequence[np.ndarray]] = None,
        table: Optional[Sequence[np.ndarray]] = None) -> float:
    """
    Return the facial reaction distance (FRD, lower is better).

    For each input n and sample s: the smallest, over the appropriate reactions k (those that
    ``allowed[n][s]`` marks), of ``sum_g w_g * dtw(prediction[:, g], reaction_k[:, g])`` over
    the attribute groups ``g`` (default :data:`REACT_DTW_GROUPS`: weights 1/15, 1 and 1/8);
    ``table`` is :func:`dtw_table`'s output, computed here when not given.

    * ``challenge``: the raw DTW (it grows as the square root of the clip's length), summed
      over samples and averaged over inputs.
    * ``corrected``: each DTW divided by ``sqrt(T_n)`` (``T_n`` = the input's frames), so a
      constant per-frame error scores the same on any clip length (the root of the mean
      accumulated cost per frame of the diagonal path); averaged over samples and inputs.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    sets = _check_appropriate(predictions, appropriate)
    masks = _check_allowed(allowed, predictions, sets)
    if table is None:
        table = dtw_table(predictions, sets, dtw_groups, dtw_band)
    best = []
    for pred, totals, mask in zip(predictions, table, masks):
        totals = np.asarray(totals, dtype=np.float64)
        if mode == 'corrected':
            totals = totals / math.sqrt(pred.shape[1])
        with _quiet_nan_warnings():
            best.append(np.nanmin(np.where(mask, totals, np.nan), axis=1))
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


def frdiv(predictions: Reactions, mode: str = 'challenge') -> float:
    """
    Return FRDiv (S-MSE): the diversity among the samples of one input (higher is more diverse).

    Per input, the mean over ordered pairs of distinct samples of the mean squared difference
    over frames and channels; then the mean over inputs. With one sample per input it is 0 in
    ``challenge`` mode (as the reference returns) and NaN (undefined) in ``corrected`` mode.
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    if predictions[0].shape[0] < 2:
        return 0.0 if mode == 'challenge' else math.nan
    return float(np.mean([_mean_pairwise_sq(p.reshape(p.shape[0], -1)) for p in predictions]))


def frvar(predictions: Reactions) -> float:
    """
    Return FRVar: the variance over time of each channel of each sample, averaged.

    Unbiased variance (divide by T - 1), as the reference's ``torch.var``; the mean over
    samples and channels per input, then over inputs (so each input weighs the same, and with
    equal lengths it is the reference's mean over everything). NaN if an input has T < 2.
    The same in both modes.
    """
    predictions = _check_predictions(predictions)
    if min(p.shape[1] for p in predictions) < 2:
        return math.nan
    return float(np.mean([np.mean(np.var(p, axis=1, ddof=1)) for p in predictions]))


def frdvs(predictions: Reactions) -> float:
    """
    Return FRDvs: the diversity between the reactions to different inputs.

    For each sample index s, the mean over ordered pairs of distinct inputs of the mean
    squared difference over frames and channels between their s-th samples; then the mean
    over s. Two inputs of unequal length are compared over the shorter one's frames. NaN with
    fewer than two inputs. The same in both modes.
    """
    predictions = _check_predictions(predictions)
    n = len(predictions)
    if n < 2:
        return math.nan
    lengths = np.array([p.shape[1] for p in predictions])
    if np.all(lengths == lengths[0]):
        by_sample = np.stack(predictions).reshape(n, predictions[0].shape[0], -1)
        return float(np.mean(_mean_pairwise_sq(by_sample.transpose(1, 0, 2))))
    return _frdvs_unequal(predictions, lengths)


def _frdvs_unequal(predictions: List[np.ndarray], lengths: np.ndarray) -> float:
    """
    Return FRDvs with each pair over its common frames, from Gram matrices.

    For inputs i, j with ``m = min(T_i, T_j)``: ``sum_{t < m} ||x_i - x_j||**2 = P_i(m) +
    P_j(m) - 2 <x_i, x_j>``, where ``P`` are prefix sums of squared norms and the inner product
    over all frames only sees the common ones once the inputs are zero past their end.
    """
    samples, dim = predictions[0].shape[0], predictions[0].shape[2]
    n, t_max = len(predictions), int(lengths.max())
    common = np.minimum(lengths[:, None], lengths[None, :])
    prefix = [np.concatenate((np.zeros((samples, 1)),
                              np.cumsum((p * p).sum(axis=2), axis=1)), axis=1)
              for p in predictions]  # (S, T_n + 1) each
    block = max(1, _GRAM_CHUNK_ELEMENTS // (n * dim))
    gram = np.zeros((samples, n, n))
    for start in range(0, t_max, block):
        stop = min(t_max, start + block)
        frames = np.zeros((samples, n, stop - start, dim))
        for i, p in enumerate(predictions):
            if p.shape[1] > start:
                frames[:, i, :p.shape[1] - start] = p[:, start:stop]
        flat = frames.reshape(samples, n, -1)
        gram += flat @ flat.transpose(0, 2, 1)
    norms = np.stack([prefix[i][:, common[i]] for i in range(n)], axis=1)  # (S, i, j)
    squared = np.maximum(norms + norms.transpose(0, 2, 1) - 2.0 * gram, 0.0)  # rounding
    off_diagonal = ~np.eye(n, dtype=bool)
    per_pair = squared[:, off_diagonal] / (common[off_diagonal] * dim)
    return float(np.mean(per_pair))


def _prefix(x: np.ndarray) -> np.ndarray:
    """Return the prefix sums of ``x`` over axis -2, with a leading 0: ``(..., T + 1, D)``."""
    zero = np.zeros(x.shape[:-2] + (1, x.shape[-1]))
    return np.concatenate((zero, np.cumsum(x, axis=-2)), axis=-2)


def _changes(x: np.ndarray) -> np.ndarray:
    """Return ``c[t]``: how often ``x`` changes value among its frames 1..t, (..., T, D)."""
    zero = np.zeros(x.shape[:-2] + (1, x.shape[-1]), dtype=np.int64)
    return np.concatenate((zero, np.cumsum(x[..., 1:, :] != x[..., :-1, :], axis=-2)), axis=-2)


def tlcc_curve(listener: np.ndarray, speaker: np.ndarray, max_lag: int) -> np.ndarray:
    """
    Return the per-channel Pearson's r of the listener and speaker at each lag.

    ``listener`` is ``(..., T, D)``, ``speaker`` is ``(T, D)``; the result is
    ``(..., 2 * max_lag + 1, D)`` for lags ``-max_lag .. max_lag``. At lag L > 0 the listener
    frame ``t + L`` is paired with the speaker frame ``t`` (the listener follows); at L < 0
    the speaker follows. A channel exactly constant over a window gives NaN. The window sums
    come from prefix sums of the globally centred sequences (one product sum per lag).
    """
    listener = np.asarray(listener, dtype=np.float64)
    speaker = np.asarray(speaker, dtype=np.float64)
    t = listener.shape[-2]
    if not 0 <= max_lag < t - 1:
        raise ValueError(f'max_lag must be in [0, T - 2] = [0, {t - 2}], got {max_lag}')
    lags = np.arange(-max_lag, max_lag + 1)
    x_start, y_start = np.maximum(lags, 0), np.maximum(-lags, 0)
    count = t - np.abs(lags)  # frames in each lag's window
    x = listener - listener.mean(axis=-2, keepdims=True)
    y = speaker - speaker.mean(axis=-2, keepdims=True)
    product = np.stack([np.einsum('...td,td->...d', x[..., a:a + n, :], y[b:b + n])
                        for a, b, n in zip(x_start, y_start, count)], axis=-2)

    def window(prefix: np.ndarray, start: np.ndarray) -> np.ndarray:
        return prefix[..., start + count, :] - prefix[..., start, :]

    n = count[:, None].astype(np.float64)
    sx, sy = window(_prefix(x), x_start), window(_prefix(y), y_start)
    var_x = window(_prefix(x * x), x_start) - sx * sx / n
    var_y = window(_prefix(y * y), y_start) - sy * sy / n
    cx, cy = _changes(listener), _changes(speaker)
    constant = ((cx[..., x_start + count - 1, :] == cx[..., x_start, :])
                | (cy[y_start + count - 1] == cy[y_start]))
    with np.errstate(invalid='ignore', divide='ignore'):
        r = (product - sx * sy / n) / np.sqrt(np.maximum(var_x * var_y, 0.0))
    return np.where(constant, np.nan, r)


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


def tlcc_max_lag(mode: str, fps: float, seconds: float = 2.0) -> int:
    """
    Return the largest TLCC lag (frames) of ``mode``: ``round(seconds * fps') - 1``.

    ``fps'`` is :data:`REACT_FPS` (25) in ``challenge`` mode, as the reference hard-codes it,
    so 2 s are +-49 frames on any data; ``corrected`` uses the data's ``fps`` (+-59 at 30 fps).
    """
    _check_mode(mode)
    rate = REACT_FPS if mode == 'challenge' else fps
    if not rate > 0 or not seconds > 0:
        raise ValueError(f'need fps > 0 and seconds > 0, got {rate} and {seconds}')
    return int(round(seconds * rate)) - 1


def frsyn(predictions: Reactions, speaker: Reactions, mode: str = 'challenge',
          fps: float = REACT_FPS, seconds: float = 2.0) -> float:
    """
    Return FRSyn: the mean absolute TLCC peak lag, in frames, between listener and speaker.

    Lags run over ``-L .. L`` with ``L`` = :func:`tlcc_max_lag`. Speaker and prediction
    channels are paired one to one, so they need the same D. ``challenge`` scores sample 0 of
    each input only (the reference's parallel TLCC returns after its first sample) at 25 fps;
    ``corrected`` averages every sample of every input at ``fps``, leaving out undefined
    samples (see :func:`tlcc_offsets` for the per-mode NaN handling).
    """
    max_lag = tlcc_max_lag(mode, fps, seconds)
    predictions = _check_predictions(predictions)
    speakers = list(speaker)
    if len(speakers) != len(predictions):
        raise ValueError(f'{len(speakers)} speaker sequences for {len(predictions)} inputs')
    offsets = []
    for n, (pred, sp) in enumerate(zip(predictions, speakers)):
        sp = np.asarray(sp, dtype=np.float64)
        if sp.shape != pred.shape[1:]:
            raise ValueError(f'speaker[{n}] must have shape (T, D) = {pred.shape[1:]}, got '
                             f'{sp.shape}')
        scored = pred[:1] if mode == 'challenge' else pred
        offsets.append(tlcc_offsets(scored, sp, max_lag, mode))
    with _quiet_nan_warnings():
        return float(np.nanmean(np.concatenate(offsets)))


def react_metrics(predictions: Reactions, appropriate: Optional[Sequence[np.ndarray]] = None,
                  speaker: Optional[Reactions] = None, mode: str = 'challenge',
                  fps: float = REACT_FPS, tlcc_seconds: float = 2.0,
                  dtw_groups: Optional[DtwGroups] = None, dtw_band: Optional[int] = None,
                  allowed: Optional[Sequence[np.ndarray]] = None,
                  table: Optional[Sequence[np.ndarray]] = None) -> Dict[str, Any]:
    """
    Compute the REACT suite.

    :param predictions: ``(N, S, T, D)`` generated reactions (S samples per input), or N
        ``(S, T_n, D)`` arrays.
    :param appropriate: per input, ``(K_n, T_n, D)`` appropriate real reactions; without it,
        FRC and FRD are None.
    :param speaker: ``(N, T, D)`` (or N ``(T_n, D)``) speaker attributes; without it, FRSyn is
        None.
    :param mode: ``'challenge'`` (the reference conventions) or ``'corrected'``.
    :param fps: the data's frame rate, for the TLCC window in ``corrected`` mode.
    :param tlcc_seconds: half-width of the TLCC window in seconds.
    :param dtw_groups: ``(first, end, weight)`` attribute groups for FRD; default the REACT
        groups (needs D = 25).
    :param dtw_band: the DTW band in frames (None: the full DTW); see :func:`grouped_dtw`.
    :param allowed: per input, the ``(S, K_n)`` mask of the reactions each sample may match
        (FRC and FRD; default all), as for ground truth scored leave-one-out.
    :param table: :func:`dtw_table`'s output, to share one DTW pass between the modes.
    :returns: ``{'mode', 'n_inputs', 'n_samples', 'FRC', 'FRD', 'FRDiv', 'FRVar', 'FRDvs',
        'FRSyn'}``; a metric can be NaN where it is undefined (see the metric functions).
    """
    _check_mode(mode)
    predictions = _check_predictions(predictions)
    have_sets = appropriate is not None
    return {
        'mode': mode,
        'n_inputs': len(predictions),
        'n_samples': int(predictions[0].shape[0]),
        'FRC': frc(predictions, appropriate, mode, allowed) if have_sets else None,
        'FRD': (frd(predictions, appropriate, mode, dtw_groups, dtw_band, allowed, table)
                if have_sets else None),
        'FRDiv': frdiv(predictions, mode),
        'FRVar': frvar(predictions),
        'FRDvs': frdvs(predictions),
        'FRSyn': (frsyn(predictions, speaker, mode, fps, tlcc_seconds)
                  if speaker is not None else None),
    }
