"""Tests of AudioStreamInput: decoding, resampling, down-mixing and the bad-message counters."""

import array

import numpy as np
import pytest

from listener_head_ros.audio.pcm import AudioFormat, encode_pcm
from listener_head_ros.audio.stream_input import AudioStreamInput

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


def test_long_chunks_overflow_the_bounded_buffer():
    """A 10 s chunk never grows the buffer: the oldest samples are discarded and counted."""
    stream = AudioStreamInput(RATE, 2.0, S16_MONO)
    signal = np.linspace(-0.5, 0.5, 10 * RATE, dtype=np.float32)
    assert stream.push(encode_pcm(signal, 'S16LE')) is None
    assert stream.buffer.available == 2 * RATE
    assert stream.buffer.overflowed_samples == 8 * RATE
    np.testing.assert_allclose(drain(stream), signal[-2 * RATE:], atol=1.0 / 32768)


def test_rejects_a_non_positive_buffer():
    """A zero-length buffer is a configuration error."""
    with pytest.raises(ValueError, match='buffer_seconds'):
        AudioStreamInput(RATE, 0.0, S16_MONO)
