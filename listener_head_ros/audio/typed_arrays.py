"""
Turn typed-array audio (mgonzs13/audio_common's ``AudioData``) into raw PCM for the audio input.

That flavour of ``audio_common_msgs`` carries samples in one of six typed arrays
(``float32_data``, ``int32_data``, ``int24_data``, ``int16_data``, ``int8_data``,
``uint8_data``), and its ``AudioInfo.format`` names the array with a PortAudio sample-format
constant. :func:`typed_pcm` returns the little-endian PCM bytes of one message and their
sample format (a :mod:`~listener_head_ros.audio.pcm` name), so that both flavours go through one
decoding path, with its checks and counters.

The array read is the one the format constant names, as every consumer of that flavour reads
it. An unset constant (0, or a bare ``AudioData``) reads the only filled array, whose field
names its type. A message that cannot be read is never guessed at: an unknown constant
(``paCustomFormat``, the ``paNonInterleaved`` flag, a type the installed definition has no
array for), a constant whose array is empty while another is filled, or an unset constant with
several filled arrays gives a :class:`TypedPcm` whose ``sample_format`` is a label no decoder
accepts, so that the audio input refuses it as an undecodable format and counts it.

``int24_data`` holds one sample per int32 element, its value the signed 24-bit integer (as the
field's name says; PortAudio's own paInt24 is packed, three bytes a sample). Values beyond the
24-bit range are saturated, as float samples beyond -1..1 are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

PORTAUDIO_UNSET = 0
"""``AudioInfo.format`` of a message that does not set it (the field's default)."""

_INT24_MIN, _INT24_MAX = -(1 << 23), (1 << 23) - 1


@dataclass(frozen=True)
class TypedArray:
    """One typed array of the message: its field, PortAudio constant and PCM re-encoding."""

    field: str
    portaudio: int  # PortAudio sample-format constant (portaudio.h)
    portaudio_name: str
    sample_format: str  # the pcm module's name of the bytes it is re-encoded as
    dtype: str  # little-endian numpy dtype of one sample

    def describe(self) -> str:
        """Return the constant's name and value, e.g. ``paInt16 (8)``."""
        return f'{self.portaudio_name} ({self.portaudio})'


_INT24 = TypedArray('int24_data', 0x04, 'paInt24', 'S24_32LE', '<i4')
TYPED_ARRAYS = (
    TypedArray('float32_data', 0x01, 'paFloat32', 'F32LE', '<f4'),
    TypedArray('int32_data', 0x02, 'paInt32', 'S32LE', '<i4'),
    _INT24,
    TypedArray('int16_data', 0x08, 'paInt16', 'S16LE', '<i2'),
    TypedArray('int8_data', 0x10, 'paInt8', 'S8', 'i1'),
    TypedArray('uint8_data', 0x20, 'paUInt8', 'U8', 'u1'),
)
"""Every typed array of the current definition, in its field order."""

_BY_CONSTANT = {array.portaudio: array for array in TYPED_ARRAYS}


@dataclass(frozen=True)
class TypedPcm:
    """The PCM of one typed-array message, or why it cannot be read."""

    sample_format: Optional[str]  # None: the message does not say (keep the stream's format)
    payload: np.ndarray  # little-endian PCM bytes (uint8), empty when unreadable
    problem: Optional[str] = None  # why the message cannot be read; sample_format is a label


def typed_pcm(arrays: Mapping[str, object], portaudio_format: int = PORTAUDIO_UNSET) -> TypedPcm:
    """
    Return the PCM bytes of one message's typed arrays and their sample format.

    ``arrays`` maps the fields of the installed ``AudioData`` definition to their values
    (``array.array``, numpy arrays, ``bytes`` or sequences of numbers); ``portaudio_format`` is
    the message's ``AudioInfo.format``. See the module docstring for which array is read.
    """
    filled = [a for a in TYPED_ARRAYS if a.field in arrays and len(arrays[a.field])]
    if portaudio_format == PORTAUDIO_UNSET:
        if len(filled) > 1:
            return _unreadable('PortAudio format unset', (
                f'the PortAudio sample format is unset and {_names(filled)} are filled, so which '
                'holds the audio is unknown; set AudioInfo.format'))
        if not filled:
            return TypedPcm(None, np.zeros(0, dtype=np.uint8))
        chosen = filled[0]
    else:
        chosen = _BY_CONSTANT.get(portaudio_format)
        if chosen is None or chosen.field not in arrays:
            known = ', '.join(a.describe() for a in TYPED_ARRAYS if a.field in arrays)
            return _unreadable(f'PortAudio format {portaudio_format}', (
                f'PortAudio sample format {portaudio_format} ({portaudio_format & 0xFFFFFFFF:#x}) '
                f'is not one this AudioData definition has an array for ({known})'))
        others = [a for a in filled if a is not chosen]
        if others and not len(arrays[chosen.field]):
            return _unreadable(f'{chosen.portaudio_name} in {others[0].field}', (
                f'AudioInfo.format is {chosen.describe()} but {chosen.field} is empty while '
                f'{_names(others)} {"is" if len(others) == 1 else "are"} filled; the format '
                'must name the filled array'))
    samples = _samples(arrays[chosen.field], chosen.dtype)
    if chosen is _INT24 and samples.size and (
            samples.min() < _INT24_MIN or samples.max() > _INT24_MAX):
        samples = np.clip(samples, _INT24_MIN, _INT24_MAX)
    return TypedPcm(chosen.sample_format, samples.view(np.uint8))


def _samples(values: object, dtype: str) -> np.ndarray:
    """Return ``values`` as a flat array of ``dtype``, without a copy where they already are."""
    if isinstance(values, (bytes, bytearray, memoryview)):
        return np.frombuffer(values, dtype=dtype)
    return np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1))


def _unreadable(label: str, problem: str) -> TypedPcm:
    return TypedPcm(label, np.zeros(0, dtype=np.uint8), problem)


def _names(arrays: list) -> str:
    return ' and '.join(a.field for a in arrays)
