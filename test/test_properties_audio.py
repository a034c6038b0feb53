"""Property tests: PCM decoding and AudioStreamInput with arbitrary AudioInfo and payloads."""

from dataclasses import asdict

from hypothesis import given, settings, strategies as st
import numpy as np

from listener_head_ros.audio.pcm import (
    AudioFormat, decode_pcm, MalformedAudio, SUPPORTED_SAMPLE_FORMATS, UnsupportedAudioFormat)
from listener_head_ros.audio.stream_input import AudioStreamInput, FORMAT_BOUNDS

MODEL_RATE = 16000
REFUSALS = ('muted_messages', 'rejected_messages', 'malformed_messages', 'oversized_messages',
            'empty_messages')
"""The counters of messages that write nothing; a message that writes counts input_frames."""

UINT8, UINT32 = 2 ** 8 - 1, 2 ** 32 - 1  # AudioInfo.channels and AudioInfo.sample_rate

sample_formats = st.one_of(st.sampled_from(SUPPORTED_SAMPLE_FORMATS),
                           st.sampled_from(['s16le', 'float32', 'S24_LE', 'U8 ', '']),
                           st.text(max_size=12))
coding_formats = st.one_of(st.sampled_from(['wave', 'WAVE', '', 'raw', 'mp3', 'opus']),
                           st.text(max_size=12))
in_bounds_rates = st.one_of(st.sampled_from([8000, MODEL_RATE, 44100, 48000]),
                            st.integers(*FORMAT_BOUNDS.sample_rate))


def audio_info(channels, rates):
    """Return AudioFormats built from AudioInfo fields drawn from the given strategies."""
    return st.builds(AudioFormat, channels=channels, sample_rate=rates,
                     sample_format=sample_formats, coding_format=coding_formats)


# What the AudioInfo message can carry, as the listener node turns it into an AudioFormat.
message_formats = audio_info(st.integers(0, UINT8), st.integers(0, UINT32))
# Formats a sane publisher sends, so that many payloads get decoded and resampled.
plausible_formats = st.builds(AudioFormat, channels=st.integers(1, 3), sample_rate=in_bounds_rates,
                              sample_format=st.sampled_from(SUPPORTED_SAMPLE_FORMATS))
# Any integers at all, also beyond the message's field widths.
any_formats = audio_info(st.integers(), st.integers())

WHOLE_FRAMES = 144  # bytes: a whole number of frames of every plausible format
whole_frames = st.integers(0, 12).flatmap(
    lambda n: st.binary(min_size=n * WHOLE_FRAMES, max_size=n * WHOLE_FRAMES))
payloads = st.one_of(st.binary(max_size=400), whole_frames,
                     st.lists(st.integers(-2, 300), max_size=16),
                     st.sampled_from(['', 'text', None, 1.5, [0.5]]))


def assert_valid_samples(samples: np.ndarray) -> None:
    """Assert the documented invariant of decoded and buffered audio."""
    assert samples.dtype == np.float32
    assert np.isfinite(samples).all()
    assert samples.size == 0 or np.abs(samples).max() <= 1.0


@settings(max_examples=100)
@given(fmt=message_formats, data=st.binary(max_size=256))
def test_decode_pcm_refuses_or_decodes_finite_samples_in_range(fmt, data):
    """Any AudioInfo and bytes decode to finite samples in -1..1, or raise a decoding error."""
    try:
        decoded = decode_pcm(data, fmt)
    except (UnsupportedAudioFormat, MalformedAudio) as error:
        assert 0 < len(str(error)) < 400
        return
    assert decoded.samples.shape == (decoded.frames, fmt.channels)
    assert decoded.frames * fmt.frame_bytes == len(data)
    assert_valid_samples(decoded.samples)


operations = st.lists(st.one_of(
    st.tuples(st.just('format'), st.one_of(plausible_formats, message_formats, any_formats)),
    st.tuples(st.just('push'), payloads),
    st.tuples(st.just('push'), payloads),
    st.tuples(st.just('mute'), st.sampled_from([False, False, True])),
    st.tuples(st.just('drain'), st.none()),
), max_size=12)


@settings(max_examples=100)
@given(fallback=plausible_formats, channel=st.sampled_from(['mean', 0, 1]), ops=operations)
def test_stream_input_counts_every_message_once_and_stays_bounded(fallback, channel, ops):
    """Any sequence of AudioInfo, payloads and mutes never raises and keeps the invariants."""
    stream = AudioStreamInput(MODEL_RATE, 0.25, fallback, channel)
    capacity = stream.buffer.capacity
    for op, value in ops:
        before = asdict(stream.snapshot())
        if op == 'format':
            error = stream.set_format(value)
            assert error == stream.format_error
            assert (error is None) == (stream.snapshot().rejected_formats == before[
                'rejected_formats'])
        elif op == 'push':
            error = stream.push(value)
            after = asdict(stream.snapshot())
            assert after['messages'] == before['messages'] + 1
            counted = [name for name in REFUSALS if after[name] != before[name]]
            wrote = after['input_frames'] > before['input_frames']
            assert len(counted) + wrote == 1, (counted, wrote)
            assert all(after[name] == before[name] + 1 for name in counted)
            refused = bool(counted) and counted[0] not in ('muted_messages', 'empty_messages')
            assert refused == (error is not None and not wrote), error
            if error is not None:
                assert stream.last_error == error and len(error) < 400
        elif op == 'mute':
            stream.set_muted(value)
        else:
            assert_valid_samples(stream.buffer.read_hops(1))
        assert 0 <= stream.buffer.available <= capacity
    assert_valid_samples(stream.buffer.read_hops(1))


@settings(max_examples=50)
@given(fmt=plausible_formats, messages=st.lists(whole_frames, min_size=1, max_size=6))
def test_plausible_audio_is_decoded_into_the_bounded_buffer(fmt, messages):
    """Whole frames of a sane format are written or refused as oversized; output is bounded."""
    stream = AudioStreamInput(MODEL_RATE, 0.25, fmt)
    for payload in messages:
        before = stream.snapshot()
        error = stream.push(payload)
        after = stream.snapshot()
        if error is not None and 'NaN/Inf' not in error:
            assert after.oversized_messages == before.oversized_messages + 1, error
        else:
            assert after.input_frames == before.input_frames + len(payload) // fmt.frame_bytes
        # The resampler never emits more than the input's duration at the model rate.
        assert after.output_samples <= after.input_frames * MODEL_RATE / fmt.sample_rate + 2
        assert stream.buffer.available <= stream.buffer.capacity
    assert_valid_samples(stream.buffer.read_hops(1))
