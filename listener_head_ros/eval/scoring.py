"""
Score a listener's trace on a bag: per listener turn, against the listener's true head.

:func:`score_trace` scores per listener sample: the turns on ``/speaker_turn`` whose speaker is
not the listener (the marker wearer). The poses stamped inside a turn are paired with the ground
truth interpolated linearly at their stamps; a turn whose truth has a gap longer than
``max_gap_seconds`` (the NaN policy of training) or does not cover the turn is left out and
counted. Metrics are those of :mod:`listener_head_ros.eval.head_metrics` (per-axis MAE in
degrees and Pearson's r, means over utterances), with the neutral-pose baseline.

REACT.  For a model that draws several samples per frame (a generative
``TorchListenerModel`` in ``'sample'`` mode: :attr:`ListenerFrame.samples`), the REACT suite is
computed on the head angles: D = 3 (roll, pitch, yaw in degrees), windows of ``react_window_s``
cut from each listener turn, the ground truth as the single appropriate reaction (so FRC and
FRD measure closeness to the one real reaction; FRD uses one DTW group of weight 1). FRSyn
needs the speaker's facial attributes, which a head-only bag does not have, so it is not
computed; neither are the 25-d facial-attribute versions of the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from listener_head_ros.bags.reader import BagContents, Turn
from listener_head_ros.eval.head_metrics import (
    aggregate, HeadMetrics, neutral_baseline, utterance_metrics, UtteranceMetrics)
from listener_head_ros.eval.react_metrics import react_metrics
from listener_head_ros.eval.simulate import Trace


@dataclass
class UtteranceScore:
    """The score of one listener turn."""

    turn: Turn
    metrics: UtteranceMetrics
    truth: np.ndarray  # (T, 3) radians at the trace stamps
    pred: np.ndarray  # (T, 3)
    times: np.ndarray  # (T,)
    samples: Optional[np.ndarray] = None  # (T, S, 3)


@dataclass
class EvalResult:
    """Metrics of one trace on one bag."""

    name: str  # 'offline' or 'replay'
    trace: Trace
    utterances: List[UtteranceScore]
    dropped_turns: Dict[str, int]
    head: Optional[HeadMetrics]
    baseline: Optional[HeadMetrics]
    react: Dict[str, Any]
    wall_seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Return audio seconds processed per wall second (NaN when not timed)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary."""
        rtf = self.real_time_factor
        return {
            'head': self.head.to_dict() if self.head else None,
            'neutral_baseline': self.baseline.to_dict() if self.baseline else None,
            'per_utterance': {u.turn.utterance: u.metrics.to_dict() for u in self.utterances},
            'dropped_turns': dict(self.dropped_turns),
            'react': self.react,
            'frames_stepped': self.trace.frames_stepped,
            'frames_dropped': self.trace.frames_dropped,
            'poses': int(self.trace.times.size),
            'backchannels': len(self.trace.backchannels),
            'latency': {k: v for k, v in self.trace.latency.items()
                        if not k.endswith('_samples_s')},
            'notes': list(self.trace.notes),
            'wall_seconds': self.wall_seconds,
            'audio_seconds': self.audio_seconds,
            'real_time_factor': rtf if math.isfinite(rtf) else None,
        }


def truth_at(contents: BagContents, times: np.ndarray, max_gap_seconds: float = 0.25,
             truth_period: Optional[float] = None) -> Tuple[Optional[np.ndarray], str]:
    """
    Return the ground truth interpolated at ``times`` and ``''``, or None and a reason.

    The reason is ``'outside_truth'`` when ``times`` leave the truth's span and ``'nan_gap'``
    when a bracketing pair of truth messages is more than ``max_gap_seconds`` further apart
    than the truth's period (the NaN policy of training).
    """
    tt = contents.truth_times
    if tt.size < 2 or times[0] < tt[0] or times[-1] > tt[-1]:
        return None, 'outside_truth'
    period = truth_period if truth_period is not None else float(np.median(np.diff(tt)))
    k = np.clip(np.searchsorted(tt, times, side='right'), 1, tt.size - 1)
    if np.any((tt[k] - tt[k - 1]) - period > max_gap_seconds + 1e-9):
        return None, 'nan_gap'
    return np.stack([np.interp(times, tt, contents.truth[:, a]) for a in range(3)], axis=1), ''


def score_trace(name: str, trace: Trace, contents: BagContents, max_gap_seconds: float = 0.25,
                react_window_s: float = 2.0) -> EvalResult:
    """Score a trace per listener turn (see the module docstring)."""
    scores: List[UtteranceScore] = []
    dropped: Dict[str, int] = {}
    for turn in (t for t in contents.turns if t.is_listener_sample):
        inside = (trace.times >= turn.start) & (trace.times <= turn.end)
        reason = '' if np.count_nonzero(inside) >= 2 else 'no_poses'
        truth = None
        if not reason:
            truth, reason = truth_at(contents, trace.times[inside], max_gap_seconds)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        pred = trace.poses[inside]
        scores.append(UtteranceScore(
            turn, utterance_metrics(pred, truth), truth, pred, trace.times[inside],
            trace.samples[inside] if trace.samples is not None else None))
    head = aggregate([s.metrics for s in scores]) if scores else None
    baseline = neutral_baseline([s.truth for s in scores]) if scores else None
    return EvalResult(name, trace, scores, dropped, head, baseline,
                      react_on_heads(scores, trace, react_window_s))


def react_on_heads(scores: Sequence[UtteranceScore], trace: Trace,
                   window_s: float = 2.0) -> Dict[str, Any]:
    """Return the REACT suite on head angles for multi-sample traces, else why it is absent."""
    if trace.samples is None:
        return {'computed': False,
                'reason': 'the model gives one sample per frame; the REACT suite needs several'}
    rate = (trace.times.size - 1) / max(trace.times[-1] - trace.times[0], 1e-9)
    window = max(2, int(round(window_s * rate)))
    preds, truths = [], []
    for s in scores:
        for first in range(0, s.times.size - window + 1, window):
            preds.append(np.degrees(np.moveaxis(s.samples[first:first + window], 1, 0)))
            truths.append(np.degrees(s.truth[first:first + window])[None])
    if len(preds) < 2:
        return {'computed': False, 'reason': f'fewer than two {window_s} s windows'}
    out: Dict[str, Any] = {'computed': True, 'attributes': 'head roll, pitch, yaw (degrees)',
                           'window_frames': window,
                           'not_computed': 'FRSyn (no speaker attributes in a head-only bag); '
                                           '25-d facial-attribute versions'}
    for mode in ('challenge', 'corrected'):
        result = react_metrics(np.stack(preds), truths, None, mode=mode, fps=rate,
                               dtw_groups=((0, 3, 1.0),))
        out[mode] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in result.items()}
    return out
