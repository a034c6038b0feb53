"""
Read an evaluation bag: the interlocutor's audio and transcript, the listener's head, the turns.

:func:`read_bag` loads a bag written by :mod:`listener_head_ros.bags.convert` (or recorded on a
robot with the same topics, :mod:`listener_head_ros.bags.topics`) through ``rosbags``'
``AnyReader`` with the real message types, and checks it first, so that a bad bag fails before
any work starts with a :class:`BagError` that says what is wrong: not a bag, truncated or
corrupt, no audio topic, an audio topic of another type. A bag without ``AudioInfo`` is accepted
with a warning: the audio is then decoded with the node's ``input.*`` settings (S16LE, 16 kHz,
mono by default), exactly as the listener node does until an ``AudioInfo`` arrives.

The transcript topic (``hri_msgs/msg/LiveSpeech``, :data:`TRANSCRIPT_TOPIC`) is optional: a bag
without it (older bags) has no transcripts. Each message becomes a recognition result as the
listener node reads one (``topics.speech``): the ``final`` text when it is set, else the
``incremental`` one, confidence clipped to 0..1 (0 when not finite). A message with neither
text, or the topic with another type, is left out and counted in a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from listener_head_ros.audio.pcm import AudioFormat
from listener_head_ros.bags.topics import (
    AUDIO_INFO_TOPIC, AUDIO_TOPIC, AUDIO_TYPES, TRANSCRIPT_TOPIC, TRUTH_TOPIC, TURN_TOPIC)
from listener_head_ros.data.transcripts import live_speech_result
from listener_head_ros.models.base import TranscriptEvent

METADATA_FILE = 'metadata.yaml'


class BagError(RuntimeError):
    """A bag cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Turn:
    """One transcribed utterance, in bag seconds."""

    utterance: str
    speaker: str
    listener: str
    start: float
    end: float

    @property
    def is_listener_sample(self) -> bool:
        """Return True when the listener listens (the other actor speaks)."""
        return self.speaker != self.listener


@dataclass
class BagContents:
    """What an evaluation needs from a bag (times in seconds of bag time)."""

    path: Path
    audio_stamps: np.ndarray  # (n,) seconds
    audio_payloads: List[bytes]
    audio_format: Optional[AudioFormat]  # None: the bag has no AudioInfo
    truth_times: np.ndarray  # (m,) seconds
    truth: np.ndarray  # (m, 3) radians roll, pitch, yaw
    turns: List[Turn]
    start: float  # bag start, seconds
    end: float  # bag end, seconds
    warnings: List[str] = field(default_factory=list)
    # (bag seconds, result) of the transcript topic in bag order; each result's time is its
    # header stamp (s); the stream time a node gives it depends on the audio received by then
    transcripts: List[Tuple[float, TranscriptEvent]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Return the bag's duration in seconds."""
        return self.end - self.start

    @property
    def audio_seconds(self) -> float:
        """Return the duration of the audio, from the bag start to the last audio stamp."""
        return float(self.audio_stamps[-1] - self.start) if self.audio_stamps.size else 0.0


def _seconds(ns: int) -> float:
    return ns * 1e-9


def live_speech_event(incremental: str, final: str, confidence: float, time: float
                      ) -> Optional[TranscriptEvent]:
    """Return the result a ``LiveSpeech`` message gives the node, or None without text."""
    text, is_final, confidence = live_speech_result(incremental, final, confidence)
    if not text:
        return None
    return TranscriptEvent(time=time, text=text, final=is_final, confidence=confidence)


def read_bag(path: Path | str, *, audio_topic: str = AUDIO_TOPIC,
             audio_info_topic: str = AUDIO_INFO_TOPIC, truth_topic: str = TRUTH_TOPIC,
             turn_topic: str = TURN_TOPIC,
             transcript_topic: str = TRANSCRIPT_TOPIC) -> BagContents:
    """Read and check a bag; raise :class:`BagError` with a clear message if it is unusable."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from listener_head_ros.bags.typestore import listener_typestore, LIVE_SPEECH
    path = Path(path)
    if not path.exists():
        raise BagError(f'bag {path} does not exist')
    if path.is_dir() and not (path / METADATA_FILE).is_file():
        raise BagError(f'bag {path} has no {METADATA_FILE} (a recording that was cut off '
                       f'leaves none): rebuild it with `ros2 bag reindex {path}`')
    contents = BagContents(path, np.zeros(0), [], None, np.zeros(0), np.zeros((0, 3)), [],
                           0.0, 0.0)
    read = malformed = 0
    try:
        with AnyReader([path], default_typestore=listener_typestore()) as reader:
            topics = reader.topics
            if audio_topic not in topics:
                raise BagError(f'bag {path} has no audio topic {audio_topic} (topics: '
                               f'{", ".join(sorted(topics)) or "none"})')
            audio_type = topics[audio_topic].msgtype
            if audio_type not in AUDIO_TYPES:
                raise BagError(f'bag {path}: topic {audio_topic} has type {audio_type}, '
                               f'expected {AUDIO_TYPES[0]} (or {AUDIO_TYPES[1]})')
            contents.start, contents.end = (_seconds(reader.start_time),
                                            _seconds(reader.end_time))
            if transcript_topic in topics and topics[transcript_topic].msgtype != LIVE_SPEECH:
                contents.warnings.append(
                    f'topic {transcript_topic} has type {topics[transcript_topic].msgtype}, '
                    f'expected {LIVE_SPEECH}: no transcript read')
                transcript_topic = ''
            wanted = [c for c in reader.connections
                      if c.topic in (audio_topic, audio_info_topic, truth_topic, turn_topic,
                                     transcript_topic)]
            listed = {c.topic: topics[c.topic].msgcount for c in wanted}
            counts = dict.fromkeys(listed, 0)
            stamps, truth_t, truth = [], [], []
            for connection, ns, raw in reader.messages(connections=wanted):
                msg = reader.deserialize(raw, connection.msgtype)
                read += 1
                topic = connection.topic
                counts[topic] += 1
                if topic == audio_topic:
                    data = msg.audio.data if connection.msgtype == AUDIO_TYPES[1] else msg.data
                    stamps.append(_seconds(ns))
                    contents.audio_payloads.append(np.asarray(data, dtype=np.uint8).tobytes())
                elif topic == audio_info_topic and contents.audio_format is None:
                    contents.audio_format = AudioFormat(
                        channels=int(msg.channels), sample_rate=int(msg.sample_rate),
                        sample_format=msg.sample_format or 'S16LE',
                        coding_format=msg.coding_format)
                elif topic == truth_topic:
                    truth_t.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
                    truth.append((msg.roll, msg.pitch, msg.yaw))
                elif topic == turn_topic:
                    _add_turn_event(contents, ns, msg.data)
                elif topic == transcript_topic:
                    event = live_speech_event(
                        msg.incremental, msg.final, msg.confidence,
                        msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
                    if event is None:
                        malformed += 1
                    else:
                        contents.transcripts.append((_seconds(ns), event))
    except BagError:
        raise
    except (AnyReaderError, OSError, ValueError, KeyError, EOFError) as error:
        where = f' after {read} messages' if read else ''
        raise BagError(f'cannot read bag {path}{where}: {error} (is it truncated or corrupt? '
                       'a bag cut while recording must be reindexed first)') from error
    except Exception as error:  # noqa: B902 - storage back ends raise their own error types
        where = f' after {read} messages' if read else ''
        raise BagError(f'cannot read bag {path}{where}: {type(error).__name__}: {error} '
                       '(is it truncated or corrupt?)') from error
    _check_counts(contents, listed, counts, audio_topic)
    if malformed:
        contents.warnings.append(f'ignored {malformed} transcript message(s) on '
                                 f'{transcript_topic} with no text')
    contents.audio_stamps = np.asarray(stamps, dtype=np.float64)
    contents.truth_times = np.asarray(truth_t, dtype=np.float64)
    contents.truth = np.asarray(truth, dtype=np.float64).reshape(-1, 3)
    if not contents.audio_payloads:
        raise BagError(f'bag {path}: topic {audio_topic} holds no message')
    if contents.audio_format is None:
        contents.warnings.append(
            f'no AudioInfo on {audio_info_topic}: the audio is decoded with the node\'s '
            'input.* parameters (S16LE, 16 kHz, mono unless the parameter file says otherwise)')
    if not contents.truth_times.size:
        contents.warnings.append(f'no ground truth on {truth_topic}: nothing can be scored')
    if not any(t.is_listener_sample for t in contents.turns):
        contents.warnings.append(f'no listener turn on {turn_topic}: nothing can be scored')
    return contents


def _check_counts(contents: BagContents, listed: Dict[str, int], counts: Dict[str, int],
                  audio_topic: str) -> None:
    """
    Compare the messages read with the counts that ``metadata.yaml`` lists.

    A storage file damaged in place still opens, and its readers skip what they cannot parse,
    so a short count is the only sign. Missing audio would change every score: refuse it.
    Missing truth or turns are warned about.
    """
    for topic, read in counts.items():
        if read >= listed[topic]:
            continue
        message = (f'read {read} of the {listed[topic]} messages that {METADATA_FILE} lists on '
                   f'{topic}: the storage file is damaged')
        if topic == audio_topic:
            raise BagError(f'bag {contents.path}: {message}; refusing to score a partial '
                           'recording (repair or re-record the bag)')
        contents.warnings.append(message)


def _add_turn_event(contents: BagContents, ns: int, text: str) -> None:
    """Add the turn of a ``start`` event; the message's bag time is the turn's start."""
    try:
        event = json.loads(text)
        if event.get('event') != 'start':
            return
        start = _seconds(ns)
        length = float(event['end']) - float(event['start'])
        contents.turns.append(Turn(str(event['utterance']), str(event['speaker']),
                                   str(event['listener']), start, start + length))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        contents.warnings.append(f'ignored a malformed speaker turn event: {text[:80]!r}')
