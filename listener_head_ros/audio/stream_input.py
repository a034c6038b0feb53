"""
Audio message intake: decode, pick a channel, resample and buffer, with counters.

One :class:`AudioStreamInput` sits behind the audio subscription of the listener node. It turns
raw ``AudioData`` payloads, described by the last ``AudioInfo`` (or a fallback format), into
mono float32 samples at the model rate inside a bounded :class:`AudioRingBuffer`. Every bad
message is counted and described; none is silently misread, and no payload makes
:meth:`~AudioStreamInput.push` raise.

What one message may cost is bounded: a format is accepted only with a sample rate and channel
count in the ranges of the ``input.sample_rate`` and ``input.channels`` settings
(:data:`FORMAT_BOUNDS`), and a payload is refused whole, before it is decoded, when it
exceeds :data:`MAX_MESSAGE_BYTES` or holds more audio than the ring buffer (``buffer_seconds``),
which it could only overflow. So decoding takes memory proportional to at most
:data:`MAX_MESSAGE_BYTES`, and one message's resampled output is at most the buffer's capacity
plus the few thousand samples the resampler held back from earlier messages. The buffer only
ever holds finite samples in -1..1: the resampler's ringing on full-scale input is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import threading
from typing import Optional

import numpy as np

from listener_head_ros.audio.pcm import (
    AudioFormat, ChannelMix, decode_pcm, FormatBounds, payload_bytes, to_mono,
    UnsupportedAudioFormat, validate_format)
from listener_head_ros.audio.resample import StreamingResampler
from listener_head_ros.audio.ring_buffer import AudioRingBuffer
from listener_head_ros.schema import setting_specs
from listener_head_ros.settings import InputSettings

MAX_MESSAGE_BYTES = 1 << 20
"""Largest payload of one message: 1 MiB, 5.4 s of 48 kHz stereo S16LE; larger is refused."""


def _input_format_bounds() -> FormatBounds:
    """Return the accepted sample rates and channel counts: the ``input.*`` settings' ranges."""
    ranges = {spec.name: spec.range for spec in setting_specs(InputSettings)}
    (rate_low, rate_high), (channels_low, channels_high) = (
        ranges['sample_rate'], ranges['channels'])
    return FormatBounds((int(rate_low), int(rate_high)), (int(channels_low), int(channels_high)))


FORMAT_BOUNDS = _input_format_bounds()
"""The sample rates and channel counts a format may declare; any other is refused."""


@dataclass
class AudioInputStats:
    """Counters of what the audio input has received and what it had to refuse or repair."""

    messages: int = 0
    input_frames: int = 0  # frames (samples per channel) decoded at the input rate
    output_samples: int = 0  # mono samples written at the model rate
    empty_messages: int = 0
    malformed_messages: int = 0  # not bytes, or partial frames: the message was refused whole
    rejected_messages: int = 0  # undecodable format (e.g. mp3): the message was refused whole
    oversized_messages: int = 0  # over MAX_MESSAGE_BYTES or the buffer: refused undecoded
    nonfinite_samples: int = 0  # NaN/Inf floats replaced by 0
    muted_messages: int = 0  # discarded while muted (the robot is speaking)
    format_changes: int = 0
    rejected_formats: int = 0  # set_format calls refused: undecodable or out-of-range formats


class AudioStreamInput:
    """Turn audio message payloads into model-rate mono samples in a bounded ring buffer."""

    def __init__(self, model_rate: int, buffer_seconds: float, fallback: AudioFormat,
                 channel: ChannelMix = 'mean') -> None:
        if buffer_seconds <= 0:
            raise ValueError('buffer_seconds must be positive')
        self.model_rate = int(model_rate)
        self.channel = channel
        self.buffer = AudioRingBuffer(int(round(buffer_seconds * self.model_rate)))
        self.stats = AudioInputStats()
        self.muted = False
        self.last_error: Optional[str] = None
        self._lock = threading.Lock()
        self._format = fallback
        self._format_error: Optional[str] = None
        self._resampler: Optional[StreamingResampler] = None
        self._apply_format(fallback)

    @property
    def format(self) -> AudioFormat:
        """Return the format that payloads are decoded with."""
        return self._format

    @property
    def format_error(self) -> Optional[str]:
        """Return why the current format cannot be decoded, or None when it can."""
        return self._format_error

    def set_format(self, fmt: AudioFormat) -> Optional[str]:
        """Decode later payloads with ``fmt``; return an error message if it is refused."""
        with self._lock:
            if fmt != self._format:
                self.stats.format_changes += 1
                self._apply_format(fmt)
            if self._format_error is not None:
                self.stats.rejected_formats += 1
            return self._format_error

    def _apply_format(self, fmt: AudioFormat) -> None:
        self._format = fmt
        try:
            validate_format(fmt, FORMAT_BOUNDS)
        except UnsupportedAudioFormat as error:
            self._format_error, self._resampler = str(error), None
        else:
            self._format_error = None
            self._resampler = StreamingResampler(fmt.sample_rate, self.model_rate)

    def push(self, payload: object) -> Optional[str]:
        """Decode one message payload into the buffer; return an error message if refused."""
        with self._lock:
            self.stats.messages += 1
            if self.muted:
                self.stats.muted_messages += 1
                return None
            if self._format_error is not None:
                self.stats.rejected_messages += 1
                return self._remember(self._format_error)
            try:
                raw = payload_bytes(payload)
                oversized = self._oversized(raw.size)
                if oversized is not None:
                    self.stats.oversized_messages += 1
                    return self._remember(oversized)
                decoded = decode_pcm(raw, self._format)
                mono = to_mono(decoded.samples, self.channel)
            except ValueError as error:  # MalformedAudio, or a channel index out of range
                self.stats.malformed_messages += 1
                return self._remember(str(error))
            if decoded.frames == 0:
                self.stats.empty_messages += 1
                return None
            self.stats.nonfinite_samples += decoded.nonfinite_count
            self.stats.input_frames += decoded.frames
            samples = np.clip(self._resampler.process(mono), -1.0, 1.0)
            self.stats.output_samples += int(samples.size)
            self.buffer.write(samples)
            if decoded.nonfinite_count:
                return self._remember(
                    f'replaced {decoded.nonfinite_count} NaN/Inf sample(s) with silence')
            return None

    def _oversized(self, size: int) -> Optional[str]:
        """Return why a payload of ``size`` bytes is too big for one message, or None."""
        if size > MAX_MESSAGE_BYTES:
            return (f'audio message of {size} bytes exceeds the limit of {MAX_MESSAGE_BYTES} '
                    'bytes per message; publish shorter messages')
        fmt = self._format
        frames = size // fmt.frame_bytes
        if frames * self.model_rate > self.buffer.capacity * fmt.sample_rate:
            return (f'audio message of {frames} frames ({frames / fmt.sample_rate:.3g} s at '
                    f'{fmt.sample_rate} Hz) is longer than the '
                    f'{self.buffer.capacity / self.model_rate:.3g} s audio buffer '
                    '(buffer_seconds), which it could only overflow; publish shorter messages')
        return None

    def snapshot(self) -> AudioInputStats:
        """Return a copy of the counters, taken between pushes (every counted push is done)."""
        with self._lock:
            return replace(self.stats)

    def set_muted(self, muted: bool) -> None:
        """Discard incoming audio while ``muted`` (e.g. the robot's own speech)."""
        with self._lock:
            if muted and not self.muted:
                self.buffer.clear()
                if self._resampler is not None:
                    self._resampler.reset()
            self.muted = bool(muted)

    def _remember(self, message: str) -> str:
        self.last_error = message
        return message
