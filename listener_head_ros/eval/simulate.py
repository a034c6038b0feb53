"""
Simulate the listener node on recorded audio: no ROS runtime, much faster than real time.

:func:`simulate_node` runs a :class:`~listener_head_ros.build.Listener` (built by
:func:`~listener_head_ros.build.build_listener` from the node's settings) through the node's own
real-time loop: the payloads go through the same
:class:`~listener_head_ros.audio.stream_input.AudioStreamInput` (decoding, channel selection,
resampling, ring buffer) and the same :class:`~listener_head_ros.engine.ListenerEngine` (hop
stepping, drop policy, pose shaping, neutral return). Ticks are simulated on bag time at the
node's ``frame_rate``, one timer period after the bag start; before a tick at time ``t`` every
audio message stamped ``<= t`` has been pushed (it would have arrived). This is the node in
ideal conditions: every tick on time, no message late, so no frame is dropped. The poses are
stamped with the tick time, as the node stamps its ``HeadPose`` with its (sim) clock, so the
replay trace and this one are scored by the same code. :func:`simulate_audio` does the same
for a raw audio array, as training scores a fold through the node's streaming path.

Transcripts. :func:`simulate_node` feeds the bag's recognition results
(:attr:`BagContents.transcripts`) as the node receives them on ``topics.speech``: a result is
handed in before the first tick at or after its bag time, after every audio message stamped at
or before it and before any later one, through
:meth:`~listener_head_ros.engine.ListenerEngine.add_live_transcript`, which stamps it with the
stream time of the audio received by then, as the node does on arrival. :func:`simulate_audio`
takes results whose times are stream times already (``transcripts``) and queues each one,
unchanged, before the first tick at or after its time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from listener_head_ros.audio.pcm import AudioFormat
from listener_head_ros.bags.reader import BagContents, BagError
from listener_head_ros.build import Listener
from listener_head_ros.models.base import TranscriptEvent
from listener_head_ros.streams import HEAD

CHUNK_FRAMES = 512  # samples per message, as audio_capture and mgonzs13/audio_common send


@dataclass
class Trace:
    """What a listener published over a bag: poses at their stamps, events and counters."""

    times: np.ndarray  # (n,) seconds of bag time (header stamps)
    poses: np.ndarray  # (n, 3) radians
    backchannels: List[Tuple[float, str, float, float]]  # (time, kind, intensity, duration)
    frames_stepped: int
    frames_dropped: int
    samples: Optional[np.ndarray] = None  # (n, S, 3) radians, raw head samples of S > 1 models
    latency: Dict[str, Any] = field(default_factory=dict)  # replay only
    notes: List[str] = field(default_factory=list)


def simulate_node(contents: BagContents, listener: Listener,
                  progress: Optional[Callable[[float], None]] = None) -> Trace:
    """Run ``listener`` through the node's loop on the bag's audio (see the module docstring)."""
    if contents.audio_format is not None:
        error = listener.audio_input.set_format(contents.audio_format)
        if error:
            raise BagError(f'bag {contents.path}: AudioInfo {contents.audio_format}: {error}')
    stamps_ns = np.round(contents.audio_stamps * 1e9).astype(np.int64)
    speech = [(_ns(t), event) for t, event in contents.transcripts]
    return _run(listener, stamps_ns, contents.audio_payloads, int(round(contents.start * 1e9)),
                int(round(contents.end * 1e9)), progress, speech, live=True)


def simulate_audio(listener: Listener, audio: np.ndarray, sample_rate: int,
                   chunk_frames: int = CHUNK_FRAMES,
                   transcripts: Sequence[TranscriptEvent] = ()) -> Trace:
    """
    Run ``listener`` on mono float audio as a microphone would stream it; times from 0 s.

    The audio goes in as F32LE chunks of ``chunk_frames`` samples, each stamped at its last
    sample, and the node ticks at its frame rate until the last chunk: the node's streaming
    path on a raw signal, for scoring a model as it would run on the robot. ``transcripts``
    (times in stream seconds) reach the engine before the first tick at or after their time.
    """
    samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
    error = listener.audio_input.set_format(
        AudioFormat(channels=1, sample_rate=int(sample_rate), sample_format='F32LE'))
    if error:
        raise ValueError(f'cannot stream audio at {sample_rate} Hz: {error}')
    count = samples.size // chunk_frames
    payloads = [samples[i * chunk_frames:(i + 1) * chunk_frames].tobytes() for i in range(count)]
    stamps_ns = (np.arange(1, count + 1, dtype=np.int64) * chunk_frames * 10 ** 9
                 // int(sample_rate))
    speech = sorted(((_ns(e.time), e) for e in transcripts), key=lambda item: item[0])
    return _run(listener, stamps_ns, payloads, 0, int(stamps_ns[-1]) if count else 0, None,
                speech, live=False)


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _run(listener: Listener, stamps_ns: np.ndarray, payloads: Sequence[bytes], start_ns: int,
         end_ns: int, progress: Optional[Callable[[float], None]],
         speech: Sequence[Tuple[int, TranscriptEvent]], live: bool) -> Trace:
    """
    Push each payload before the first tick at or after its stamp; tick until ``end_ns``.

    The results of ``speech`` ((ns, event), in time order) go in between, after the audio
    stamped at or before them: ``live``, stamped by the engine on arrival as the node does;
    else queued with their own times.
    """
    engine, audio_input = listener.engine, listener.audio_input
    engine.reset()
    period_ns = int(1e9 / listener.settings.frame_rate)  # the integer period of the rcl timer
    times, poses, samples, events, next_audio, next_speech = [], [], [], [], 0, 0
    tick_ns, ticks = start_ns + period_ns, 0
    multi = listener.model.num_samples > 1
    while tick_ns <= end_ns:
        while next_speech < len(speech) and speech[next_speech][0] <= tick_ns:
            when, event = speech[next_speech]
            while next_audio < stamps_ns.size and stamps_ns[next_audio] <= when:
                audio_input.push(payloads[next_audio])
                next_audio += 1
            if live:
                engine.add_live_transcript(event.text, final=event.final,
                                           confidence=event.confidence)
            else:
                engine.add_transcript(event)
            next_speech += 1
        while next_audio < stamps_ns.size and stamps_ns[next_audio] <= tick_ns:
            audio_input.push(payloads[next_audio])
            next_audio += 1
        output = engine.tick()
        t = tick_ns * 1e-9
        times.append(t)
        poses.append(output.frame.pose)
        if multi:
            samples.append(np.array(output.frame.samples[HEAD.name], dtype=np.float64))
        events.extend((t, e.kind, float(e.intensity), float(e.duration))
                      for e in output.frame.backchannels)
        tick_ns += period_ns
        ticks += 1
        if progress is not None and ticks % 30 == 0:
            progress(t - start_ns * 1e-9)
    errors = audio_input.stats.malformed_messages + audio_input.stats.rejected_messages
    notes = [f'{errors} audio message(s) refused: {audio_input.last_error}'] if errors else []
    return Trace(np.asarray(times), np.asarray(poses, dtype=np.float64).reshape(-1, 3), events,
                 engine.frames_stepped, engine.frames_dropped,
                 np.asarray(samples) if multi else None, notes=notes)
