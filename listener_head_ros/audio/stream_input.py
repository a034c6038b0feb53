"""
Audio message intake: decode, pick a channel, resample and buffer, with counters.

One :class:`AudioStreamInput` sits behind the audio subscription of the listener node. It turns
raw ``AudioData`` payloads, described by the last ``AudioInfo`` (or a fallback format), into
mono float32 samples at the model rate inside a bounded :class:`AudioRingBuffer`. Every bad
message is counted and described; none is silently misread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import threading
from typing import Optional

from listener_head_ros.audio.pcm import (
    AudioFormat, ChannelMix, decode_pcm, to_mono, UnsupportedAudioFormat,
    validate_format)
from listener_head_ros.audio.resample import StreamingResampler
from listener_head_ros.audio.ring_buffer import AudioRingBuffer


@dataclass
class AudioInputStats:
    """Counters of what the audio input has received and what it had to refuse or repair."""

    messages: int = 0
    input_frames: int = 0  # frames (samples per channel) decoded at the input rate
    output_samples: int = 0  # mono samples written at the model rate
    empty_messages: int = 0
    malformed_messages: int = 0  # partial frames: the message was refused whole
    rejected_messages: int = 0  # undecodable format (e.g. mp3): the message was refused whole
    nonfinite_samples: int = 0  # NaN/Inf floats replaced by 0
    muted_messages: int = 0  # discarded while muted (the robot is speaking)
    format_changes: int = 0


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
        """Decode later payloads with ``fmt``; return an error message if it is undecodable."""
        with self._lock:
            if fmt == self._format:
                return self._format_error
            self.stats.format_changes += 1
            return self._apply_format(fmt)

    def _apply_format(self, fmt: AudioFormat) -> Optional[str]:
        self._format = fmt
        try:
            validate_format(fmt)
        except UnsupportedAudioFormat as error:
            self._format_error = str(error)
            self._resampler = None
            return self._format_error
        self._format_error = None
        self._resampler = StreamingResampler(fmt.sample_rate, self.model_rate)
        return None

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
                decoded = decode_pcm(payload, self._format)
                mono = to_mono(decoded.samples, self.channel)
            except ValueError as error:  # MalformedAudio, or a channel index out of range
                self.stats.malformed_messages += 1
                return self._remember(str(error))
            if decoded.frames == 0:
                self.stats.empty_messages += 1
                return None
            self.stats.nonfinite_samples += decoded.nonfinite_count
            self.stats.input_frames += decoded.frames
            samples = self._resampler.process(mono)
            self.stats.output_samples += int(samples.size)
            self.buffer.write(samples)
            if decoded.nonfinite_count:
                return self._remember(
                    f'replaced {decoded.nonfinite_count} NaN/Inf sample(s) with silence')
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
