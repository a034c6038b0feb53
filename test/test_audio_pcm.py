"""Tests for raw PCM decoding and channel handling."""

import array

import numpy as np
import pytest

from listener_head_ros.audio.pcm import (
    AudioFormat, FormatBounds, MalformedAudio, SUPPORTED_SAMPLE_FORMATS, UnsupportedAudioFormat,
    canonical_sample_format, decode_pcm, encode_pcm, parse_channel_mix, payload_bytes, to_mono,
    validate_format)


def _encode(samples: np.ndarray, name: str) -> bytes:
    """Encode float samples in -1..1 with plain numpy, independently of the decoder."""
    big = name.endswith("BE")
    order = ">" if big else "<"
    if name[0] == "F":
        return samples.astype(f"{order}f{int(name[1:3]) // 8}").tobytes()
    if name in ("U8", "S8"):
        q = np.round(samples * 128).clip(-128, 127).astype(np.int64)
        return (q + 128).astype("u1").tobytes() if name == "U8" else q.astype("i1").tobytes()
    if name.startswith("S24_32"):
        q = np.round(samples * 2 ** 23).clip(-2 ** 23, 2 ** 23 - 1).astype(np.int64)
        return q.astype(f"{order}i4").tobytes()
    if name.startswith("S24"):
        q = np.round(samples * 2 ** 23).clip(-2 ** 23, 2 ** 23 - 1).astype(np.int64)
        as_bytes = (q & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
        return (as_bytes[:, ::-1] if big else as_bytes).tobytes()
    bits = int(name[1:3])
    half = 2 ** (bits - 1)
    q = np.round(samples * half).clip(-half, half - 1).astype(np.int64)
    if name[0] == "U":
        return (q + half).astype(f"{order}u{bits // 8}").tobytes()
    return q.astype(f"{order}i{bits // 8}").tobytes()


def _resolution(name: str) -> float:
    if name[0] == "F":
        return 1e-7
    bits = {"U8": 8, "S8": 8}.get(name, 24 if name.startswith("S24") else int(name[1:3]))
    return 1.0 / 2 ** (bits - 1)


@pytest.mark.parametrize("name", SUPPORTED_SAMPLE_FORMATS)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_round_trip_every_format(name: str, channels: int) -> None:
    """Decode numpy-encoded samples of every format back to the originals."""
    rng = np.random.default_rng(1)
    samples = rng.uniform(-1.0, 0.999, size=(500, channels)).astype(np.float32)
    samples[0] = -1.0
    fmt = AudioFormat(channels=channels, sample_rate=16000, sample_format=name)
    decoded = decode_pcm(_encode(samples, name), fmt)
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.shape == (500, channels)
    assert decoded.frames == 500
    assert decoded.nonfinite_count == 0
    np.testing.assert_allclose(decoded.samples, samples, atol=_resolution(name))
    assert decoded.samples.min() >= -1.0 and decoded.samples.max() <= 1.0


def test_known_integer_values() -> None:
    """Map integer extremes and midpoints to the expected floats."""
    data = np.array([-32768, 0, 16384, 32767], dtype="<i2").tobytes()
    out = decode_pcm(data, AudioFormat(sample_format="S16LE")).samples[:, 0]
    np.testing.assert_array_equal(out, [-1.0, 0.0, 0.5, 32767 / 32768])
    packed = bytes([0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x40])
    out = decode_pcm(packed, AudioFormat(sample_format="S24LE")).samples[:, 0]
    np.testing.assert_allclose(out, [-1.0, (2 ** 23 - 1) / 2 ** 23, 0.5])
    out = decode_pcm(bytes([0, 128, 255]), AudioFormat(sample_format="U8")).samples[:, 0]
    np.testing.assert_allclose(out, [-1.0, 0.0, 127 / 128])


def test_big_endian_differs_from_little_endian() -> None:
    """Decode big-endian bytes with the big-endian byte order."""
    data = np.array([256], dtype="<i2").tobytes()
    le = decode_pcm(data, AudioFormat(sample_format="S16LE")).samples[0, 0]
    be = decode_pcm(data, AudioFormat(sample_format="S16BE")).samples[0, 0]
    assert le == pytest.approx(256 / 32768)
    assert be == pytest.approx(1 / 32768)


@pytest.mark.parametrize("payload", [
    b"\x00\x40\x00\xc0",
    bytearray(b"\x00\x40\x00\xc0"),
    memoryview(b"\x00\x40\x00\xc0"),
    array.array("B", b"\x00\x40\x00\xc0"),
    np.frombuffer(b"\x00\x40\x00\xc0", dtype=np.uint8),
    [0, 64, 0, 192],
])
def test_accepts_audio_data_payload_types(payload: object) -> None:
    """Decode every payload type an AudioData message can carry."""
    out = decode_pcm(payload, AudioFormat(sample_format="S16LE")).samples[:, 0]
    np.testing.assert_allclose(out, [0.5, -0.5])


@pytest.mark.parametrize("alias,canonical", [
    ("s16le", "S16LE"), (" S16LE ", "S16LE"), ("int16", "S16LE"), ("S16_LE", "S16LE"),
    ("f32le", "F32LE"), ("float32", "F32LE"), ("FLOAT_LE", "F32LE"), ("u8", "U8"),
    ("S24_3LE", "S24LE"), ("S24_LE", "S24_32LE"), ("float64", "F64LE"), ("s32be", "S32BE"),
])
def test_sample_format_aliases(alias: str, canonical: str) -> None:
    """Map aliases of sample formats to their GStreamer names."""
    assert canonical_sample_format(alias) == canonical
    assert validate_format(AudioFormat(sample_format=alias)) == canonical


def test_mp3_is_rejected_with_actionable_message() -> None:
    """Reject mp3 and tell the user to launch audio_capture with format:=wave."""
    fmt = AudioFormat(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="mp3")
    with pytest.raises(UnsupportedAudioFormat, match="format:=wave"):
        decode_pcm(b"\xff\xfb\x90\x00", fmt)
    with pytest.raises(UnsupportedAudioFormat, match="format:=wave"):
        validate_format(fmt)


@pytest.mark.parametrize("coding", ["wave", "WAVE", "wav", "raw", "pcm", "", "audio/x-raw"])
def test_raw_codings_are_accepted(coding: str) -> None:
    """Accept every spelling of raw PCM coding."""
    assert validate_format(AudioFormat(coding_format=coding)) == "S16LE"


@pytest.mark.parametrize("fmt,match", [
    (AudioFormat(coding_format="opus"), "not raw PCM"),
    (AudioFormat(sample_format="S20LE"), "unsupported sample_format 'S20LE'.*S16LE"),
    (AudioFormat(channels=0), "channels"),
    (AudioFormat(sample_rate=0), "sample_rate"),
])
def test_unsupported_formats(fmt: AudioFormat, match: str) -> None:
    """Reject unknown codings, sample formats and invalid layouts."""
    with pytest.raises(UnsupportedAudioFormat, match=match):
        decode_pcm(b"\x00\x00", fmt)


@pytest.mark.parametrize("fmt,match", [
    (AudioFormat(channels=True), "channels must be a positive integer, got True"),
    (AudioFormat(sample_rate=16000.0), "sample_rate must be a positive integer, got 16000.0"),
    (AudioFormat(sample_rate=-2 ** 100), "got <a 101-bit integer>"),
    (AudioFormat(sample_format=None), "unsupported sample_format None"),
    (AudioFormat(coding_format=b"wave"), "coding_format b'wave' is not raw PCM"),
    (AudioFormat(coding_format="x" * 10 ** 6), "coding_format 'xxxxxxx"),
])
def test_fields_of_any_type_or_size_are_refused_briefly(fmt: AudioFormat, match: str) -> None:
    """Refuse fields of the wrong type or absurd size with a message of bounded length."""
    with pytest.raises(UnsupportedAudioFormat, match=match) as info:
        validate_format(fmt)
    assert len(str(info.value)) < 300


def test_bounds_limit_the_sample_rate_and_channels() -> None:
    """Refuse a rate or channel count outside the bounds given, inclusive at both ends."""
    bounds = FormatBounds(sample_rate=(8000, 48000), channels=(1, 2))
    for fmt in (AudioFormat(1, 8000), AudioFormat(2, 48000)):
        assert validate_format(fmt, bounds) == "S16LE"
    with pytest.raises(UnsupportedAudioFormat,
                       match="sample_rate 7999 Hz is outside the accepted range 8000..48000 Hz"):
        validate_format(AudioFormat(1, 7999), bounds)
    with pytest.raises(UnsupportedAudioFormat,
                       match="channels 3 is outside the accepted range 1..2$"):
        validate_format(AudioFormat(3, 16000), bounds)
    assert validate_format(AudioFormat(1, 1)) == "S16LE"  # no bounds: only positive


@pytest.mark.parametrize("data", [b"\x01\x02", bytearray(b"\x01\x02"), memoryview(b"\x01\x02"),
                                  array.array("B", [1, 2]), [1, 2], (1, 2),
                                  np.array([1, 2], dtype=np.uint8)])
def test_payload_bytes_reads_every_payload_type(data: object) -> None:
    """Read bytes-likes, lists of ints and numpy arrays as flat uint8."""
    np.testing.assert_array_equal(payload_bytes(data), np.array([1, 2], dtype=np.uint8))


@pytest.mark.parametrize("data", ["ab", [256], [-1], [1.0], [10 ** 30], [[1], [2, 3]], None,
                                  np.array([object()])])
def test_payload_bytes_refuses_what_is_not_bytes(data: object) -> None:
    """Refuse text, out-of-range or non-integer lists and other objects as MalformedAudio."""
    with pytest.raises(MalformedAudio, match="is not bytes or a list of ints in 0..255"):
        payload_bytes(data)


def test_unsupported_format_is_value_error() -> None:
    """Derive both decoding errors from ValueError."""
    assert issubclass(UnsupportedAudioFormat, ValueError)
    assert issubclass(MalformedAudio, ValueError)


def test_partial_frame_raises_with_leftover_count() -> None:
    """Raise MalformedAudio with the leftover byte count on a partial frame."""
    fmt = AudioFormat(channels=2, sample_format="S16LE")
    with pytest.raises(MalformedAudio, match="3 leftover bytes") as info:
        decode_pcm(bytes(4 * 5 + 3), fmt)
    assert info.value.leftover_bytes == 3
    assert info.value.frame_bytes == 4
    assert fmt.frame_bytes == 4 and fmt.bytes_per_sample == 2


def test_empty_payload_gives_zero_frames() -> None:
    """Decode an empty payload into zero frames without error."""
    decoded = decode_pcm(b"", AudioFormat(channels=2, sample_format="F32LE"))
    assert decoded.samples.shape == (0, 2)
    assert decoded.nonfinite_count == 0
    assert to_mono(decoded.samples).shape == (0,)


@pytest.mark.parametrize("name", ["F32LE", "F64LE", "F32BE", "F64BE"])
def test_nonfinite_floats_are_zeroed_and_counted(name: str) -> None:
    """Replace NaN and Inf by zero, count them, and clip to -1..1."""
    values = np.array([0.25, np.nan, np.inf, -np.inf, 3.0, -2.0, -0.5])
    decoded = decode_pcm(_encode(values, name), AudioFormat(sample_format=name))
    assert decoded.nonfinite_count == 3
    np.testing.assert_array_equal(decoded.samples[:, 0], [0.25, 0, 0, 0, 1.0, -1.0, -0.5])
    assert np.isfinite(decoded.samples).all()


def test_ten_second_chunk() -> None:
    """Decode a 10 s stereo chunk in one message."""
    rng = np.random.default_rng(2)
    samples = rng.uniform(-1, 1, size=(48000 * 10, 2)).astype(np.float32)
    fmt = AudioFormat(channels=2, sample_rate=48000, sample_format="S16LE")
    decoded = decode_pcm(_encode(samples, "S16LE"), fmt)
    assert decoded.samples.shape == (480000, 2)
    np.testing.assert_allclose(decoded.samples, samples, atol=1 / 32768)


def test_down_mix_and_channel_selection() -> None:
    """Down-mix by the mean or select one channel."""
    samples = np.array([[0.5, -0.5, 0.25], [1.0, 0.0, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(to_mono(samples, "mean"), [0.25 / 3, 0.0], atol=1e-7)
    np.testing.assert_array_equal(to_mono(samples, 0), [0.5, 1.0])
    np.testing.assert_array_equal(to_mono(samples, 2), [0.25, -1.0])
    np.testing.assert_array_equal(to_mono(samples, "1"), [-0.5, 0.0])
    assert to_mono(samples).dtype == np.float32


def test_channel_index_out_of_range() -> None:
    """Reject a channel index beyond the channel count with a clear message."""
    samples = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="channel index 2 is out of range for 2-channel"):
        to_mono(samples, 2)


@pytest.mark.parametrize("bad", [-1, "left", True, "-1"])
def test_invalid_channel_mix(bad: object) -> None:
    """Reject channel selections that are neither 'mean' nor an index."""
    with pytest.raises(ValueError, match="channel"):
        parse_channel_mix(bad)


def test_to_mono_needs_two_dimensions() -> None:
    """Reject samples that are not (frames, channels)."""
    with pytest.raises(ValueError, match="frames, channels"):
        to_mono(np.zeros(4, dtype=np.float32))


@pytest.mark.parametrize("name", SUPPORTED_SAMPLE_FORMATS)
def test_encode_pcm_round_trips_through_decode(name):
    """The library encoder (used by the file publisher) is decoded back to the same samples."""
    samples = np.random.default_rng(3).uniform(-0.99, 0.99, (300, 2)).astype(np.float32)
    encoded = encode_pcm(samples, name)
    assert encoded == _encode(samples, name)
    decoded = decode_pcm(encoded, AudioFormat(channels=2, sample_format=name)).samples
    np.testing.assert_allclose(decoded, samples, atol=2 * _resolution(name))
