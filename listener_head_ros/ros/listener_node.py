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
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import functools
import math
import sys
import threading
import time
from typing import Any, Dict, FrozenSet, Optional

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy)
from std_msgs.msg import Bool

from listener_head_ros.audio.pcm import AudioFormat
from listener_head_ros.audio.stream_input import AudioInputStats, AudioStreamInput
from listener_head_ros.build import build_listener, Listener
from listener_head_ros.engine import ListenerEngine, TickOutput
from listener_head_ros.face import ACTION_UNITS, ARKIT_BLENDSHAPES
from listener_head_ros.models.base import AUDIO, ROBOT_SPEAKING
from listener_head_ros.models.checkpoint import CheckpointError
from listener_head_ros.models.device import release_device_memory
from listener_head_ros.msg import Backchannel, FacialReaction, HeadPose
from listener_head_ros.ros.process import run_node
from listener_head_ros.ros.parameters import declare_parameters
from listener_head_ros.schema import SettingsError, unknown_names
from listener_head_ros.settings import LISTENER_SETTINGS, ListenerSettings, settings_from_values

try:
    from hri_msgs.msg import Expression
except ImportError:
    Expression = None

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
    Run a callback only while the node is active, never during a transition's _stop_io.

    The executor may dispatch a callback just before deactivate destroys its timer or
    subscription; without this guard it could then run during cleanup and find the engine and
    publishers gone, and its exception would stop the executor.
    """
    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args):
            with getattr(self, lock_name):
                if self._io_active:
                    method(self, *args)
        return guarded
    return wrap


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
        declared = {spec.name for spec in LISTENER_SETTINGS}
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
        self._last_diagnostics = (time.monotonic(), 0, 0)
        self._io_active = False
        self._audio_lock = threading.Lock()  # one lock per callback group: no cross-group waits
        self._tick_lock = threading.Lock()
        self._diagnostics_lock = threading.Lock()

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
            self.listener = build_listener(settings,
                                           available_inputs=self.supplied_inputs(settings))
            for warning in self.listener.warnings:
                self.get_logger().warning(warning)
            self.listener.engine.warm_up()
        except Exception as error:  # noqa: B902 - any failure leaves a node that can retry
            known = isinstance(error, (CheckpointError, ValueError, TypeError))
            remedy = ('fix the parameter file and start the node again' if self._parameter_error
                      else 'correct the parameter (ros2 param set) and configure it again (ros2 '
                      f'lifecycle set {self.get_fully_qualified_name()} configure)')
            self.get_logger().error(f'configure failed: {error if known else repr(error)}. '
                                    f'The node stays unconfigured: {remedy}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        model = self.listener.model
        self.tick_seconds.clear()
        self.tick_cpu_seconds.clear()
        topics = self.listener.settings.topics
        events = {'event_callbacks': _NO_PUBLISHER_EVENTS}
        self._outputs = {
            'pose': self.create_lifecycle_publisher(
                HeadPose, topics.head_pose, 10, **events),
            'face': self.create_lifecycle_publisher(
                FacialReaction, topics.facial_reaction, 10, **events),
            'backchannel': self.create_lifecycle_publisher(
                Backchannel, topics.backchannel, 10, **events),
            'diagnostics': self.create_publisher(
                DiagnosticArray, '/diagnostics', 10, **events),
        }
        if Expression is not None and topics.expression:
            self._outputs['expression'] = self.create_lifecycle_publisher(
                Expression, topics.expression, 10, **events)
        self.get_logger().info(
            f'configured: model {model.name} on {self.listener.device}, '
            f'{model.frame_rate:.2f} frames/s '
            f'(hop {model.hop_length} samples at {model.sample_rate} Hz)')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start listening: audio subscriptions, the inference timer and diagnostics."""
        settings = self.listener.settings
        sensor = QoSProfile(depth=AUDIO_QUEUE_DEPTH,
                            reliability=qos_profile_sensor_data.reliability,
                            durability=qos_profile_sensor_data.durability)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self._io_active = True
        options = {'callback_group': self._audio_group,
                   'event_callbacks': _NO_SUBSCRIPTION_EVENTS}
        self._inputs = [
            self.create_subscription(AudioData, settings.topics.audio, self._on_audio,
                                     sensor, **options),
            self.create_subscription(AudioInfo, settings.topics.audio_info,
                                     self._on_audio_info, latched, **options),
        ]
        if settings.topics.audio_stamped:
            self._inputs.append(self.create_subscription(
                AudioDataStamped, settings.topics.audio_stamped,
                lambda msg: self._on_audio(msg.audio), sensor, **options))
        if settings.topics.robot_speaking:
            self._inputs.append(self.create_subscription(
                Bool, settings.topics.robot_speaking, self._on_robot_speaking, 10,
                **options))
        self.engine.reset()
        self._io_timers = [
            self.create_timer(1.0 / settings.frame_rate, self._on_tick,
                              callback_group=self._tick_group),
            self.create_timer(settings.diagnostics_period, self._publish_diagnostics,
                              callback_group=self._diagnostics_group),
        ]
        self.get_logger().info('active: listening')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening; keep the model."""
        self._stop_io()
        return super().on_deactivate(state)

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

    @staticmethod
    def supplied_inputs(settings: ListenerSettings) -> FrozenSet[str]:
        """Return the model inputs this node feeds with ``settings``: audio, robot speaking."""
        return frozenset({AUDIO} | ({ROBOT_SPEAKING} if settings.topics.robot_speaking else set()))

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
        for timer in self._io_timers:
            self.destroy_timer(timer)
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._io_timers, self._inputs = [], []

    def _release(self) -> None:
        for name, publisher in self._outputs.items():
            if name == 'diagnostics':
                self.destroy_publisher(publisher)
            else:
                self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        device = self.listener.device if self.listener else 'cpu'
        self.listener = None
        release_device_memory(device)

    # Callbacks ------------------------------------------------------------------------------

    @_while_active('_audio_lock')
    def _on_audio(self, msg: AudioData) -> None:
        error = self.audio_input.push(msg.data)
        if error:
            self.get_logger().error(f'audio: {error}', throttle_duration_sec=5.0)

    @_while_active('_audio_lock')
    def _on_audio_info(self, msg: AudioInfo) -> None:
        fallback = self.listener.settings.input.sample_format
        fmt = AudioFormat(channels=msg.channels, sample_rate=msg.sample_rate,
                          sample_format=msg.sample_format or fallback,
                          coding_format=msg.coding_format)
        error = self.audio_input.set_format(fmt)
        self._info_text = (f'{fmt.sample_format} {fmt.sample_rate} Hz x{fmt.channels} '
                           f'({fmt.coding_format or "raw"})')
        if error:
            self.get_logger().error(f'AudioInfo {self._info_text}: {error}')
        else:
            self.get_logger().info(f'audio format: {self._info_text}')

    @_while_active('_audio_lock')
    def _on_robot_speaking(self, msg: Bool) -> None:
        self.listener.set_robot_speaking(msg.data)

    @_while_active('_tick_lock')
    def _on_tick(self) -> None:
        seen = self.engine.nonfinite_frames
        output = self.engine.tick()
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

    @_while_active('_diagnostics_lock')
    def _publish_diagnostics(self) -> None:
        stats, engine = self.audio_input.stats, self.engine
        now = time.monotonic()
        last_time, last_messages, last_samples = self._last_diagnostics
        elapsed = max(now - last_time, 1e-9)
        self._last_diagnostics = (now, stats.messages, stats.input_frames)
        p50, p99 = _percentiles_ms(self.tick_seconds)
        cpu_p50, cpu_p99 = _percentiles_ms(self.tick_cpu_seconds)
        message_rate = (stats.messages - last_messages) / elapsed
        level, summary = DiagnosticStatus.OK, 'listening'
        if engine.nonfinite_frames:
            level, summary = DiagnosticStatus.ERROR, (
                f'model {engine.model.name} gave {engine.nonfinite_frames} non-finite '
                'frame(s): the head holds its last finite pose (is the checkpoint corrupt?)')
        elif self.audio_input.format_error:
            level, summary = DiagnosticStatus.ERROR, self.audio_input.format_error
        elif stats.malformed_messages or stats.nonfinite_samples:
            level, summary = DiagnosticStatus.WARN, f'bad audio: {self.audio_input.last_error}'
        elif message_rate == 0:
            level, summary = DiagnosticStatus.WARN, 'no audio arriving'
        elif engine.frames_dropped:
            level, summary = DiagnosticStatus.WARN, 'inference fell behind: frames dropped'
        values = {
            'input format': self._info_text,
            'input message rate (Hz)': f'{message_rate:.1f}',
            'input sample rate (Hz)': f'{(stats.input_frames - last_samples) / elapsed:.0f}',
            'messages': stats.messages,
            'empty messages': stats.empty_messages,
            'malformed messages': stats.malformed_messages,
            'rejected messages': stats.rejected_messages,
            'non-finite samples replaced': stats.nonfinite_samples,
            'muted messages': stats.muted_messages,
            'buffer overflow samples': self.audio_input.buffer.overflowed_samples,
            'tick compute p50 (ms)': f'{p50:.3f}',
            'tick compute p99 (ms)': f'{p99:.3f}',
            'tick CPU p50 (ms)': f'{cpu_p50:.3f}',
            'tick CPU p99 (ms)': f'{cpu_p99:.3f}',
            'frames processed': engine.frames_stepped,
            'dropped frames': engine.frames_dropped,
            'non-finite model frames': engine.nonfinite_frames,
            'model': engine.model.name,
            'model streams': ', '.join(f'{k}: {v}' for k, v in engine.model.outputs.items()),
            'model inputs': ', '.join(sorted(engine.model.inputs)),
            'device': self.listener.device,
            'robot speaking': engine.robot_speaking,
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
