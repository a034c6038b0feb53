"""
Build the listener from its settings: the one place that makes the audio input, model and engine.

The listener node (at configure), offline evaluation, bag replay (through the node), the demo
(through the node) and every benchmark call :func:`build_listener`, so a setting means the same
everywhere, torch's CPU thread count included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import AbstractSet, List, Optional

from listener_head_ros.audio.pcm import parse_channel_mix
from listener_head_ros.audio.stream_input import AudioStreamInput
from listener_head_ros.engine import ListenerEngine
from listener_head_ros.models.base import AUDIO, INPUTS, ROBOT_SPEAKING, StreamingListenerModel
from listener_head_ros.models.checkpoint import (
    checkpoint_role, EMBEDDED_MODEL, load_listener_model)
from listener_head_ros.models.device import resolve_device
from listener_head_ros.models.speaking import ProsodicSpeaker
from listener_head_ros.roles import LISTENING, SPEAKING
from listener_head_ros.schema import SettingsError
from listener_head_ros.settings import ListenerSettings

HOP_ROUNDING = 0.01  # a whole-sample hop makes the model's frame rate differ a little
OFFLINE_INPUTS = frozenset({AUDIO, ROBOT_SPEAKING})
"""What offline evaluation of a bag supplies to a model."""
ROLE_SETTINGS = {LISTENING: 'model', SPEAKING: 'speaking_model'}
"""The setting that runs a checkpoint of each role (:mod:`listener_head_ros.roles`)."""


@dataclass
class Listener:
    """The real-time listener without ROS: audio intake, model and engine, built together."""

    settings: ListenerSettings
    model: StreamingListenerModel
    audio_input: AudioStreamInput
    engine: ListenerEngine
    device: str
    warnings: List[str] = field(default_factory=list)
    speaker: Optional[StreamingListenerModel] = None  # the robot's own speaking motion
    robot_audio_input: Optional[AudioStreamInput] = None  # the robot's speech, for ``speaker``

    def set_robot_speaking(self, speaking: bool) -> None:
        """Mute the audio intake and hold the head while the robot talks."""
        self.audio_input.set_muted(bool(speaking))
        self.engine.set_robot_speaking(bool(speaking))


def apply_cpu_threads(threads: int) -> None:
    """Set torch's intra-op thread count, as every listener process does."""
    import torch
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def check_inputs(model: StreamingListenerModel, available: AbstractSet[str]) -> None:
    """Raise SettingsError naming each input ``model`` needs that is not ``available``."""
    missing = sorted(set(model.inputs) - set(available))
    unknown = sorted(set(model.inputs) - set(INPUTS))
    if unknown:
        raise SettingsError(f'model {model.name} declares unknown inputs {unknown}; known: '
                            f'{", ".join(INPUTS)}')
    if missing:
        raise SettingsError(f'model {model.name} needs the input(s) {", ".join(missing)}, '
                            f'which this listener does not supply (it supplies '
                            f'{", ".join(sorted(available))})')


def require_role(checkpoint: str, role: str) -> None:
    """Raise SettingsError unless ``checkpoint`` was trained for ``role``."""
    trained = checkpoint_role(checkpoint)
    if trained != role:
        raise SettingsError(f'{ROLE_SETTINGS[role]}: checkpoint {checkpoint} is a {trained} '
                            f'model; set it as {ROLE_SETTINGS[trained]}, not as '
                            f'{ROLE_SETTINGS[role]}')


def _with_sampling(model: StreamingListenerModel, settings: ListenerSettings
                   ) -> StreamingListenerModel:
    """Return ``model`` run with the node's ``sampling`` settings, when they are set."""
    overrides = settings.sampling.inference_overrides()
    if not overrides:
        return model
    with_inference = getattr(model, 'with_inference', None)
    if with_inference is None:
        raise SettingsError(f'sampling.mode {settings.sampling.mode!r} needs a learned '
                            f'checkpoint; model {settings.model!r} has no sampling')
    return with_inference(**overrides)


def build_listener(settings: ListenerSettings, *,
                   model: Optional[StreamingListenerModel] = None,
                   available_inputs: AbstractSet[str] = OFFLINE_INPUTS) -> Listener:
    """
    Build the audio input, model and engine from ``settings``; raise on any bad setting.

    ``model`` replaces the one that ``settings.model`` names (a model object already built,
    e.g. by training); ``available_inputs`` are the inputs the caller can feed the model.
    A checkpoint runs only in the role it was trained for (:func:`require_role`).  Raises
    SettingsError, CheckpointError or ValueError with a message that says what is wrong.
    """
    apply_cpu_threads(settings.cpu_threads)
    device, warning = resolve_device(settings.device)
    warnings = [warning] if warning else []
    if model is None:
        prosodic = settings.prosodic if settings.model == EMBEDDED_MODEL else None
        if prosodic is None:
            require_role(settings.model, LISTENING)
        model = load_listener_model(settings.model, frame_rate=settings.frame_rate,
                                    device=device, prosodic=prosodic)
        model = _with_sampling(model, settings)
    warnings += [w for w in getattr(model, 'warnings', ()) if w not in warnings]
    if not math.isclose(model.frame_rate, settings.frame_rate, rel_tol=HOP_ROUNDING):
        raise SettingsError(f'model {model.name} runs at {model.frame_rate:.3f} frames/s but '
                            f'frame_rate is {settings.frame_rate}')
    check_inputs(model, available_inputs)
    audio_input = _audio_input(settings, model)
    speaker = robot_audio_input = None
    if settings.speaking_model:
        if settings.speaking_model != EMBEDDED_MODEL:
            require_role(settings.speaking_model, SPEAKING)
        speaker = (ProsodicSpeaker(settings.speaking, frame_rate=settings.frame_rate)
                   if settings.speaking_model == EMBEDDED_MODEL else
                   load_listener_model(settings.speaking_model, frame_rate=settings.frame_rate,
                                       device=device))
        if not math.isclose(speaker.frame_rate, settings.frame_rate, rel_tol=HOP_ROUNDING):
            raise SettingsError(f'speaking model {speaker.name} runs at '
                                f'{speaker.frame_rate:.3f} frames/s but frame_rate is '
                                f'{settings.frame_rate}')
        robot_audio_input = _audio_input(settings, speaker)
    engine = ListenerEngine(
        model, audio_input.buffer, settings.engine, speaker=speaker,
        robot_buffer=robot_audio_input.buffer if robot_audio_input is not None else None)
    return Listener(settings, model, audio_input, engine, device, warnings, speaker,
                    robot_audio_input)


def _audio_input(settings: ListenerSettings, model: StreamingListenerModel) -> AudioStreamInput:
    """Return an audio intake at ``model``'s rate with the ``input.*`` fallback format."""
    audio_input = AudioStreamInput(model.sample_rate, settings.buffer_seconds,
                                   settings.input.fallback_format,
                                   parse_channel_mix(settings.input.channel))
    if audio_input.format_error:
        raise SettingsError(f'input.* settings: {audio_input.format_error}')
    return audio_input
