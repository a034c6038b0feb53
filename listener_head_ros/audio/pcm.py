"""
Decode raw PCM bytes (e.g. ``audio_common_msgs/AudioData.data``) into float32 samples.

Sample formats use GStreamer names (``S16LE``, ``S24LE``, ``F32LE``, ...), the names
that ``audio_common``'s ``AudioInfo.sample_format`` carries; common ALSA and numpy
spellings are accepted as aliases.  Compressed streams (mp3) are rejected with
:class:`UnsupportedAudioFormat`, never silently misread; so is a format outside the
:class:`FormatBounds` its consumer accepts (:func:`validate_format`). Whatever a format field
or a payload holds, decoding raises only :class:`UnsupportedAudioFormat` or
:class:`MalformedAudio`, whose messages quote at most a short prefix of the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

ChannelMix = Union[str, int]
"""How to turn multi-channel audio into mono: ``'mean'`` (down-mix) or a channel index."""

MEAN = "mean"


class UnsupportedAudioFormat(ValueError):
    """The audio stream's format cannot be decoded as raw PCM."""


class MalformedAudio(ValueError):
    """A message's payload is not bytes, or does not hold a whole number of frames."""

    def __init__(self, message: str, leftover_bytes: int = 0, frame_bytes: int = 0) -> None:
        super().__init__(message)
        self.leftover_bytes = leftover_bytes
        self.frame_bytes = frame_bytes


@dataclass(frozen=True)
class _SampleSpec:
    """Byte layout of one sample of a PCM sample format."""

    name: str
    width: int  # bytes per sample in the stream
    kind: str  # 'int', 'float', 'int24' (3-byte packed) or 'int24in32'
    bits: int  # significant bits (integers) or 0 (floats)
    signed: bool
    big_endian: bool

    @property
    def dtype(self) -> np.dtype:
        """Numpy dtype of one sample container (not used for the 3-byte packed layout)."""
        order = ">" if self.big_endian else "<"
        code = "f" if self.kind == "float" else ("i" if self.signed else "u")
        return np.dtype(f"{order}{code}{self.width}")


def _build_specs() -> dict[str, _SampleSpec]:
    specs = {
        "U8": _SampleSpec("U8", 1, "int", 8, False, False),
        "S8": _SampleSpec("S8", 1, "int", 8, True, False),
        "S24LE": _SampleSpec("S24LE", 3, "int24", 24, True, False),
        "S24BE": _SampleSpec("S24BE", 3, "int24", 24, True, True),
        "S24_32LE": _SampleSpec("S24_32LE", 4, "int24in32", 24, True, False),
        "S24_32BE": _SampleSpec("S24_32BE", 4, "int24in32", 24, True, True),
    }
    for endian in ("LE", "BE"):
        big = endian == "BE"
        for bits in (16, 32):
            for signed, prefix in ((True, "S"), (False, "U")):
                name = f"{prefix}{bits}{endian}"
                specs[name] = _SampleSpec(name, bits // 8, "int", bits, signed, big)
        for bits in (32, 64):
            name = f"F{bits}{endian}"
            specs[name] = _SampleSpec(name, bits // 8, "float", 0, True, big)
    return specs


_SPECS = _build_specs()

_ALIASES = {
    # numpy / plain spellings (little-endian, as on every ROS target)
    "INT8": "S8", "UINT8": "U8", "S16": "S16LE", "INT16": "S16LE", "U16": "U16LE",
    "UINT16": "U16LE", "S24": "S24LE", "S32": "S32LE", "INT32": "S32LE", "U32": "U32LE",
    "UINT32": "U32LE", "F32": "F32LE", "FLOAT": "F32LE", "FLOAT32": "F32LE",
    "F64": "F64LE", "DOUBLE": "F64LE", "FLOAT64": "F64LE",
    # ALSA spellings (note: ALSA's S24_LE is 24 bits in a 4-byte container)
    "S16_LE": "S16LE", "S16_BE": "S16BE", "U16_LE": "U16LE", "U16_BE": "U16BE",
    "S24_LE": "S24_32LE", "S24_BE": "S24_32BE", "S24_3LE": "S24LE", "S24_3BE": "S24BE",
    "S32_LE": "S32LE", "S32_BE": "S32BE", "U32_LE": "U32LE", "U32_BE": "U32BE",
    "FLOAT_LE": "F32LE", "FLOAT_BE": "F32BE", "FLOAT64_LE": "F64LE", "FLOAT64_BE": "F64BE",
    "FLOAT32LE": "F32LE", "FLOAT32BE": "F32BE", "FLOAT64LE": "F64LE", "FLOAT64BE": "F64BE",
}

_PCM_CODINGS = frozenset({"", "wave", "wav", "raw", "pcm", "audio/x-raw"})
_MP3_CODINGS = frozenset({"mp3", "mpeg", "audio/mpeg", "audio/mp3"})

SUPPORTED_SAMPLE_FORMATS: tuple[str, ...] = tuple(sorted(_SPECS))
"""Canonical (GStreamer) names of the decodable sample formats."""

_SHOWN_CHARS = 40  # an error message quotes at most this much of a bad field


def _shown(value: object) -> str:
    """Return a short repr of a format field for an error message, whatever its size."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"<a {value.bit_length()}-bit integer>"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS - 3]}..."


@dataclass(frozen=True)
class FormatBounds:
    """Inclusive ranges that a stream's sample rate and channel count must lie in."""

    sample_rate: Tuple[int, int]  # Hz
    channels: Tuple[int, int]


@dataclass(frozen=True)
class AudioFormat:
    """Description of a raw PCM stream, as carried by ``audio_common_msgs/AudioInfo``."""

    channels: int = 1
    sample_rate: int = 16000
    sample_format: str = "S16LE"
    coding_format: str = "wave"

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one sample of one channel; raises UnsupportedAudioFormat."""
        return _check(self).width

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame (one sample of every channel); raises UnsupportedAudioFormat."""
        return self.channels * _check(self).width


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples and how many non-finite input values were replaced by zero."""

    samples: np.ndarray  # (frames, channels) float32 in -1..1
    nonfinite_count: int = 0

    @property
    def frames(self) -> int:
        """Return the number of decoded frames."""
        return int(self.samples.shape[0])


def canonical_sample_format(name: str) -> str:
    """Return the GStreamer name of a sample format or alias; raise UnsupportedAudioFormat."""
    key = name.strip().upper() if isinstance(name, str) else None
    key = _ALIASES.get(key, key)
    if key not in _SPECS:
        raise UnsupportedAudioFormat(
            f"unsupported sample_format {_shown(name)}; supported raw PCM formats are "
            f"{', '.join(SUPPORTED_SAMPLE_FORMATS)} (S16LE is the audio_capture default)")
    return key


def _check(fmt: AudioFormat) -> _SampleSpec:
    coding = fmt.coding_format.strip().lower() if isinstance(fmt.coding_format, str) else None
    if coding in _MP3_CODINGS:
        raise UnsupportedAudioFormat(
            f"coding_format {_shown(fmt.coding_format)} is compressed audio and cannot be "
            "decoded; launch audio_capture with `format:=wave` to publish raw PCM instead")
    if coding not in _PCM_CODINGS:
        raise UnsupportedAudioFormat(
            f"coding_format {_shown(fmt.coding_format)} is not raw PCM; publish uncompressed "
            "PCM (coding_format 'wave', e.g. audio_capture with `format:=wave`)")
    for name in ("channels", "sample_rate"):
        value = getattr(fmt, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UnsupportedAudioFormat(f"{name} must be a positive integer, got {_shown(value)}")
    return _SPECS[canonical_sample_format(fmt.sample_format)]


def _check_range(name: str, value: int, bounds: Tuple[int, int], unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise UnsupportedAudioFormat(
            f"{name} {_shown(value)}{unit} is outside the accepted range {low}..{high}{unit}")


def validate_format(fmt: AudioFormat, bounds: Optional[FormatBounds] = None) -> str:
    """Check that ``fmt`` is decodable (and within ``bounds``); return its sample format."""
    spec = _check(fmt)
    if bounds is not None:
        _check_range("sample_rate", fmt.sample_rate, bounds.sample_rate, " Hz")
        _check_range("channels", fmt.channels, bounds.channels, "")
    return spec.name


def payload_bytes(data: object) -> np.ndarray:
    """
    Return a message payload as a flat uint8 array, without copying a bytes-like payload.

    ``data`` may be ``bytes``, ``bytearray``, ``memoryview``, ``array.array('B')``, a numpy
    array (its raw bytes) or a list of ints in 0..255 (the ``data`` field of ``AudioData``);
    anything else raises :class:`MalformedAudio`.
    """
    try:
        if isinstance(data, np.ndarray):
            return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if isinstance(data, (list, tuple)):
            values = np.asarray(data)
            if values.size and (values.dtype.kind not in "iu" or values.min() < 0
                                or values.max() > 255):
                raise ValueError(f"its {values.dtype} values are not all in 0..255")
            return values.astype(np.uint8).reshape(-1)
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, OverflowError) as error:
        raise MalformedAudio(f"audio payload of type {type(data).__name__} is not bytes or a "
                             f"list of ints in 0..255: {error}") from error


def _decode_ints(raw: np.ndarray, spec: _SampleSpec) -> np.ndarray:
    if spec.kind == "int24":
        b = raw.reshape(-1, 3).astype(np.int32)
        lo, hi = (2, 0) if spec.big_endian else (0, 2)
        values = b[:, lo] | (b[:, 1] << 8) | (b[:, hi] << 16)
    elif spec.kind == "int24in32":
        values = np.frombuffer(raw, dtype=spec.dtype).astype(np.int32) & 0xFFFFFF
    else:
        values = np.frombuffer(raw, dtype=spec.dtype)
    half = float(1 << (spec.bits - 1))
    if spec.kind != "int":
        values = (values ^ 0x800000) - 0x800000
    out = values.astype(np.float64)
    if not spec.signed:
        out -= half
    return (out / half).astype(np.float32)


def decode_pcm(data: object, fmt: AudioFormat) -> DecodedAudio:
    """
    Decode raw PCM bytes into ``(frames, channels)`` float32 samples in -1..1.

    ``data`` is anything :func:`payload_bytes` reads. Raises :class:`UnsupportedAudioFormat`
    for formats that are not raw PCM and :class:`MalformedAudio` when the payload is not bytes
    or not a whole number of frames. Non-finite float samples are replaced by 0 and counted;
    floats are clipped to -1..1. Memory and work are proportional to the payload's size.
    """
    spec = _check(fmt)
    raw = payload_bytes(data)
    frame_bytes = fmt.channels * spec.width
    leftover = raw.size % frame_bytes
    if leftover:
        raise MalformedAudio(
            f"audio payload of {raw.size} bytes is not a whole number of {frame_bytes}-byte "
            f"frames ({fmt.channels} ch x {spec.name}): {leftover} leftover bytes; "
            "check that AudioInfo matches the publisher's format",
            leftover_bytes=leftover, frame_bytes=frame_bytes)
    nonfinite = 0
    if spec.kind == "float":
        values = np.frombuffer(raw, dtype=spec.dtype)
        finite = np.isfinite(values)
        nonfinite = int(values.size - np.count_nonzero(finite))
        if nonfinite:
            values = np.where(finite, values, 0.0)
        samples = np.clip(values, -1.0, 1.0).astype(np.float32)
    else:
        samples = _decode_ints(raw, spec)
    return DecodedAudio(samples.reshape(-1, fmt.channels), nonfinite)


def parse_channel_mix(value: Union[str, int]) -> ChannelMix:
    """Parse a channel selection parameter: ``'mean'``, an index, or an index as a string."""
    if isinstance(value, bool):
        raise ValueError(f"channel must be 'mean' or a channel index, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"channel index must be >= 0, got {value}")
        return value
    text = str(value).strip().lower()
    if text == MEAN:
        return MEAN
    if text.isdigit():
        return int(text)
    raise ValueError(f"channel must be 'mean' or a channel index, got {value!r}")


def to_mono(samples: np.ndarray, channel: ChannelMix = MEAN) -> np.ndarray:
    """Return a ``(frames,)`` float32 mono signal from ``(frames, channels)`` samples."""
    if samples.ndim != 2:
        raise ValueError(f"expected (frames, channels) samples, got shape {samples.shape}")
    n_channels = samples.shape[1]
    mix = parse_channel_mix(channel)
    if mix == MEAN:
        if n_channels == 1:
            return np.ascontiguousarray(samples[:, 0], dtype=np.float32)
        return samples.mean(axis=1, dtype=np.float64).astype(np.float32)
    if mix >= n_channels:
        raise ValueError(
            f"channel index {mix} is out of range for {n_channels}-channel audio "
            f"(valid: 0..{n_channels - 1} or 'mean')")
    return np.ascontiguousarray(samples[:, mix], dtype=np.float32)


def encode_pcm(samples: np.ndarray, sample_format: str) -> bytes:
    """Encode ``(frames, channels)`` or mono float samples in -1..1 as interleaved raw PCM."""
    spec = _SPECS[canonical_sample_format(sample_format)]
    values = np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1)).clip(-1.0, 1.0)
    if spec.kind == "float":
        return values.astype(spec.dtype).tobytes()
    half = 1 << (spec.bits - 1)
    ints = np.round(values * half).clip(-half, half - 1).astype(np.int64)
    if not spec.signed:
        ints += half
    if spec.kind == "int24":
        packed = (ints & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
        return (packed[:, ::-1] if spec.big_endian else packed).tobytes()
    return ints.astype(spec.dtype).tobytes()
