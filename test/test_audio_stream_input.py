"""Tests of AudioStreamInput: decoding, resampling, down-mixing and the bad-message counters."""

import array
import tracemalloc

import numpy as np
import pytest

from listener_head_ros.audio.pcm import AudioFormat, encode_pcm
from listener_head_ros.audio.stream_input import (
    AudioStreamInput, FORMAT_BOUNDS, MAX_MESSAGE_BYTES)
from listener_head_ros.schema import setting_specs
from listener_head_ros.settings import InputSettings

RATE = 16000
S16_MONO = AudioFormat(channels=1, sample_rate=RATE, sample_format='S16LE')
F32_STEREO_48K = AudioFormat(channels=2, sample_rate=48000, sample_format='F32LE')


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """Return a sine tone as float32."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def push_chunks(stream: AudioStreamInput, payload: bytes, chunk_bytes: int) -> None:
    """Push a payload in chunks of ``chunk_bytes``; every chunk must be accepted."""
    for start in range(0, len(payload), chunk_bytes):
        assert stream.push(payload[start:start + chunk_bytes]) is None


def drain(stream: AudioStreamInput) -> np.ndarray:
    """Return (and remove) every sample in the stream's buffer."""
    return stream.buffer.read_hops(1).reshape(-1)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    """Return the frequency of the largest FFT magnitude of a Hann-windowed signal."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1.0 / rate)[np.argmax(spectrum)])


def test_s16le_16k_mono_passes_through():
    """S16LE 16 kHz mono is decoded sample for sample, without resampling."""
    stream = AudioStreamInput(RATE, 2.0, S16_MONO)
    signal = tone(300.0, 0.5, RATE)
    push_chunks(stream, encode_pcm(signal, 'S16LE'), 1024)
    out = drain(stream)
    assert out.size == signal.size and out.dtype == np.float32
    np.testing.assert_allclose(out, signal, atol=1.0 / 32768)
    stats = stream.stats
    assert (stats.messages, stats.input_frames, stats.output_samples) == (16, 8000, 8000)
    assert stats.malformed_messages == stats.rejected_messages == stats.empty_messages == 0


@pytest.mark.parametrize('payload_type', [bytes, bytearray, lambda b: array.array('B', b), list])
def test_accepts_every_payload_type_of_audio_data(payload_type):
    """Bytes, bytearray, array('B') and lists of ints (AudioData.data) decode the same."""
    stream = AudioStreamInput(RATE, 1.0, S16_MONO)
    signal = np.array([0.0, 0.5, -0.5, 0.25], dtype=np.float32)
    assert stream.push(payload_type(encode_pcm(signal, 'S16LE'))) is None
    np.testing.assert_allclose(drain(stream), signal, atol=1.0 / 32768)


def test_f32le_48k_stereo_is_resampled_and_down_mixed():
    """F32LE 48 kHz stereo becomes 16 kHz mono: a 440 Hz tone survives at the mean level."""
    stream = AudioStreamInput(RATE, 4.0, S16_MONO)
    assert stream.set_format(F32_STEREO_48K) is None
    left, right = tone(440.0, 1.0, 48000, 0.8), tone(440.0, 1.0, 48000, 0.2)
    push_chunks(stream, encode_pcm(np.stack([left, right], axis=1), 'F32LE'), 480 * 8)
    out = drain(stream)
    assert abs(out.size - RATE) <= 500  # the resampler holds back its filter delay
    assert stream.stats.input_frames == 48000 and stream.stats.format_changes == 1
    steady = out[1000:]
    assert abs(peak_frequency(steady, RATE) - 440.0) < 2.0
    assert np.sqrt(np.mean(steady ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_channel_index_selects_one_channel():
    """input.channel as an index picks that channel of interleaved stereo."""
    stream = AudioStreamInput(RATE, 4.0, F32_STEREO_48K, channel=1)
    stereo = np.stack([tone(440.0, 1.0, 48000), tone(1000.0, 1.0, 48000)], axis=1)
    push_chunks(stream, encode_pcm(stereo, 'F32LE'), 4096 * 8)
    assert abs(peak_frequency(drain(stream)[1000:], RATE) - 1000.0) < 2.0


def test_mid_stream_format_change_decodes_both_parts():
    """A new AudioInfo mid-stream switches the decoder; both parts land in the buffer."""
    stream = AudioStreamInput(RATE, 4.0, S16_MONO)
    push_chunks(stream, encode_pcm(tone(300.0, 0.5, RATE), 'S16LE'), 1024)
    first = drain(stream)
    assert first.size == 8000 and abs(peak_frequency(first, RATE) - 300.0) < 2.0
    assert stream.set_format(F32_STEREO_48K) is None
    assert stream.format == F32_STEREO_48K
    stereo = np.repeat(tone(440.0, 1.0, 48000)[:, None], 2, axis=1)
    push_chunks(stream, encode_pcm(stereo, 'F32LE'), 1024 * 8)
    second = drain(stream)
    assert abs(second.size - RATE) <= 500 and abs(peak_frequency(second[500:], RATE) - 440) < 2
    assert stream.stats.input_frames == 8000 + 48000
    assert stream.stats.format_changes == 1 and stream.stats.malformed_messages == 0
    assert stream.set_format(F32_STEREO_48K) is None and stream.stats.format_changes == 1


def test_mp3_is_rejected_with_the_format_wave_hint():
    """mp3 AudioInfo is refused with a format:=wave hint; its messages are counted, not decoded."""
    stream = AudioStreamInput(RATE, 1.0, S16_MONO)
    error = stream.set_format(AudioFormat(1, RATE, 'S16LE', coding_format='mp3'))
    assert error is not None and 'format:=wave' in error and 'mp3' in error
    assert stream.format_error == error
    mp3_frame = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)
    for _ in range(3):
        assert stream.push(mp3_frame) == error
    assert stream.stats.rejected_messages == 3 and stream.stats.messages == 3
    assert stream.buffer.available == 0 and stream.stats.input_frames == 0
    assert stream.last_error == error
    assert stream.set_format(S16_MONO) is None and stream.format_error is None
    assert stream.push(encode_pcm(np.zeros(10), 'S16LE')) is None
    assert stream.buffer.available == 10


def test_unknown_sample_format_is_rejected():
    """A sample_format that is not raw PCM gives a clear error listing the supported ones."""
    stream = AudioStreamInput(RATE, 1.0, AudioFormat(sample_format='XYZ'))
    assert "unsupported sample_format 'XYZ'" in stream.format_error
    assert 'S16LE' in stream.format_error
    stream.push(b'\x00\x00')
    assert stream.stats.rejected_messages == 1 and stream.buffer.available == 0


@pytest.mark.parametrize('fmt, size', [(S16_MONO, 5), (F32_STEREO_48K, 12),
                                       (F32_STEREO_48K, 3)])
def test_partial_frames_are_malformed_and_not_written(fmt, size):
    """A payload that is not a whole number of frames is refused whole and counted."""
    stream = AudioStreamInput(RATE, 1.0, fmt)
    error = stream.push(bytes(size))
    assert error is not None and 'leftover bytes' in error and 'AudioInfo' in error
    assert stream.stats.malformed_messages == 1 and stream.buffer.available == 0
    assert stream.stats.input_frames == 0 and stream.last_error == error


def test_non_finite_floats_are_replaced_and_counted():
    """Replace NaN and Inf F32 samples with silence, count them, and keep the rest."""
    stream = AudioStreamInput(RATE, 1.0, AudioFormat(1, RATE, 'F32LE'))
    values = np.array([0.25, np.nan, np.inf, -np.inf, -0.5, np.nan], dtype='<f4')
    error = stream.push(values.tobytes())
    assert error is not None and 'replaced 4 NaN/Inf' in error
    assert stream.stats.nonfinite_samples == 4
    out = drain(stream)
    np.testing.assert_array_equal(out, [0.25, 0.0, 0.0, 0.0, -0.5, 0.0])


def test_empty_messages_are_counted():
    """Empty payloads are counted and write nothing."""
    stream = AudioStreamInput(RATE, 1.0, S16_MONO)
    assert stream.push(b'') is None and stream.push([]) is None
    assert stream.stats.empty_messages == 2 and stream.stats.messages == 2
    assert stream.buffer.available == 0 and stream.stats.malformed_messages == 0


def test_muted_input_discards_audio():
    """While muted, audio is counted and discarded, and the buffered audio is dropped."""
    stream = AudioStreamInput(RATE, 1.0, S16_MONO)
    payload = encode_pcm(np.full(100, 0.1), 'S16LE')
    stream.push(payload)
    stream.set_muted(True)
    assert stream.buffer.available == 0
    for _ in range(4):
        assert stream.push(payload) is None
    assert stream.stats.muted_messages == 4 and stream.buffer.available == 0
    stream.set_muted(False)
    stream.push(payload)
    assert stream.buffer.available == 100 and stream.stats.muted_messages == 4


def test_channel_index_out_of_range_is_malformed():
    """Selecting a channel the stream does not have is refused with a clear message."""
    stream = AudioStreamInput(RATE, 1.0, F32_STEREO_48K, channel=2)
    error = stream.push(encode_pcm(np.zeros((10, 2)), 'F32LE'))
    assert error is not None and 'channel index 2 is out of range for 2-channel audio' in error
    assert stream.stats.malformed_messages == 1 and stream.buffer.available == 0


def test_the_full_buffer_discards_its_oldest_samples():
    """Two 1.5 s messages into a 2 s buffer: the oldest second is discarded and counted."""
    stream = AudioStreamInput(RATE, 2.0, S16_MONO)
    signal = np.linspace(-0.5, 0.5, 3 * RATE, dtype=np.float32)
    push_chunks(stream, encode_pcm(signal, 'S16LE'), 3 * RATE)
    assert stream.buffer.available == 2 * RATE
    assert stream.buffer.overflowed_samples == RATE
    np.testing.assert_allclose(drain(stream), signal[-2 * RATE:], atol=1.0 / 32768)


def traced_peak_bytes(action) -> int:
    """Return the peak of Python and numpy allocations while ``action()`` runs."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_message_longer_than_the_buffer_is_refused_undecoded():
    """A 10 s message for a 2 s buffer is refused whole, counted, and never decoded."""
    stream = AudioStreamInput(RATE, 2.0, S16_MONO)
    payload = encode_pcm(np.full(10 * RATE, 0.1), 'S16LE')
    errors = []
    assert traced_peak_bytes(lambda: errors.append(stream.push(payload))) < 64 * 1024
    assert errors == ['audio message of 160000 frames (10 s at 16000 Hz) is longer than the '
                      '2 s audio buffer (buffer_seconds), which it could only overflow; '
                      'publish shorter messages']
    stats = stream.snapshot()
    assert (stats.messages, stats.oversized_messages, stats.input_frames) == (1, 1, 0)
    assert stream.buffer.available == 0 and stream.last_error == errors[0]


def test_a_message_over_the_byte_limit_is_refused_undecoded():
    """A payload over MAX_MESSAGE_BYTES is refused before decoding, whatever its duration."""
    stream = AudioStreamInput(RATE, 60.0, AudioFormat(2, 384000, 'F32LE'))
    payload = bytes(MAX_MESSAGE_BYTES + 8)  # 0.34 s: short enough for the buffer
    errors = []
    assert traced_peak_bytes(lambda: errors.append(stream.push(payload))) < 64 * 1024
    assert errors == [f'audio message of {MAX_MESSAGE_BYTES + 8} bytes exceeds the limit of '
                      f'{MAX_MESSAGE_BYTES} bytes per message; publish shorter messages']
    assert stream.stats.oversized_messages == 1 and stream.stats.input_frames == 0
    assert stream.push(bytes(MAX_MESSAGE_BYTES)) is None
    assert stream.stats.input_frames == MAX_MESSAGE_BYTES // 8


def test_one_message_resamples_to_at_most_the_buffer():
    """At the lowest rate (the largest upsampling) a message fills at most the buffer."""
    low = AudioFormat(1, FORMAT_BOUNDS.sample_rate[0], 'U8')
    stream = AudioStreamInput(RATE, 1.0, low)
    longest = bytes(low.sample_rate)  # 1 s of U8, as long as the buffer
    assert stream.push(longest) is None
    assert 0 < stream.stats.output_samples <= stream.buffer.capacity
    assert stream.push(longest + b'\x80') is not None
    assert stream.stats.oversized_messages == 1 and stream.stats.input_frames == low.sample_rate


def test_format_bounds_are_the_input_settings_ranges():
    """Accepted rates and channel counts are the declared ranges of input.sample_rate/channels."""
    ranges = {spec.name: spec.range for spec in setting_specs(InputSettings)}
    assert FORMAT_BOUNDS.sample_rate == ranges['sample_rate']
    assert FORMAT_BOUNDS.channels == ranges['channels']


@pytest.mark.parametrize('fmt, message', [
    (AudioFormat(1, 1, 'S16LE'), 'sample_rate 1 Hz is outside the accepted range'),
    (AudioFormat(1, FORMAT_BOUNDS.sample_rate[0] - 1, 'S16LE'), 'sample_rate'),
    (AudioFormat(1, FORMAT_BOUNDS.sample_rate[1] + 1, 'S16LE'), 'sample_rate'),
    (AudioFormat(1, 4294967295, 'S16LE'),
     'sample_rate 4294967295 Hz is outside the accepted range'),
    (AudioFormat(0, RATE, 'S16LE'), 'channels must be a positive integer, got 0'),
    (AudioFormat(FORMAT_BOUNDS.channels[1] + 1, RATE, 'S16LE'),
     f'channels {FORMAT_BOUNDS.channels[1] + 1} is outside the accepted range'),
    (AudioFormat(1, RATE, 'S16LE' * 1000), "unsupported sample_format 'S16LES16LE"),
])
def test_out_of_range_formats_are_refused_and_counted(fmt, message):
    """Issue 12: AudioInfo(sample_rate=1) and other absurd formats are refused, not resampled."""
    stream = AudioStreamInput(RATE, 2.0, S16_MONO)
    error = stream.set_format(fmt)
    assert error is not None and message in error and len(error) < 300
    assert stream.set_format(fmt) == error
    stats = stream.snapshot()
    assert (stats.format_changes, stats.rejected_formats) == (1, 2)
    payload = bytes(20000)  # the 20 kB message that took 2.26 GB at 1 Hz
    assert traced_peak_bytes(lambda: stream.push(payload)) < 64 * 1024
    assert stream.stats.rejected_messages == 1 and stream.buffer.available == 0


@pytest.mark.parametrize('payload', ['text', [256], [-1], [0.5], object(), 3.5, None])
def test_payloads_that_are_not_bytes_are_malformed(payload):
    """A payload that is not bytes (or ints in 0..255) is refused and counted, never raised."""
    stream = AudioStreamInput(RATE, 1.0, S16_MONO)
    error = stream.push(payload)
    assert error is not None and 'is not bytes or a list of ints in 0..255' in error
    assert stream.stats.malformed_messages == 1 and stream.buffer.available == 0


def test_resampler_ringing_is_clipped():
    """A full-scale 48 kHz square wave overshoots when resampled; the buffer stays in -1..1."""
    stream = AudioStreamInput(RATE, 1.0, AudioFormat(1, 48000, 'F32LE'))
    square = np.sign(np.sin(2 * np.pi * 1000.0 * (np.arange(4800) + 0.5) / 48000))
    assert stream.push(square.astype('<f4').tobytes()) is None
    out = drain(stream)
    assert out.size > 1000 and np.abs(out).max() == 1.0


def test_rejects_a_non_positive_buffer():
    """A zero-length buffer is a configuration error."""
    with pytest.raises(ValueError, match='buffer_seconds'):
        AudioStreamInput(RATE, 0.0, S16_MONO)
