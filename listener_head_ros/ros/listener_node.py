"""
The listener lifecycle node: microphone audio in; head pose, face and backchannels out.

configure
    reads the parameters and builds the model (a missing or corrupt checkpoint fails here).
activate
    starts the audio subscriptions, the inference timer and diagnostics.
deactivate / cleanup
    stop them / drop the model (and cached GPU memory).

The audio callbacks only decode into a bounded ring buffer (their own callback group); a timer
at the frame rate (another group) steps the model through :class:`ListenerEngine` and publishes.
Run both under a MultiThreadedExecutor.

Transcripts (for a model that reads text; both topics are off by default). ``topics.speech``
takes ``hri_msgs/LiveSpeech`` (ros4hri, e.g. asr_vosk): a message with a ``final`` text gives a
final result, else one with an ``incremental`` text a partial result (``final`` wins when both
are set); its confidence is clipped to 0..1, and ``locale`` is not used. ``topics.transcript``
takes ``std_msgs/String``, each message a final result of confidence 1. A message without text
(empty or only white space) is ignored and counted. Each result is stamped with the stream
time of the audio received when it arrives and reaches the model at the first step whose hop
ends then or later (:meth:`ListenerEngine.add_live_transcript`). Both subscriptions are
reliable, depth 10, in the audio callback group.

With ``topics.voices`` and a model that reads text, each tracked voice's
``<voices>/<id>/speech`` (LiveSpeech, where asr_vosk publishes the voice's results) is
subscribed too (reliable, depth 10, the audio callback group), and only the followed voice's
results reach the model, read as on ``topics.speech``; the others are counted (``voice speech
dropped (not followed)``). An explicit transcript topic wins: with ``topics.speech`` or
``topics.transcript`` set, no per-voice ``speech`` topic is subscribed, so a recogniser set
there (e.g. ``/humans/voices/anonymous_speaker/speech``) is never heard twice.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import functools
import math
import sys
import threading
import time
from typing import Any, Dict, FrozenSet, List, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import InvalidTopicNameException
from rclpy.executors import MultiThreadedExecutor
from rclpy.expand_topic_name import expand_topic_name
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.validate_full_topic_name import validate_full_topic_name
from std_msgs.msg import Bool, String

from listener_head_ros.audio.pcm import AudioFormat
from listener_head_ros.audio.stream_input import AudioInputStats, AudioStreamInput
from listener_head_ros.build import build_listener, Listener
from listener_head_ros.data.transcripts import live_speech_result
from listener_head_ros.engine import (
    LIVE_SETTINGS as ENGINE_LIVE_SETTINGS, ListenerEngine, MAX_PENDING_TRANSCRIPTS, TickOutput)
from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES, facs_number
from listener_head_ros.models.base import AUDIO, ROBOT_SPEAKING, TRANSCRIPT
from listener_head_ros.models.checkpoint import CheckpointError
from listener_head_ros.models.device import release_device_memory
from listener_head_ros.msg import Backchannel, FacialReaction, HeadPose
from listener_head_ros.ros.audio_messages import (
    AUDIO_TYPE, AudioMessage, describe_format, FLAVOUR, info_format, info_qos,
    INFO_QOS_CHECK_PERIOD, INFO_TYPE, push_audio, STAMPED_TYPE)
from listener_head_ros.ros.callbacks import CallbackFailures, describe_error
from listener_head_ros.ros.parameters import declare_parameters
from listener_head_ros.ros.process import run_node
from listener_head_ros.ros.voices import check_hri_msgs, VoiceInput, VoiceInputStats
from listener_head_ros.schema import SettingsError, unknown_names
from listener_head_ros.settings import LISTENER_SETTINGS, ListenerSettings, settings_from_values

try:
    from hri_msgs.msg import Expression
except ImportError:
    Expression = None
try:
    from hri_msgs.msg import FacialActionUnits
except ImportError:
    FacialActionUnits = None
try:
    from hri_msgs.msg import LiveSpeech
except ImportError:
    LiveSpeech = None

# hri_msgs/FacialActionUnits holds one intensity and confidence per FACS code (index = code).
_FACS_CODES = np.array([facs_number(name) for name in ACTION_UNITS], dtype=np.intp)
_FACS_SLOTS = 99  # the length of its float32[99] arrays

# The audio callbacks and the inference timer share the GIL: with CPython's default 5 ms switch
# interval a tick waited up to ~18 ms (p99) for it; 0.5 ms brought the p99 down to ~5 ms.
GIL_SWITCH_INTERVAL = 0.0005
# Sensor-data QoS (best effort, so reliable and best-effort publishers both reach us), with a
# queue long enough (about 1.6 s of 512-sample chunks) to ride out a slow tick.
AUDIO_QUEUE_DEPTH = 50
# The subscriptions and publishers are destroyed by lifecycle transitions while an executor spins
# in another thread. rclpy's default QoS event handlers are waitables, and a waitable destroyed
# while the executor builds its wait set kills the executor with InvalidHandle (ros2/rclpy#1284,
# #1206; reproduced here about once per 100 activate/deactivate cycles). Create these entities
# without event handlers: subscriptions and publishers themselves are handled safely.
_NO_SUBSCRIPTION_EVENTS = SubscriptionEventCallbacks(use_default_callbacks=False)
_NO_PUBLISHER_EVENTS = PublisherEventCallbacks(use_default_callbacks=False)


def _while_active(lock_name: str):
    """
    Run a callback only while the node is active, and never let its exception escape.

    The executor may dispatch a callback just before deactivate destroys its timer or
    subscription; the guard keeps it from running during cleanup, when the engine and publishers
    are gone. Any exception (a MemoryError included) is caught, counted and logged
    (:class:`CallbackFailures`), and /diagnostics reports it: an escaped exception would end the
    executor's thread and leave a process that publishes nothing and answers no lifecycle
    service.
    """
    def wrap(method):
        name = method.__name__.removeprefix('_on_').lstrip('_')

        @functools.wraps(method)
        def guarded(self, *args):
            with getattr(self, lock_name):
                if not self._io_active:
                    return
                try:
                    method(self, *args)
                except Exception as error:  # noqa: B902 - counted, logged and reported
                    self.callback_failures.record(name, error)
        return guarded
    return wrap


def _transition(name: str):
    """
    Log and undo a lifecycle transition callback that raises, and fail the transition.

    rclpy turns such an exception into the ERROR transition without a word. Here the reason is
    logged, ``undo`` releases whatever the transition had created, and the transition fails,
    which leaves the node in the state it started from, ready to retry.
    """
    def wrap(method):
        @functools.wraps(method)
        def guarded(self, state):
            try:
                return method(self, state)
            except Exception as error:  # noqa: B902 - any failure leaves a node that can retry
                self.get_logger().error(f'{name} failed: {_describe(error)}')
                self._stop_io()
                if name == 'configure':
                    self._release()
                return TransitionCallbackReturn.FAILURE
        return guarded
    return wrap


_ANTICIPATED_ERRORS = (CheckpointError, ValueError, TypeError, InvalidTopicNameException)


def _describe(error: BaseException) -> str:
    """Return the text of an error we anticipate, or its repr for an unexpected one."""
    return describe_error(error, _ANTICIPATED_ERRORS)


# Settings that a running node applies at once: the engine's, and how /diagnostics judges.
LIVE_SETTINGS = ENGINE_LIVE_SETTINGS + ('diagnostics_window',)
# Parameters that every node has or that launch sets, besides the listener's own settings.
_ROS_PARAMETERS = ('use_sim_time', 'start_type_description_service')


@dataclass(frozen=True)
class ListenerStatus:
    """What the node has done so far: the counters that /diagnostics reports, as one snapshot."""

    audio: AudioInputStats
    audio_format: AudioFormat
    format_error: Optional[str]
    frames_stepped: int
    frames_dropped: int


class ListenerNode(LifecycleNode):
    """Lifecycle node that turns the interlocutor's audio into listener behaviour."""

    def __init__(self, node_name: str = 'listener', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self, LISTENER_SETTINGS)
        declared = self._declared_settings = frozenset(spec.name for spec in LISTENER_SETTINGS)
        unknown = unknown_names(sorted(
            name for name in self._parameter_overrides
            if name not in declared and name not in _ROS_PARAMETERS
            and not name.startswith('qos_overrides.')), declared, 'parameter')
        self._parameter_error = f'{unknown}; see config/listener.yaml' if unknown else ''
        if unknown:
            self.get_logger().error(self._parameter_error)
        self.listener: Optional[Listener] = None
        self._audio_group = MutuallyExclusiveCallbackGroup()
        self._tick_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_group = MutuallyExclusiveCallbackGroup()
        self.tick_seconds: collections.deque = collections.deque(maxlen=3000)
        self.tick_cpu_seconds: collections.deque = collections.deque(maxlen=3000)
        self._outputs: Dict[str, Any] = {}
        self._inputs: list = []
        self._io_timers: list = []
        self._info_text = 'no AudioInfo yet: using the input.* parameters'
        self._last_diagnostics = (0.0, 0, 0)  # time, messages and input frames at the last one
        self._io_active = False
        self._audio_lock = threading.Lock()  # one lock per callback group: no cross-group waits
        self._tick_lock = threading.Lock()
        self._diagnostics_lock = threading.Lock()
        self.callback_failures = CallbackFailures(self.get_logger(), _ANTICIPATED_ERRORS)
        self._diagnostics_window: collections.deque = collections.deque()
        self._voices: Optional[VoiceInput] = None
        self._voice_switch = threading.Event()  # set by a voice switch, taken by the next tick
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    # Lifecycle transitions -------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the model, the audio input and the publishers from the parameters."""
        try:
            if self._parameter_error:
                raise SettingsError(self._parameter_error)
            settings = settings_from_values(
                {spec.name: self._p(spec.name) for spec in LISTENER_SETTINGS}, 'parameters')
            self._check_topics(settings)
            if settings.topics.voices:
                check_hri_msgs()
            if settings.topics.speech and LiveSpeech is None:
                raise ValueError(
                    f'topics.speech ({settings.topics.speech!r}) needs the hri_msgs package '
                    "(LiveSpeech), which is not installed: install it, or set topics.speech to "
                    "'' (a std_msgs/String recogniser goes on topics.transcript)")
            self.listener = build_listener(settings,
                                           available_inputs=self.supplied_inputs(settings))
            for warning in self.listener.warnings:
                self.get_logger().warning(warning)
            self.listener.engine.warm_up()
            self._create_outputs(settings)
        except Exception as error:  # noqa: B902 - any failure leaves a node that can retry
            remedy = ('fix the parameter file and start the node again' if self._parameter_error
                      else 'correct the parameter (ros2 param set) and configure it again (ros2 '
                      f'lifecycle set {self.get_fully_qualified_name()} configure)')
            self.get_logger().error(f'configure failed: {_describe(error)}. '
                                    f'The node stays unconfigured: {remedy}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.tick_seconds.clear()
        self.tick_cpu_seconds.clear()
        self.callback_failures.clear()
        model = self.listener.model
        self.get_logger().info(
            f'configured: model {model.name} on {self.listener.device}, '
            f'{model.frame_rate:.2f} frames/s '
            f'(hop {model.hop_length} samples at {model.sample_rate} Hz)')
        return TransitionCallbackReturn.SUCCESS

    def _check_topics(self, settings: ListenerSettings) -> None:
        """Refuse, naming the parameter, any topic name that ROS would reject later."""
        for name, topic in vars(settings.topics).items():
            if not topic:
                continue
            try:
                validate_full_topic_name(expand_topic_name(
                    topic, self.get_name(), self.get_namespace()))
            except (InvalidTopicNameException, ValueError) as error:
                raise ValueError(f'topics.{name}: {topic!r} is not a valid topic name '
                                 f'({str(error).splitlines()[0]})') from None

    def _create_outputs(self, settings: ListenerSettings) -> None:
        topics = settings.topics
        events = {'event_callbacks': _NO_PUBLISHER_EVENTS}
        outputs = [('pose', HeadPose, topics.head_pose),
                   ('face', FacialReaction, topics.facial_reaction),
                   ('backchannel', Backchannel, topics.backchannel)]
        if Expression is not None and topics.expression:
            outputs.append(('expression', Expression, topics.expression))
        if FacialActionUnits is not None and topics.action_units:
            outputs.append(('action_units', FacialActionUnits, topics.action_units))
        for name, message_type, topic in outputs:  # kept one by one: a failure releases them
            self._outputs[name] = self.create_lifecycle_publisher(
                message_type, topic, 10, **events)
        self._outputs['diagnostics'] = self.create_publisher(
            DiagnosticArray, '/diagnostics', 10, **events)

    @_transition('activate')
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start listening: audio subscriptions, the inference timer and diagnostics."""
        settings = self.listener.settings
        sensor = QoSProfile(depth=AUDIO_QUEUE_DEPTH,
                            reliability=qos_profile_sensor_data.reliability,
                            durability=qos_profile_sensor_data.durability)
        options = {'callback_group': self._audio_group,
                   'event_callbacks': _NO_SUBSCRIPTION_EVENTS}
        topics = settings.topics
        inputs = [] if topics.voices else [(AUDIO_TYPE, topics.audio, self._on_audio, sensor)]
        if INFO_TYPE is not None:  # else each audio message carries its format
            inputs.append((INFO_TYPE, topics.audio_info, self._on_audio_info, info_qos(
                self.get_publishers_info_by_topic(topics.audio_info))))
        if topics.audio_stamped and not topics.voices:
            inputs.append((STAMPED_TYPE, topics.audio_stamped, self._on_audio_stamped, sensor))
        if topics.robot_speaking:
            inputs.append((Bool, topics.robot_speaking, self._on_robot_speaking, 10))
        if topics.speech:
            inputs.append((LiveSpeech, topics.speech, self._on_speech, 10))
        if topics.transcript:
            inputs.append((String, topics.transcript, self._on_transcript, 10))
        if self.listener.speaker is not None and topics.robot_audio:
            inputs.append((AUDIO_TYPE, topics.robot_audio, self._on_robot_audio, sensor))
            if INFO_TYPE is not None and topics.robot_audio_info:
                inputs.append((INFO_TYPE, topics.robot_audio_info, self._on_robot_audio_info,
                               info_qos(self.get_publishers_info_by_topic(
                                   topics.robot_audio_info))))
        self.engine.reset()
        now, counters = time.monotonic(), self._counters()
        self._diagnostics_window.clear()
        self._diagnostics_window.append((now, counters))
        self._last_diagnostics = (now, counters['messages'], counters['input frames'])
        self._io_active = True
        for message_type, topic, callback, qos in inputs:  # one by one: a failure releases them
            self._inputs.append(self.create_subscription(
                message_type, topic, callback, qos, **options))
        if topics.voices:  # an explicit transcript topic wins over the voices' speech
            voice_speech = (TRANSCRIPT in self.listener.model.inputs
                            and not (topics.speech or topics.transcript))
            self._voices = VoiceInput(
                self, prefix=topics.voices, on_audio=self._on_voice_audio,
                on_switch=self._on_voice_switch, audio_qos=sensor,
                on_speech=self._on_speech if voice_speech else None, selection=settings.voices,
                callback_group=self._audio_group, failures=self.callback_failures)
        self._info_qos_checked = time.monotonic()
        self.get_logger().info(f'audio input: {FLAVOUR} audio_common_msgs' + (
            '' if INFO_TYPE else ' (each message carries its format: audio_info is not used)'))
        self._io_timers.append(self.create_timer(
            1.0 / settings.frame_rate, self._on_tick, callback_group=self._tick_group))
        self._io_timers.append(self.create_timer(
            settings.diagnostics_period, self._publish_diagnostics,
            callback_group=self._diagnostics_group))
        self.get_logger().info('active: listening')
        return super().on_activate(state)

    @_transition('deactivate')
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening; keep the model."""
        self._stop_io()
        return super().on_deactivate(state)

    @_transition('cleanup')
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model, the audio input and the publishers."""
        self._stop_io()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything on shutdown from any state."""
        self._stop_io()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything after an error, and come back unconfigured, ready to configure."""
        self.get_logger().error(
            f'lifecycle error from {state.label}: released everything; the node is unconfigured')
        self._stop_io()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    @staticmethod
    def supplied_inputs(settings: ListenerSettings) -> FrozenSet[str]:
        """
        Return the model inputs this node feeds: audio, robot speaking, transcripts.

        Transcripts come from ``topics.speech``, ``topics.transcript`` or, with
        ``topics.voices`` (which configure refuses without hri_msgs), the followed voice's
        ``speech``.
        """
        topics = settings.topics
        transcripts = topics.speech or topics.transcript or topics.voices
        return frozenset({AUDIO} | ({ROBOT_SPEAKING} if topics.robot_speaking else set())
                         | ({TRANSCRIPT} if transcripts else set()))

    def status(self) -> Optional[ListenerStatus]:
        """Return a snapshot of the node's counters while configured, else None."""
        listener = self.listener
        if listener is None:
            return None
        return ListenerStatus(listener.audio_input.snapshot(), listener.audio_input.format,
                              listener.audio_input.format_error,
                              listener.engine.frames_stepped, listener.engine.frames_dropped)

    @property
    def engine(self) -> Optional[ListenerEngine]:
        """Return the engine while configured, else None."""
        return self.listener.engine if self.listener else None

    @property
    def audio_input(self) -> Optional[AudioStreamInput]:
        """Return the audio intake while configured, else None."""
        return self.listener.audio_input if self.listener else None

    def _stop_io(self) -> None:
        with self._audio_lock, self._tick_lock, self._diagnostics_lock:
            self._io_active = False  # waits for running callbacks; later ones return at once
        timers, inputs, self._io_timers, self._inputs = self._io_timers, self._inputs, [], []
        voices, self._voices = self._voices, None
        for timer in timers:
            self.destroy_timer(timer)
        for subscription in inputs:
            self.destroy_subscription(subscription)
        if voices is not None:
            voices.close()
        self._voice_switch.clear()

    def _release(self) -> None:
        outputs, self._outputs = self._outputs, {}
        for name, publisher in outputs.items():
            if name == 'diagnostics':
                self.destroy_publisher(publisher)
            else:
                self.destroy_lifecycle_publisher(publisher)
        device = self.listener.device if self.listener else 'cpu'
        self.listener = None
        release_device_memory(device)

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        """
        Apply a live setting at once, and refuse any other while the node is configured.

        Unconfigured, every valid value is taken and read at the next configure. Configured,
        only :data:`LIVE_SETTINGS` change the running node; the rest build the model, the audio
        input and the topics, so they are refused with the way to apply them.
        """
        listener = self.listener
        changes = {p.name: p.value for p in parameters
                   if p.name in self._declared_settings}
        if listener is None or not changes:
            return SetParametersResult(successful=True)
        frozen = sorted(set(changes) - set(LIVE_SETTINGS))
        if frozen:
            return SetParametersResult(successful=False, reason=(
                f'{", ".join(frozen)} applies at configure: deactivate, cleanup, set it, then '
                f'configure {self.get_fully_qualified_name()} again (live while running: '
                f'{", ".join(LIVE_SETTINGS)})'))
        values = {spec.name: self._p(spec.name) for spec in LISTENER_SETTINGS}
        try:
            settings = settings_from_values({**values, **changes}, 'parameters')
            with self._tick_lock:
                listener.engine.update_config(settings.engine)
                listener.settings = settings
        except (SettingsError, ValueError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        self.get_logger().info('applied live: ' + ', '.join(
            f'{name}={value!r}' for name, value in changes.items()))
        return SetParametersResult(successful=True)

    # Callbacks ------------------------------------------------------------------------------

    @_while_active('_audio_lock')
    def _on_audio(self, msg: AudioMessage) -> None:
        self._push_audio(msg)

    @_while_active('_audio_lock')
    def _on_audio_stamped(self, msg: STAMPED_TYPE) -> None:
        self._push_audio(msg.audio)

    def _push_audio(self, msg: AudioMessage) -> None:
        self._match_info_publishers()
        before = self.audio_input.format
        error = push_audio(self.audio_input, msg)
        if self.audio_input.format != before:  # an mgonzs13 message announced another format
            self._announce_format(self.audio_input.format)
        if error:
            self.get_logger().error(f'audio: {error}', throttle_duration_sec=5.0)

    @_while_active('_audio_lock')
    def _on_audio_info(self, msg: INFO_TYPE) -> None:
        fmt = info_format(msg, self.listener.settings.input.sample_format)
        error = self.audio_input.set_format(fmt)
        self._announce_format(fmt)
        if error:
            self.get_logger().error(f'AudioInfo {self._info_text}: {error}')

    def _announce_format(self, fmt: AudioFormat) -> None:
        """Report the stream's format on /diagnostics, and log it where it is decodable."""
        self._info_text = describe_format(fmt)
        if self.audio_input.format_error is None:
            self.get_logger().info(f'audio format: {self._info_text}')

    def _match_info_publishers(self) -> None:
        """
        Re-create each audio_info subscription whose QoS its publishers no longer match.

        Checked while audio arrives, when the format matters, at most every
        INFO_QOS_CHECK_PERIOD: a driver that starts after the listener is met at its first audio.
        """
        now = time.monotonic()
        if INFO_TYPE is None or now < self._info_qos_checked + INFO_QOS_CHECK_PERIOD:
            return
        self._info_qos_checked = now
        for index, subscription in enumerate(self._inputs):
            if subscription.msg_type is not INFO_TYPE:
                continue
            qos = info_qos(self.get_publishers_info_by_topic(subscription.topic))
            held = subscription.qos_profile
            if (qos.durability, qos.reliability) != (held.durability, held.reliability):
                self.destroy_subscription(subscription)
                self._inputs[index] = self.create_subscription(
                    INFO_TYPE, subscription.topic, subscription.callback, qos,
                    callback_group=subscription.callback_group,
                    event_callbacks=_NO_SUBSCRIPTION_EVENTS)

    @_while_active('_audio_lock')
    def _on_robot_speaking(self, msg: Bool) -> None:
        self.listener.set_robot_speaking(msg.data)

    @_while_active('_audio_lock')
    def _on_speech(self, msg: LiveSpeech) -> None:
        text, final, confidence = live_speech_result(msg.incremental, msg.final,
                                                     msg.confidence)
        self.engine.add_live_transcript(text, final=final, confidence=confidence)

    @_while_active('_audio_lock')
    def _on_transcript(self, msg: String) -> None:
        self.engine.add_live_transcript(msg.data)

    @_while_active('_audio_lock')
    def _on_voice_audio(self, msg: AudioMessage) -> None:
        self._push_audio(msg)

    def _on_voice_switch(self, old: Optional[str], new: Optional[str]) -> None:
        """
        Start the model afresh for a new voice at the next tick; keep the head where it is.

        The model's streaming state (the speaker's pitch statistics, its timers) belongs to the
        previous voice, so it is reset; the pose shaper is not, so the speed limit holds across
        the switch and the head never jumps.
        """
        if old is not None:
            self._voice_switch.set()
        self.get_logger().info(f'following voice {new!r} (was {old!r})')

    @_while_active('_audio_lock')
    def _on_robot_audio(self, msg: AudioMessage) -> None:
        error = push_audio(self.listener.robot_audio_input, msg)
        if error:
            self.get_logger().error(f'robot_audio: {error}', throttle_duration_sec=5.0)

    @_while_active('_audio_lock')
    def _on_robot_audio_info(self, msg: INFO_TYPE) -> None:
        fmt = info_format(msg, self.listener.settings.input.sample_format)
        error = self.listener.robot_audio_input.set_format(fmt)
        if error:
            self.get_logger().error(f'robot_audio_info {describe_format(fmt)}: {error}')

    @_while_active('_tick_lock')
    def _on_tick(self) -> None:
        if self._voice_switch.is_set():
            self._voice_switch.clear()
            self.engine.model.reset()
        seen = self.engine.nonfinite_frames
        output = self.engine.tick(budget=1.0 / self.engine.config.frame_rate)
        if not seen and self.engine.nonfinite_frames:  # once per activation; diagnostics count
            self.get_logger().error(
                f'model {self.engine.model.name} produced a non-finite frame; it is never '
                'published (the head holds its last finite pose); /diagnostics counts them')
        self.tick_seconds.append(output.compute_seconds)
        self.tick_cpu_seconds.append(output.cpu_seconds)
        self._publish(output)

    def _publish(self, output: TickOutput) -> None:
        frame, stamp = output.frame, self.get_clock().now().to_msg()
        pose = HeadPose()
        pose.header.stamp, pose.header.frame_id = stamp, self.listener.settings.frame_id
        pose.roll, pose.pitch, pose.yaw = frame.roll, frame.pitch, frame.yaw
        pose.has_angular_velocity = True
        pose.angular_velocity.x, pose.angular_velocity.y, pose.angular_velocity.z = (
            float(v) for v in output.angular_velocity)
        self._outputs['pose'].publish(pose)
        face = FacialReaction()
        face.header = pose.header
        face.blendshape_names = list(ARKIT_BLENDSHAPES)
        face.blendshape_weights = _unit(frame.blendshapes)
        face.action_unit_names = list(ACTION_UNITS)
        face.action_unit_values = _unit(frame.action_units)
        face.valence, face.arousal = _signed(frame.valence), _signed(frame.arousal)
        face.expression = frame.expression
        face.confidence = float(np.clip(np.nan_to_num(frame.confidence), 0.0, 1.0))
        self._outputs['face'].publish(face)
        for event in frame.backchannels:
            backchannel = Backchannel(type=event.kind, intensity=float(event.intensity),
                                      duration=float(event.duration))
            backchannel.header = pose.header
            self._outputs['backchannel'].publish(backchannel)
        if 'expression' in self._outputs:
            self._outputs['expression'].publish(Expression(
                header=pose.header, expression=face.expression, valence=face.valence,
                arousal=face.arousal, confidence=face.confidence))
        if 'action_units' in self._outputs:
            intensity = np.zeros(_FACS_SLOTS, dtype=np.float32)
            confidence = np.zeros(_FACS_SLOTS, dtype=np.float32)
            intensity[_FACS_CODES] = face.action_unit_values
            confidence[_FACS_CODES] = face.confidence
            self._outputs['action_units'].publish(FacialActionUnits(
                header=pose.header, intensity=intensity, confidence=confidence))

    def _counters(self) -> Dict[str, int]:
        """Return every cumulative counter that /diagnostics judges, by its reported name."""
        stats, engine = self.audio_input.snapshot(), self.engine
        return {
            'messages': stats.messages,
            'input frames': stats.input_frames,
            'empty messages': stats.empty_messages,
            'malformed messages': stats.malformed_messages,
            'rejected messages': stats.rejected_messages,
            'oversized messages': stats.oversized_messages,
            'format changes': stats.format_changes,
            'rejected formats': stats.rejected_formats,
            'non-finite samples replaced': stats.nonfinite_samples,
            'muted messages': stats.muted_messages,
            'buffer overflow samples': self.audio_input.buffer.overflowed_samples,
            'frames processed': engine.frames_stepped,
            'dropped frames': engine.frames_dropped,
            'dropped frames (audio burst)': engine.frames_dropped_burst,
            'dropped frames (inference too slow)': engine.frames_dropped_slow,
            'ticks over budget': engine.ticks_over_budget,
            'non-finite model frames': engine.nonfinite_frames,
            'callback errors': self.callback_failures.total(),
            'speaking frames': engine.speaking_frames_stepped,
            'speaking frames dropped': engine.speaking_frames_dropped,
            'transcripts received': engine.transcripts_received,
            'transcripts delivered': engine.transcripts_delivered,
            'transcripts ignored (no text)': engine.transcripts_ignored,
            'transcripts dropped (queue full)': engine.transcripts_dropped,
            'transcripts truncated': engine.transcripts_truncated,
            **self._voice_counters(),
        }

    def _voice_counters(self) -> Dict[str, int]:
        """Return the ros4hri voice counters (zeros when no voices are followed)."""
        voices = self._voices.snapshot() if self._voices is not None else VoiceInputStats()
        return {'voice lists': voices.tracked_lists, 'voices added': voices.voices_added,
                'voices removed': voices.voices_removed,
                'voice ids refused': voices.rejected_ids, 'voice switches': voices.switches,
                'voice audio forwarded': voices.forwarded_messages,
                'voice audio dropped (not followed)': voices.dropped_messages,
                'voice speech forwarded': voices.forwarded_speech,
                'voice speech dropped (not followed)': voices.dropped_speech}

    def _recent(self, now: float, counters: Dict[str, int]) -> tuple:
        """Return the seconds and the counter increases of the recent diagnostics window."""
        window, span = self._diagnostics_window, self.listener.settings.diagnostics_window
        window.append((now, counters))
        while len(window) > 1 and now - window[1][0] >= span:
            window.popleft()
        since, before = window[0]
        return now - since, {key: value - before[key] for key, value in counters.items()}

    def _health(self, recent: Dict[str, int], seconds: float, message_rate: float) -> tuple:
        """Return the diagnostics level and a message naming every problem of the window."""
        engine, span = self.engine, f'in the last {seconds:.0f} s'
        errors, warnings = [], []
        if recent['non-finite model frames']:
            errors.append(f'model {engine.model.name} gave {recent["non-finite model frames"]} '
                          f'non-finite frame(s) {span}: the head holds its last finite pose '
                          '(is the checkpoint corrupt?)')
        if recent['callback errors']:
            errors.append(f'{recent["callback errors"]} callback error(s) {span}, last '
                          f'{self.callback_failures.last}')
        if self.audio_input.format_error:
            errors.append(self.audio_input.format_error)
        bad = (recent['malformed messages'] + recent['rejected messages']
               + recent['oversized messages'] + recent['non-finite samples replaced'])
        if bad and not self.audio_input.format_error:
            warnings.append(f'bad audio {span}: {self.audio_input.last_error}')
        if message_rate == 0 and not self.audio_input.format_error:
            warnings.append('no voice followed' if self.listener.settings.topics.voices
                            and self._voices is not None and self._voices.followed is None
                            else 'no audio arriving')
        if recent['voice ids refused']:
            warnings.append(f'{recent["voice ids refused"]} voice id(s) refused {span}: they '
                            'make no valid topic name')
        slow, burst = (recent['dropped frames (inference too slow)'],
                       recent['dropped frames (audio burst)'])
        if slow:
            warnings.append(f'inference fell behind: {slow} frame(s) dropped {span}')
        if burst:
            warnings.append(f'audio arrived in bursts longer than max_latency: {burst} '
                            f'frame(s) dropped {span}')
        if recent['transcripts dropped (queue full)']:
            warnings.append(f'{recent["transcripts dropped (queue full)"]} transcript(s) '
                            f'dropped unheard {span}: more than {MAX_PENDING_TRANSCRIPTS} '
                            'waited for audio of their time (does the recogniser hear other '
                            'audio than the listener?)')
        level = (DiagnosticStatus.ERROR if errors else
                 DiagnosticStatus.WARN if warnings else DiagnosticStatus.OK)
        return level, '; '.join(errors + warnings) or 'listening'

    @_while_active('_diagnostics_lock')
    def _publish_diagnostics(self) -> None:
        engine, now = self.engine, time.monotonic()
        counters = self._counters()
        last_time, last_messages, last_samples = self._last_diagnostics
        elapsed = max(now - last_time, 1e-9)
        self._last_diagnostics = (now, counters['messages'], counters['input frames'])
        message_rate = (counters['messages'] - last_messages) / elapsed
        seconds, recent = self._recent(now, counters)
        level, summary = self._health(recent, seconds, message_rate)
        p50, p99 = _percentiles_ms(self.tick_seconds)
        cpu_p50, cpu_p99 = _percentiles_ms(self.tick_cpu_seconds)
        values = {
            'input format': self._info_text,
            'input message rate (Hz)': f'{message_rate:.1f}',
            'input sample rate (Hz)': f'{(counters["input frames"] - last_samples) / elapsed:.0f}',
            **{key: value for key, value in counters.items() if key != 'input frames'},
            'recent window (s)': f'{seconds:.1f}',
            **{f'recent {key}': value for key, value in recent.items()
               if key not in ('messages', 'input frames', 'frames processed')},
            'tick compute p50 (ms)': f'{p50:.3f}',
            'tick compute p99 (ms)': f'{p99:.3f}',
            'tick CPU p50 (ms)': f'{cpu_p50:.3f}',
            'tick CPU p99 (ms)': f'{cpu_p99:.3f}',
            'model': engine.model.name,
            'model streams': ', '.join(f'{k}: {v}' for k, v in engine.model.outputs.items()),
            'model inputs': ', '.join(sorted(engine.model.inputs)),
            'device': self.listener.device,
            'robot speaking': engine.robot_speaking,
            'speaking model': engine.speaker.name if engine.speaker is not None else 'none',
            'speaking weight': f'{engine.speaking_weight:.2f}',
            'reaction followed': f'{engine.reaction} of {engine.model.num_samples} '
                                 f'(redraw: {engine.config.reaction_redraw})',
            'speaker turns': engine.reactions.turns,
            'transcripts pending': engine.pending_transcripts,
            **({} if self._voices is None else {
                'followed voice': self._voices.followed or 'none',
                'tracked voices': ', '.join(sorted(self._voices.voices)) or 'none',
                'speaking voices': ', '.join(sorted(self._voices.speaking)) or 'none'}),
        }
        status = DiagnosticStatus(
            level=level, name=f'{self.get_name()}: listener', message=summary,
            hardware_id=self.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._outputs['diagnostics'].publish(array)


def _percentiles_ms(seconds: collections.deque) -> tuple:
    values = np.asarray(seconds) * 1e3
    return tuple(np.percentile(values, [50, 99])) if values.size else (math.nan, math.nan)


def _unit(values: np.ndarray) -> list:
    return np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0).tolist()


def _signed(value: float) -> float:
    return float(np.clip(np.nan_to_num(value), -1.0, 1.0))


def main(argv: Optional[list] = None) -> int:
    """
    Run the listener node alone until SIGINT or SIGTERM; return a process exit code.

    With ``autostart`` (the default) the node configures and activates itself: it owns its
    lifecycle transitions, under ``ros2 run`` and ``ros2 launch`` alike. A failed configure is
    logged and leaves the node running, unconfigured, for a later ``configure``. With
    ``autostart: false`` it waits, unconfigured, for a lifecycle manager or ``ros2 lifecycle``.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return run_node(argv if argv is not None else sys.argv, ListenerNode, MultiThreadedExecutor,
                    'listener', start=_autostart)


def _autostart(node: ListenerNode) -> None:
    """Configure, then activate, the node if its ``autostart`` parameter says so."""
    if node.get_parameter('autostart').value and (
            node.trigger_configure() == TransitionCallbackReturn.SUCCESS and rclpy.ok()):
        node.trigger_activate()
