"""
Transcripts as a speech recogniser would have published them: timed words to timed results.

Training must show a model only the text that a live recogniser (asr_vosk, Whisper streaming,
...) would have published by each frame. :func:`simulate_recognition` turns the words of one
utterance, with their times, into the :class:`~listener_head_ros.models.base.TranscriptEvent`
stream of such a recogniser: an incremental result after each word (when the word times are
known) and a final result for the whole utterance, each published ``latency`` seconds after the
audio it covers ends. Without word times only the final result exists.

Word times come from the IEMOCAP release's forced alignments, ``.wdseg`` files
(:func:`parse_wdseg`), one per utterance::

     SFrm  EFrm    SegAScr Word
        0    32     -25434 <s>
       33    61     -38187 EXCUSE
       62    70     -10512 ME(2)
      ...
     Total score:    -1234567
     End of file

``SFrm`` and ``EFrm`` are the first and last 10 ms frames of the word (inclusive) from the
utterance's start; ``(2)`` marks an alternative pronunciation; ``<s>``, ``</s>``, ``<sil>``
and ``++NOISE++``-style fillers are not words. Lines that do not parse are counted, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
import re
from typing import List, Optional, Sequence, Tuple

from listener_head_ros.models.base import TranscriptEvent

WDSEG_FRAME_SECONDS = 0.01
_WDSEG_ROW = re.compile(r'^\s*(\d+)\s+(\d+)\s+(-?\d+)\s+(\S+)\s*$')
_ALTERNATIVE = re.compile(r'\(\d+\)$')


@dataclass(frozen=True)
class TimedWord:
    """One recognised word, times in seconds on the dialog's clock."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class RecognitionConfig:
    """How the simulated recogniser publishes: its delay and whether it sends partials."""

    latency: float = 0.3  # s from the end of the audio a result covers to its publication
    incremental: bool = True  # an incremental result after each word, when word times exist

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency) and 0.0 <= self.latency <= 10.0):
            raise ValueError(f'recognition latency must be in 0..10 s, not {self.latency}')


def is_word(token: str) -> bool:
    """Tell whether an alignment token is a spoken word (not silence, a filler or a marker)."""
    return bool(token) and not (token.startswith('<') or token.startswith('++')
                                or token.startswith('['))


def parse_wdseg(path: Path | str, offset: float = 0.0) -> Tuple[List[TimedWord], int]:
    """
    Return the words of a ``.wdseg`` file, times shifted by ``offset`` s, and the bad lines.

    Words are lower-cased, with pronunciation markers such as ``(2)`` removed.
    """
    words: List[TimedWord] = []
    bad = 0
    for line in Path(path).read_text(encoding='utf-8', errors='replace').splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(('SFrm', 'Total score', 'End of file')):
            continue
        match = _WDSEG_ROW.match(stripped)
        if match is None:
            bad += 1
            continue
        first, last, token = int(match[1]), int(match[2]), match[4]
        if last < first:
            bad += 1
            continue
        token = _ALTERNATIVE.sub('', token)
        if is_word(token):
            words.append(TimedWord(token.lower(), offset + first * WDSEG_FRAME_SECONDS,
                                   offset + (last + 1) * WDSEG_FRAME_SECONDS))
    return words, bad


def simulate_recognition(text: str, start: float, end: float,
                         words: Optional[Sequence[TimedWord]] = None,
                         config: RecognitionConfig = RecognitionConfig()
                         ) -> List[TranscriptEvent]:
    """
    Return the results a live recogniser publishes for one utterance, in time order.

    With ``words`` (and ``config.incremental``), result ``k`` holds the first ``k`` words and
    is published ``latency`` after word ``k`` ends; the final result holds ``text`` and is
    published ``latency`` after ``end``, never before the last incremental one.
    """
    events: List[TranscriptEvent] = []
    if words and config.incremental:
        for k, word in enumerate(words, 1):
            events.append(TranscriptEvent(
                time=word.end + config.latency, text=' '.join(w.text for w in words[:k]),
                final=False, start=start, end=word.end))
    published = max([end + config.latency] + [e.time for e in events])
    events.append(TranscriptEvent(time=published, text=text.strip(), final=True, start=start,
                                  end=end))
    return events


def live_speech_result(incremental: str, final: str, confidence: float
                       ) -> Tuple[str, bool, float]:
    """
    Return (text, final, confidence in 0..1) of an ``hri_msgs/LiveSpeech`` message.

    Its ``final`` text when it has one (a final result), else its ``incremental`` text (a
    partial one); a confidence that is not finite counts as 0. The text may be empty.
    """
    is_final = bool(final.strip())
    confidence = float(confidence) if math.isfinite(confidence) else 0.0
    return ((final if is_final else incremental).strip(), is_final,
            min(max(confidence, 0.0), 1.0))


def event_to_dict(event: TranscriptEvent) -> dict:
    """Return a JSON-ready dict of a transcript event."""
    return {'time': event.time, 'text': event.text, 'final': event.final,
            'start': event.start, 'end': event.end, 'confidence': event.confidence}


def event_from_dict(data: dict) -> TranscriptEvent:
    """Rebuild an event written by :func:`event_to_dict`."""
    return TranscriptEvent(time=float(data['time']), text=str(data['text']),
                           final=bool(data.get('final', True)), start=data.get('start'),
                           end=data.get('end'), confidence=float(data.get('confidence', 1.0)))
