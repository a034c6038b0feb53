"""
Listening windows: which model frames of a dialog stream count as listening, and how.

A dialog stream has one model frame per hop of audio; frame ``i`` ends at sample
``(i + 1) * hop`` (the causal frames of :func:`listener_head_ros.features.extract_features`).
A frame lies inside a span ``[start, end]`` (seconds) when its end lies in ``(start, end]``;
with ``s = round(seconds * sample_rate)`` these are the frames ``s0 // hop .. s1 // hop - 1``.

For every utterance of the interlocutor (the actor the listener listens to; for a speaking
model, of the listener's own utterances: :func:`listening_segments`' ``followed``) a
:class:`~listener_head_ros.data.source.Segment` holds two spans of frames:

- the **utterance**: the utterance's own span (the Active Listener protocol's listener sample);
- the **listening window**: the utterance plus a tail of up to ``tail_seconds``
  (:data:`DEFAULT_TAIL_SECONDS`), cut where another turn takes over: at the start of the next
  turn (the listener's own next utterance, or the interlocutor's next one, whose window then
  begins), or at the utterance's end when another turn is still going on then.  So the windows
  of one dialog never overlap, and their union is the interlocutor's utterances plus the
  pauses after them, up to the listener's next turn.

Each segment gives three per-utterance **figures** (:data:`FIGURES`): ``'protocol'`` scores
its utterance (the Active Listener protocol), ``'window'`` its listening window and ``'tail'``
the window's frames after the utterance (empty tails count in no mean).

A segment is left out of the figures (``Segment.excluded``) when its utterance is shorter than
``min_seconds`` (``'too_short'``) or ends more than one hop after the audio (``'outside_audio'``);
the masks still cover it, since the node hears it all the same.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from listener_head_ros.data.source import INTERLOCUTOR, Segment, Turn

DEFAULT_TAIL_SECONDS = 2.0  # the listening window's longest tail after an utterance
FIGURES: Tuple[str, ...] = ('protocol', 'window', 'tail')


def figure_frames(segment: Segment, figure: str) -> slice:
    """Return the frames of ``segment`` that ``figure`` (one of :data:`FIGURES`) scores."""
    if figure not in FIGURES:
        raise ValueError(f'figure must be one of {FIGURES}, not {figure!r}')
    return {'protocol': segment.utterance, 'window': segment.window,
            'tail': segment.tail}[figure]


def frame_span(start: float, end: float, sample_rate: int, hop: int, n_frames: int
               ) -> Tuple[int, int]:
    """Return ``(first, stop)``: the frames whose end lies in ``(start, end]``, clipped."""
    first = int(round(start * sample_rate)) // hop
    stop = int(round(end * sample_rate)) // hop
    return min(max(first, 0), n_frames), min(max(stop, first, 0), n_frames)


def window_end_time(turn: Turn, turns: Sequence[Turn], tail_seconds: float) -> float:
    """Return when the listening window of ``turn`` ends (see the module docstring)."""
    end = turn.end + tail_seconds
    for other in turns:
        if other is not turn and other.end > turn.end:
            end = min(end, max(other.start, turn.end))
    return end


def listening_segments(turns: Sequence[Turn], n_frames: int, sample_rate: int, hop: int,
                       tail_seconds: float = DEFAULT_TAIL_SECONDS, min_seconds: float = 0.0,
                       followed: str = INTERLOCUTOR) -> List[Segment]:
    """
    Return the segments of one dialog's turns of role ``followed``, in turn order.

    ``followed`` is the :attr:`~listener_head_ros.data.source.Turn.role` whose utterances
    are segmented: the interlocutor's (a listening model), or the listener's own (a speaking
    model, whose windows are its own utterances and the pauses after them).
    """
    if tail_seconds < 0.0 or min_seconds < 0.0:
        raise ValueError('tail_seconds and min_seconds must be >= 0')
    audio_end = n_frames * hop
    segments = []
    for turn in turns:
        if turn.role != followed:
            continue
        first, stop = frame_span(turn.start, turn.end, sample_rate, hop, n_frames)
        _, window_stop = frame_span(turn.start, window_end_time(turn, turns, tail_seconds),
                                    sample_rate, hop, n_frames)
        s0, s1 = int(round(turn.start * sample_rate)), int(round(turn.end * sample_rate))
        excluded = ''
        if s1 > audio_end + hop:
            excluded = 'outside_audio'
        elif stop <= first or s1 - s0 < min_seconds * sample_rate:
            excluded = 'too_short'
        segments.append(Segment(turn.utterance_id, first, stop, max(window_stop, stop),
                                excluded))
    return segments


def segment_masks(segments: Sequence[Segment], n_frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """Return the per-frame ``(utterance, window)`` bool masks of ``segments``."""
    utterance = np.zeros(n_frames, dtype=bool)
    window = np.zeros(n_frames, dtype=bool)
    for s in segments:
        utterance[s.start:s.end] = True
        window[s.start:s.window_end] = True
    return utterance, window
