"""
The metrics each target stream is scored with, declared once per stream.

A :class:`StreamMetrics` scores one segment (the frames of one figure of one listener sample:
see :data:`listener_head_ros.data.windows.FIGURES`) and aggregates segments into a JSON-ready
summary whose ``headline`` is the figure's mean over segments.  ``head`` uses the Active
Listener protocol of :mod:`listener_head_ros.eval.head_metrics` (per-axis MAE in degrees, the
mean over utterances, and Pearson's r); every other stream gets the per-channel mean absolute
error in its own units, also a mean over segments.  The loss of each stream is the network's
own (its :meth:`training_loss` over that stream's columns), weighted by
:attr:`~listener_head_ros.training.config.TrainConfig.loss_weights`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from listener_head_ros.eval.head_metrics import aggregate, utterance_metrics
from listener_head_ros.streams import get_stream, HEAD, Stream


@dataclass(frozen=True)
class StreamMetrics:
    """Generic metrics of a stream: per-channel MAE in its units, means over segments."""

    stream: Stream
    headline_key: str = 'mae_mean'
    channels_key: str = 'mae'

    def score(self, pred: np.ndarray, truth: np.ndarray) -> Any:
        """Score one segment: ``(n, dim)`` prediction and truth."""
        return np.abs(np.asarray(pred, np.float64) - np.asarray(truth, np.float64)).mean(0)

    def aggregate(self, scores: Sequence[Any]) -> Dict[str, Any]:
        """Return the JSON-ready summary of segment scores (means over segments)."""
        mae = np.mean(np.stack(scores), axis=0)
        return {self.channels_key: dict(zip(self.stream.channels, map(float, mae))),
                self.headline_key: float(mae.mean()), 'units': self.stream.units,
                'n_utterances': len(scores)}

    def headline(self, summary: Dict[str, Any]) -> float:
        """Return a summary's headline figure."""
        return float(summary[self.headline_key])

    def channel(self, summary: Dict[str, Any], channel: str) -> float:
        """Return a summary's figure of one channel."""
        return float(summary[self.channels_key][channel])


class HeadStreamMetrics(StreamMetrics):
    """The Active Listener protocol on the head: MAE in degrees and Pearson's r."""

    def __init__(self) -> None:
        super().__init__(HEAD, 'mae_mean_deg', 'mae_deg')

    def score(self, pred: np.ndarray, truth: np.ndarray) -> Any:
        """Return :func:`~listener_head_ros.eval.head_metrics.utterance_metrics`."""
        return utterance_metrics(pred, truth)

    def aggregate(self, scores: Sequence[Any]) -> Dict[str, Any]:
        """Return :func:`~listener_head_ros.eval.head_metrics.aggregate` as a dict."""
        return aggregate(list(scores)).to_dict()


def stream_metrics(name: str) -> StreamMetrics:
    """Return the metrics of the stream called ``name``."""
    return HeadStreamMetrics() if name == HEAD.name else StreamMetrics(get_stream(name))


def fold_spread(values: List[float]) -> Optional[Dict[str, float]]:
    """Return the mean and population standard deviation of per-fold figures (None if none)."""
    if not values:
        return None
    return {'mean': float(np.mean(values)), 'std': float(np.std(values))}
