"""
The installed ``audio_common_msgs``, whichever flavour it is: message types, QoS and decoding.

Two unrelated ROS 2 packages are named ``audio_common_msgs``, so a robot has one or the other:

ros-drivers/audio_common (``audio_capture``)
    ``AudioData`` (``uint8[] data``: raw PCM or mp3 bytes) on ``audio``, ``AudioDataStamped``
    on ``audio_stamped``, and the format as ``AudioInfo`` (GStreamer ``sample_format``) on
    ``audio_info``.
mgonzs13/audio_common (``audio_capturer_node``, used with whisper_ros and llama_ros)
    ``AudioStamped`` on ``audio``, best effort: a header and an ``Audio`` that bundles an
    ``AudioData`` of typed arrays with an ``AudioInfo`` whose ``format`` is a PortAudio
    sample-format constant. Each message carries its own format; there is no separate topic.

Which one is installed is read at import from the fields of ``AudioData``; :data:`FLAVOUR`
names it and :data:`AUDIO_TYPE`, :data:`STAMPED_TYPE` and :data:`INFO_TYPE` are the types of the
listener's ``audio``, ``audio_stamped`` and ``audio_info`` topics. :func:`push_audio` decodes a
message of either into an :class:`AudioStreamInput` (typed arrays through
:mod:`listener_head_ros.audio.typed_arrays`), so that every check and counter is shared.

``audio_info`` is transient-local in current ``audio_capture`` releases and volatile in older
ones; a transient-local subscription does not match a volatile publisher (incompatible QoS).
:func:`info_qos` gives the subscription the durability and reliability that every discovered
publisher offers; the node re-checks them while audio arrives, at most every
:data:`INFO_QOS_CHECK_PERIOD`.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from audio_common_msgs import msg as audio_common
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo

from listener_head_ros.audio.pcm import AudioFormat
from listener_head_ros.audio.stream_input import AudioStreamInput
from listener_head_ros.audio.typed_arrays import PORTAUDIO_UNSET, TYPED_ARRAYS, typed_pcm

ROS_DRIVERS = 'ros-drivers/audio_common'
MGONZS13 = 'mgonzs13/audio_common'


def detect_flavour(audio_data: type) -> str:
    """Return which ``audio_common_msgs`` defines the ``AudioData`` type ``audio_data``."""
    fields = audio_data.get_fields_and_field_types()
    if fields.get('data') == 'sequence<uint8>':
        return ROS_DRIVERS
    if any(array.field in fields for array in TYPED_ARRAYS):
        return MGONZS13
    raise ImportError(f'audio_common_msgs/AudioData has fields {sorted(fields)}: neither the '
                      f'ros-drivers (uint8[] data) nor the mgonzs13 (typed arrays) definition')


FLAVOUR = detect_flavour(audio_common.AudioData)
"""The installed flavour: :data:`ROS_DRIVERS` or :data:`MGONZS13`."""

if FLAVOUR == ROS_DRIVERS:
    AUDIO_TYPE, STAMPED_TYPE, INFO_TYPE = (
        audio_common.AudioData, audio_common.AudioDataStamped, audio_common.AudioInfo)
    AudioMessage = audio_common.AudioData
else:
    AUDIO_TYPE = STAMPED_TYPE = audio_common.AudioStamped
    INFO_TYPE = None  # each message carries its format
    AudioMessage = Union[audio_common.AudioStamped, audio_common.Audio, audio_common.AudioData]

# The typed arrays of the installed definition (older mgonzs13 versions lack int24_data).
_TYPED_FIELDS = tuple(array.field for array in TYPED_ARRAYS
                      if array.field in audio_common.AudioData.get_fields_and_field_types())

INFO_QOS_CHECK_PERIOD = 0.1
"""Seconds between checks that the audio_info subscriptions still match their publishers."""
_INFO_DEPTH = 5


def push_audio(audio_input: AudioStreamInput, msg: AudioMessage) -> Optional[str]:
    """
    Decode one audio message into ``audio_input``; return why it was refused, if it was.

    ``msg`` is a message of the installed flavour: a ros-drivers ``AudioData``, or an mgonzs13
    ``AudioStamped``, ``Audio`` or bare ``AudioData`` (no info: the stream's channels and rate
    hold, and the filled array gives the sample type). An mgonzs13 message announces its own
    format: when that differs from the stream's, it is set first (and counted, or refused).
    """
    if FLAVOUR == ROS_DRIVERS:
        return audio_input.push(msg.data)
    if isinstance(msg, audio_common.AudioStamped):
        msg = msg.audio
    data, info = (msg.audio_data, msg.info) if isinstance(msg, audio_common.Audio) else (
        msg, None)
    current = audio_input.format
    pcm = typed_pcm({field: getattr(data, field) for field in _TYPED_FIELDS},
                    info.format if info is not None else PORTAUDIO_UNSET)
    fmt = AudioFormat(channels=info.channels if info is not None else current.channels,
                      sample_rate=info.rate if info is not None else current.sample_rate,
                      sample_format=pcm.sample_format or current.sample_format)
    if fmt != current:
        audio_input.set_format(fmt)
    error = audio_input.push(pcm.payload)
    return pcm.problem or error


def info_format(msg: audio_common.AudioInfo, fallback_sample_format: str) -> AudioFormat:
    """Return the format of a ros-drivers ``AudioInfo``; an unset sample_format falls back."""
    return AudioFormat(channels=msg.channels, sample_rate=msg.sample_rate,
                       sample_format=msg.sample_format or fallback_sample_format,
                       coding_format=msg.coding_format)


def describe_format(fmt: AudioFormat) -> str:
    """Return a format as /diagnostics and the log show it, e.g. ``S16LE 16000 Hz x1 (wave)``."""
    return (f'{fmt.sample_format} {fmt.sample_rate} Hz x{fmt.channels} '
            f'({fmt.coding_format or "raw"})')


def info_qos(publishers: Sequence[TopicEndpointInfo]) -> QoSProfile:
    """
    Return the QoS for an audio_info subscription that every one of ``publishers`` matches.

    Transient-local (the last format at once, however late the listener starts) where there
    are publishers and all offer it, else volatile, which every publisher matches: a volatile
    publisher that appears later (an older ``audio_capture``, which re-publishes its format
    every 5 s) then finds a compatible subscription. Reliable unless a publisher is best effort.
    """
    latched = bool(publishers) and all(
        p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    return QoSProfile(
        depth=_INFO_DEPTH,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)
