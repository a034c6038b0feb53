"""
The listener's settings: one typed, validated object, the single source of every default.

:class:`ListenerSettings` declares each setting once, with its description and range (see
:mod:`listener_head_ros.schema`); the nested dataclasses of the engine, the motion limits and
the embedded prosodic model declare theirs where they are used. From it:

- the listener node declares its ROS parameters (``ros2 param describe`` shows them);
- ``config/listener.yaml`` is checked against it by a test (same names, same defaults);
- :func:`load_listener_settings` reads the listener section of a ROS parameter file strictly,
  as offline evaluation, replay, the demo and the benchmarks do: an unknown key is an error
  that names the closest valid one;
- :func:`listener_head_ros.build.build_listener` builds the audio input, model and engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from listener_head_ros.audio.pcm import AudioFormat, parse_channel_mix
from listener_head_ros.engine import EngineConfig
from listener_head_ros.models.checkpoint import EMBEDDED_MODEL
from listener_head_ros.models.device import DEVICES
from listener_head_ros.models.prosodic import ProsodicListenerConfig
from listener_head_ros.models.speaking import ProsodicSpeakerConfig
from listener_head_ros.sampling import SamplingSettings
from listener_head_ros.schema import (
    flatten, from_flat, group, setting, setting_specs, SettingsError, SettingSpec, to_flat)
from listener_head_ros.voice_selection import VoiceSelectionConfig

LISTENER_NODE = 'listener'  # the node name whose section a parameter file holds


@dataclass(frozen=True)
class InputSettings:
    """The audio format assumed until ``AudioInfo`` arrives, and the channel to listen to."""

    sample_format: str = setting(
        'S16LE', 'Sample format assumed until AudioInfo arrives (S16LE, F32LE, ...).')
    sample_rate: int = setting(16000, 'Sample rate assumed until AudioInfo arrives, Hz.',
                               (1000, 384000))
    channels: int = setting(1, 'Channel count assumed until AudioInfo arrives.', (1, 64))
    channel: str = setting(
        'mean', "'mean' to down-mix all channels, or the index of the channel to use.")

    def __post_init__(self) -> None:
        parse_channel_mix(self.channel)

    @property
    def fallback_format(self) -> AudioFormat:
        """Return the format payloads are decoded with until ``AudioInfo`` arrives."""
        return AudioFormat(channels=self.channels, sample_rate=self.sample_rate,
                           sample_format=self.sample_format)


@dataclass(frozen=True)
class TopicSettings:
    """Topic names of the listener node, relative to its namespace unless absolute."""

    audio: str = setting('audio', 'audio_common_msgs/AudioData input.')
    audio_info: str = setting('audio_info', 'audio_common_msgs/AudioInfo input.')
    audio_stamped: str = setting(
        '', "audio_common_msgs/AudioDataStamped input; '' to not subscribe.")
    voices: str = setting(
        '', "ros4hri voices namespace (REP-155: /humans/voices): follow the speaking voice's "
        "<ns>/<id>/audio instead of the audio topic (audio_info still gives the format) and, "
        "for a model that reads text, its <ns>/<id>/speech; '' to listen to the audio topic.")
    robot_speaking: str = setting(
        'robot_speaking', "std_msgs/Bool: true mutes listening while the robot talks; '' to "
        'ignore.')
    robot_audio: str = setting(
        'robot_audio', "audio_common_msgs/AudioData of the robot's own speech (e.g. its TTS "
        "output): it drives the speaking head motion; '' to not subscribe.")
    robot_audio_info: str = setting(
        'robot_audio_info', 'audio_common_msgs/AudioInfo of robot_audio (else the input.* '
        'format is assumed).')
    speech: str = setting(
        '', "hri_msgs/LiveSpeech input of a ros4hri speech recogniser (e.g. asr_vosk's "
        '/humans/voices/<id>/speech): its incremental and final results reach a model that '
        "reads text; '' to not subscribe.")
    transcript: str = setting(
        '', 'std_msgs/String input of another speech recogniser, each message one final '
        "result, for a model that reads text; '' to not subscribe.")
    head_pose: str = setting('head_pose', 'listener_head_ros/HeadPose output.')
    facial_reaction: str = setting('facial_reaction', 'FacialReaction output.')
    backchannel: str = setting('backchannel', 'Backchannel event output.')
    expression: str = setting(
        '/robot_face/expression',
        "hri_msgs/Expression output where hri_msgs is installed; '' to disable.")
    action_units: str = setting(
        '/robot_face/action_units',
        "hri_msgs/FacialActionUnits output (intensities by FACS code) where hri_msgs is "
        "installed; '' to disable.")


@dataclass(frozen=True)
class ListenerSettings:
    """Every setting of the listener node, with its default, description and range."""

    model: str = setting(
        EMBEDDED_MODEL, "'prosodic' (embedded default) or a checkpoint directory "
        '(config.json + model.safetensors).')
    device: str = setting('auto', 'auto, cpu or cuda; cuda falls back to the CPU if absent.')
    cpu_threads: int = setting(
        1, 'torch intra-op threads for inference on the CPU. One is fastest for per-frame '
        'steps on small machines (two threads made a learned step 5-8x slower here).',
        (1, 256))
    engine: EngineConfig = group(EngineConfig, 'The real-time loop.', flatten=True)
    buffer_seconds: float = setting(2.0, 'Capacity of the audio ring buffer, s.', (0.1, 60.0))
    input: InputSettings = group(InputSettings, 'Audio format until AudioInfo arrives.')
    topics: TopicSettings = group(TopicSettings, 'Topic names.')
    frame_id: str = setting('head', 'frame_id of published headers.')
    diagnostics_period: float = setting(1.0, 'Seconds between /diagnostics messages.',
                                        (0.1, 60.0))
    diagnostics_window: float = setting(
        10.0, 'Seconds of recent history that /diagnostics judges health on (one bad message '
        'warns this long); the lifetime totals are reported too.', (0.1, 3600.0))
    autostart: bool = setting(
        True, 'The node configures and activates itself when it starts (it owns its lifecycle '
        "transitions); false leaves it unconfigured for a lifecycle manager or 'ros2 lifecycle "
        "set'.")
    prosodic: ProsodicListenerConfig = group(ProsodicListenerConfig,
                                             'The embedded prosodic listener.')
    sampling: SamplingSettings = group(SamplingSettings,
                                       "A learned checkpoint's sampling, replacing its own.")
    voices: VoiceSelectionConfig = group(VoiceSelectionConfig,
                                         'Switching between ros4hri voices.')
    speaking_model: str = setting(
        EMBEDDED_MODEL, "Head motion while the robot speaks, from its own speech: 'prosodic' "
        "(embedded rules), a speaking checkpoint directory, or '' for none (the head then "
        'eases to neutral while the robot speaks).')
    speaking: ProsodicSpeakerConfig = group(ProsodicSpeakerConfig,
                                            'The embedded speaking motion.')

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not self.device.startswith('cuda:'):
            raise ValueError(f'device must be one of {", ".join(DEVICES)} (or cuda:N), '
                             f'not {self.device!r}')
        if not self.model:
            raise ValueError("model must be 'prosodic' or a checkpoint directory")

    @property
    def frame_rate(self) -> float:
        """Return the model frame rate and tick rate, Hz."""
        return self.engine.frame_rate

    def with_values(self, **values: Any) -> 'ListenerSettings':
        """Return a copy with the given dotted-name settings changed (e.g. ``model=...``)."""
        return settings_from_values({**to_flat(self), **values})

    def to_values(self) -> Dict[str, Any]:
        """Return every setting by dotted name (``limits.roll_min``), as ROS parameters."""
        return to_flat(self)


LISTENER_SETTINGS: List[SettingSpec] = setting_specs(ListenerSettings)
"""Every listener setting by dotted name: the node's ROS parameters."""


def settings_from_values(values: Mapping[str, Any], source: str = 'listener settings'
                         ) -> ListenerSettings:
    """Build settings from dotted names; unknown names, wrong types and ranges raise."""
    return from_flat(ListenerSettings, values, source)


def default_params_file() -> Path:
    """Return ``config/listener.yaml`` of the install space, else of the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory('listener_head_ros'))
    except (ImportError, LookupError, ValueError):
        share = Path(__file__).resolve().parents[1]
    return share / 'config' / 'listener.yaml'


def read_params_section(path: Path, node: str = LISTENER_NODE) -> Dict[str, Any]:
    """Return a node's ``ros__parameters`` of a ROS parameter file, as dotted names."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding='utf-8')) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SettingsError(f'cannot read parameter file {path}: {error}') from error
    if not isinstance(data, dict):
        raise SettingsError(f'{path} must map node names to ros__parameters')
    section = next((v for k, v in data.items() if str(k).rstrip('/').split('/')[-1] == node),
                   None)
    if not isinstance(section, dict) or not isinstance(section.get('ros__parameters'), dict):
        raise SettingsError(f'{path} has no {node} ros__parameters section')
    return flatten(section['ros__parameters'])


def load_listener_settings(params_file: Optional[Path | str] = None,
                           **overrides: Any) -> ListenerSettings:
    """Read the listener's settings from a parameter file (default: config/listener.yaml)."""
    path = Path(params_file) if params_file else default_params_file()
    values = read_params_section(path)
    values.pop('use_sim_time', None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return settings_from_values(values, source=str(path))
