"""
Head-pose metrics following the Active Listener protocol.

Predictions and ground truth are arrays of shape ``(T, 3)`` holding roll, pitch and yaw in
**radians** (the order of :data:`listener_head_ros.head_profile.AXES`). Errors are reported in
**degrees**.

* Per utterance: the mean absolute error of each axis, the mean of the three, and the Pearson
  correlation of each axis between prediction and truth.
* Over utterances (the protocol's figure): the **mean over utterances** of the per-utterance,
  per-axis MAE, so a short utterance weighs as much as a long one. The MAE pooled over all
  frames is given too, for reference only.
* Pearson's r is undefined (NaN) for an utterance whose prediction or truth is constant on an
  axis (or that has fewer than two frames). Such values are **excluded** from every mean, and
  ``n_pearson`` counts the utterances that did contribute on each axis.

Cross-validation: :func:`cross_validate` scores every fold and, overall, all utterances of all
folds together (each utterance counted once), plus the mean and spread of the fold figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from listener_head_ros.head_profile import AXES

_N_AXES = len(AXES)
# Rows of the per-utterance moment table used to pool Pearson's r over frames.
_SUM_P, _SUM_T, _SUM_PP, _SUM_TT, _SUM_PT = range(5)


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[1] != _N_AXES:
        raise ValueError(f'pred must have shape (T, {_N_AXES}), got {pred.shape}')
    if truth.shape != pred.shape:
        raise ValueError(f'truth shape {truth.shape} differs from pred shape {pred.shape}')
    if pred.shape[0] == 0:
        raise ValueError('an utterance needs at least one frame')
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(truth))):
        raise ValueError('pred and truth must be finite (drop or interpolate NaN frames first)')
    return pred, truth


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """
    Return Pearson's correlation of two 1-d sequences, NaN where it is undefined.

    It is undefined when either sequence is constant (zero variance) or has fewer than two
    values. The result is clipped to [-1, 1] against rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f'pearson needs two 1-d sequences of one length, got {x.shape} and '
                         f'{y.shape}')
    if x.size < 2 or np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        return math.nan
    xc = x - x.mean()
    yc = y - y.mean()
    r = float(np.dot(xc, yc) / math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc))))
    return min(1.0, max(-1.0, r))


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


@dataclass(frozen=True)
class UtteranceMetrics:
    """
    Metrics of one utterance: per-axis MAE in degrees and per-axis Pearson's r.

    ``pearson`` holds NaN for an axis where r is undefined (a constant sequence).
    ``moments`` keeps the per-axis sums needed to pool over frames (rows: sum of prediction,
    of truth, of their squares and of their product, in radians).
    """

    mae_deg: Tuple[float, float, float]
    pearson: Tuple[float, float, float]
    n_frames: int
    moments: np.ndarray = field(repr=False, compare=False)

    @property
    def mae_mean_deg(self) -> float:
        """Return the mean of the three per-axis MAEs, in degrees."""
        return float(np.mean(self.mae_deg))

    @property
    def pearson_mean(self) -> float:
        """Return the mean of the defined per-axis correlations (NaN if none is defined)."""
        return _nanmean(self.pearson)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary (NaN becomes None)."""
        return {
            'mae_deg': _axis_dict(self.mae_deg),
            'mae_mean_deg': _json_float(self.mae_mean_deg),
            'pearson': _axis_dict(self.pearson),
            'pearson_mean': _json_float(self.pearson_mean),
            'n_frames': self.n_frames,
        }


def utterance_metrics(pred: np.ndarray, truth: np.ndarray) -> UtteranceMetrics:
    """
    Score one utterance.

    :param pred: predicted (roll, pitch, yaw) in radians, shape ``(T, 3)``.
    :param truth: ground truth in radians, same shape.
    :returns: per-axis MAE in degrees and per-axis Pearson's r.
    :raises ValueError: on a shape mismatch, an empty utterance or a non-finite value.
    """
    pred, truth = _check_pair(pred, truth)
    abs_err_deg = np.degrees(np.abs(pred - truth))
    mae = tuple(float(v) for v in abs_err_deg.mean(axis=0))
    r = tuple(pearson(pred[:, a], truth[:, a]) for a in range(_N_AXES))
    moments = np.stack([pred.sum(axis=0), truth.sum(axis=0), (pred * pred).sum(axis=0),
                        (truth * truth).sum(axis=0), (pred * truth).sum(axis=0)])
    return UtteranceMetrics(mae_deg=mae, pearson=r, n_frames=int(pred.shape[0]),
                            moments=moments)


@dataclass(frozen=True)
class HeadMetrics:
    """
    Metrics over a set of utterances (one fold, or all of them).

    ``mae_deg`` and ``pearson`` follow the protocol: means over utterances of the
    per-utterance values (undefined correlations excluded; ``n_pearson`` counts those that
    were used). ``pooled_*`` pool all frames together and are for reference only.
    """

    mae_deg: Dict[str, float]
    mae_mean_deg: float
    pearson: Dict[str, float]
    pearson_mean: float
    n_pearson: Dict[str, int]
    pooled_mae_deg: Dict[str, float]
    pooled_mae_mean_deg: float
    pooled_pearson: Dict[str, float]
    n_utterances: int
    n_frames: int

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary (NaN becomes None)."""
        out: Dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, dict):
                out[key] = {k: _json_float(v) for k, v in value.items()}
            else:
                out[key] = _json_float(value)
        return out


def aggregate(utterances: Sequence[UtteranceMetrics]) -> HeadMetrics:
    """
    Aggregate per-utterance metrics into :class:`HeadMetrics`.

    MAE is the mean over utterances of each per-utterance MAE (not weighted by length).
    Pearson's r is the mean over utterances of the defined per-utterance values; the mean over
    axes uses the axes whose value is defined. Pooled figures weigh every frame equally.

    :raises ValueError: if ``utterances`` is empty.
    """
    if not utterances:
        raise ValueError('aggregate needs at least one utterance')
    mae = np.array([u.mae_deg for u in utterances])
    r = np.array([u.pearson for u in utterances])
    frames = np.array([u.n_frames for u in utterances], dtype=np.float64)
    n_frames = int(frames.sum())
    pooled_mae = (mae * frames[:, None]).sum(axis=0) / n_frames
    pearson_axis = [_nanmean(r[:, a].tolist()) for a in range(_N_AXES)]
    return HeadMetrics(
        mae_deg=_axis_dict(mae.mean(axis=0)),
        mae_mean_deg=float(mae.mean()),
        pearson=_axis_dict(pearson_axis),
        pearson_mean=_nanmean(pearson_axis),
        n_pearson={axis: int(np.sum(~np.isnan(r[:, a]))) for a, axis in enumerate(AXES)},
        pooled_mae_deg=_axis_dict(pooled_mae),
        pooled_mae_mean_deg=float(pooled_mae.mean()),
        pooled_pearson=_axis_dict(_pooled_pearson(sum(u.moments for u in utterances),
                                                  n_frames)),
        n_utterances=len(utterances),
        n_frames=n_frames,
    )


def _pooled_pearson(m: np.ndarray, n: int) -> np.ndarray:
    cov = m[_SUM_PT] - m[_SUM_P] * m[_SUM_T] / n
    var_p = m[_SUM_PP] - m[_SUM_P] ** 2 / n
    var_t = m[_SUM_TT] - m[_SUM_T] ** 2 / n
    denom = np.sqrt(np.clip(var_p, 0.0, None) * np.clip(var_t, 0.0, None))
    with np.errstate(invalid='ignore', divide='ignore'):
        r = np.where(denom > 0.0, cov / np.where(denom > 0.0, denom, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def score_utterances(preds: Sequence[np.ndarray],
                     truths: Sequence[np.ndarray]) -> HeadMetrics:
    """Score paired lists of ``(T_i, 3)`` predictions and truths and aggregate them."""
    if len(preds) != len(truths):
        raise ValueError(f'{len(preds)} predictions for {len(truths)} ground truths')
    return aggregate([utterance_metrics(p, t) for p, t in zip(preds, truths)])


def neutral_baseline(truths: Sequence[np.ndarray]) -> HeadMetrics:
    """
    Score the neutral-pose baseline: predict (0, 0, 0) for every frame.

    Its MAE is the mean absolute angle of the ground truth; its correlations are undefined
    (NaN), since a constant prediction has no variance.
    """
    return score_utterances([np.zeros_like(np.asarray(t, dtype=np.float64)) for t in truths],
                            truths)


@dataclass(frozen=True)
class CrossValidationMetrics:
    """
    Metrics per fold and overall.

    ``overall`` aggregates all utterances of all folds (each counted once). ``fold_mean_mae_deg``
    and ``fold_std_mae_deg`` are the mean and population standard deviation over folds of the
    fold MAEs (keys: the axes and ``'mean'``).
    """

    folds: Dict[str, HeadMetrics]
    overall: HeadMetrics
    fold_mean_mae_deg: Dict[str, float]
    fold_std_mae_deg: Dict[str, float]

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary (NaN becomes None)."""
        return {
            'folds': {name: m.to_dict() for name, m in self.folds.items()},
            'overall': self.overall.to_dict(),
            'fold_mean_mae_deg': {k: _json_float(v) for k, v in self.fold_mean_mae_deg.items()},
            'fold_std_mae_deg': {k: _json_float(v) for k, v in self.fold_std_mae_deg.items()},
        }


def cross_validate(folds: Mapping[str, Sequence[UtteranceMetrics]]) -> CrossValidationMetrics:
    """
    Aggregate per-utterance metrics of each fold (e.g. ``{'Session1': [...], ...}``).

    :raises ValueError: if there is no fold or a fold has no utterance.
    """
    if not folds:
        raise ValueError('cross_validate needs at least one fold')
    per_fold = {name: aggregate(utts) for name, utts in folds.items()}
    overall = aggregate([u for utts in folds.values() for u in utts])
    table = np.array([[m.mae_deg[a] for a in AXES] + [m.mae_mean_deg]
                      for m in per_fold.values()])
    keys = list(AXES) + ['mean']
    return CrossValidationMetrics(
        folds=per_fold, overall=overall,
        fold_mean_mae_deg={k: float(v) for k, v in zip(keys, table.mean(axis=0))},
        fold_std_mae_deg={k: float(v) for k, v in zip(keys, table.std(axis=0))},
    )


def _axis_dict(values: Sequence[float]) -> Dict[str, float]:
    return {axis: float(v) for axis, v in zip(AXES, values)}


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
