"""
Scoring a trained model on held-out dialog streams: every figure, batched and streamed.

Figures (:data:`~listener_head_ros.data.windows.FIGURES`), each a mean over listener samples
(segments) of the per-segment metrics of :mod:`listener_head_ros.training.stream_metrics`:
``protocol`` scores the interlocutor's utterance (the Active Listener protocol), ``window``
the listening window, ``tail`` the window after the utterance.  A segment counts for a
stream when its source did not exclude it and the stream's target is valid over its whole
utterance (the protocol drops utterances with long mocap gaps); within it, a figure scores
the frames with a valid target.

Paths:

- **cross-validation** (:func:`predict_dialogs`): the network's batched forward pass over each
  whole held-out dialog, from the cached features, one state carried from the dialog's start;
- **streaming** (:func:`streaming_head`): the node's own path, built by
  :func:`~listener_head_ros.build.build_listener` from the node's settings and fed the
  dialog's audio by :func:`~listener_head_ros.eval.simulate.simulate_audio` one hop per
  message, so that frame ``i`` is compared with the pose of the first tick that has stepped
  it: the figure measures the node's computation (streaming features and state, audio
  transport, pose shaping), not its latency of under one tick;
- **neutral**: predicting 0 in every channel (the neutral head).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from listener_head_ros.build import build_listener, OFFLINE_INPUTS
from listener_head_ros.data.feature_cache import FeatureCache
from listener_head_ros.data.source import Segment
from listener_head_ros.data.windows import figure_frames, FIGURES
from listener_head_ros.eval.simulate import simulate_audio
from listener_head_ros.models.base import TRANSCRIPT, TranscriptEvent
from listener_head_ros.models.learned import TorchListenerModel
from listener_head_ros.settings import ListenerSettings
from listener_head_ros.streams import HEAD, stream_slices
from listener_head_ros.training.dataset import DialogData
from listener_head_ros.training.stream_metrics import stream_metrics

Predictions = List[Dict[str, np.ndarray]]  # per dialog: stream -> (T, dim)
Scores = Dict[str, Dict[str, List[Any]]]  # stream -> figure -> per-segment scores


def predict_dialogs(model: TorchListenerModel, data: DialogData) -> Predictions:
    """Return the batched point predictions of every dialog of ``data``."""
    out = []
    for features in data.features:
        streams = model.predict(features).streams
        out.append({name: values[:, 0] for name, values in streams.items()})
    return out


def neutral_predictions(data: DialogData) -> Predictions:
    """Return the neutral prediction (0 everywhere) of every dialog of ``data``."""
    slices = stream_slices(data.streams)
    return [{name: np.zeros((len(t), cols.stop - cols.start), np.float32)
             for name, cols in slices.items()} for t in data.targets]


def streaming_head(settings: ListenerSettings, model: TorchListenerModel, audio: np.ndarray,
                   n_frames: int, transcripts: Sequence[TranscriptEvent] = ()) -> np.ndarray:
    """
    Return the head the node publishes for each of ``n_frames`` frames of ``audio``.

    ``transcripts`` (stream times) reach the node as a live recogniser would send them.
    """
    hop, rate = model.hop_length, model.sample_rate
    listener = build_listener(settings, model=model,
                              available_inputs=OFFLINE_INPUTS | {TRANSCRIPT})
    padded = np.concatenate([audio[:n_frames * hop], np.zeros(2 * hop, np.float32)])
    trace = simulate_audio(listener, padded, rate, chunk_frames=hop, transcripts=transcripts)
    arrival_ns = np.arange(1, n_frames + 1, dtype=np.int64) * hop * 10 ** 9 // rate
    ticks_ns = np.round(trace.times * 1e9).astype(np.int64)
    return trace.poses[np.searchsorted(ticks_ns, arrival_ns, side='left')].astype(np.float32)


def streaming_predictions(settings: ListenerSettings, model: TorchListenerModel,
                          cache: FeatureCache, data: DialogData) -> Predictions:
    """Return the node's head predictions of every dialog of ``data`` (from ``cache``)."""
    audio = {info.dialog_id: i for i, info in enumerate(cache.dialogs)}
    return [{HEAD.name: streaming_head(settings, model, cache.load_audio(audio[info.dialog_id]),
                                       info.n_frames, info.transcript_events())}
            for info in data.infos]


def _counted(segment: Segment, valid: np.ndarray) -> bool:
    return not segment.excluded and bool(valid[segment.utterance].all())


def score_dialogs(data: DialogData, predictions: Predictions) -> Scores:
    """Return the per-segment scores of ``predictions`` (the streams they hold) per figure."""
    slices = stream_slices(data.streams)
    scores: Scores = {}
    for name in (predictions[0] if predictions else {}):
        metrics, cols = stream_metrics(name), slices[name]
        scores[name] = {figure: [] for figure in FIGURES}
        for info, pred, truth, valid in zip(data.infos, predictions, data.targets, data.valid):
            ok = valid[:, cols.start]
            for segment in info.segments:
                if not _counted(segment, ok):
                    continue
                for figure in FIGURES:
                    frames = np.arange(len(ok))[figure_frames(segment, figure)]
                    frames = frames[ok[frames]]
                    if frames.size:
                        scores[name][figure].append(
                            metrics.score(pred[name][frames], truth[frames, cols]))
    return scores


def summarize(scores: Scores) -> Dict[str, Dict[str, Any]]:
    """Return the JSON-ready summary of each stream and figure (None for no segment)."""
    return {name: {figure: (stream_metrics(name).aggregate(items) if items else None)
                   for figure, items in figures.items()}
            for name, figures in scores.items()}


def floor_ratios(summary: Dict[str, Dict[str, Any]], floors: Optional[Dict[str, Any]]
                 ) -> Dict[str, Dict[str, float]]:
    """Return headline / reference floor per stream and figure, where the corpus has floors."""
    out: Dict[str, Dict[str, float]] = {}
    for name, figures in summary.items():
        floor = ((floors or {}).get('streams', {}).get(name) or {}).get('floor', {})
        metrics = stream_metrics(name)
        ratios = {figure: metrics.headline(value) / float(floor[figure]['mean'])
                  for figure, value in figures.items()
                  if value is not None and figure in floor}
        if ratios:
            out[name] = ratios
    return out


def headlines(summary: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Return each stream's headline figure per figure name (None where nothing counted)."""
    return {name: {figure: (stream_metrics(name).headline(value) if value else None)
                   for figure, value in figures.items()}
            for name, figures in summary.items()}


def relative_gap(measured: Dict[str, Dict[str, float]], reference: Dict[str, Dict[str, float]]
                 ) -> Dict[str, Dict[str, float]]:
    """Return ``measured / reference - 1`` for every stream and figure both have."""
    return {name: {figure: value / reference[name][figure] - 1.0
                   for figure, value in figures.items()
                   if value is not None and reference.get(name, {}).get(figure)}
            for name, figures in measured.items() if name in reference}
