"""
Run the listener node against the installed audio_common_msgs flavour; print what it did as JSON.

test_audio_flavours.py runs this script once per flavour, each in a process whose paths hold
that flavour's test underlay (the two cannot be imported into one process: same package name).
A microphone node publishes the flavour's messages as its driver does, over DDS:

- ros-drivers ``audio_capture``: ``AudioData`` (reliable, depth 10) and a transient-local
  ``AudioInfo``;
- mgonzs13 ``audio_capturer_node``: ``AudioStamped`` with int16 typed arrays and its PortAudio
  ``AudioInfo``, best effort.

Scenarios (``poses,formats SAMPLES.npy`` runs both, in one process):

``poses``
    streams int16 mono 16 kHz samples one model hop per message to a node on simulated time,
    and advances /clock one timer period once each message is in: every tick then steps
    exactly one hop, so the HeadPose sequence is a function of the samples alone.
``formats``
    (mgonzs13 only) sends float32 48 kHz stereo, int24, a PortAudio format no array holds
    and int16 again to a node on wall time, and reports the formats and counters after each.
"""

from __future__ import annotations

import array
from dataclasses import asdict
import json
import math
import sys
import threading
import time
from typing import Callable, Optional

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from listener_head_ros.msg import HeadPose
from listener_head_ros.ros.audio_messages import FLAVOUR, MGONZS13, ROS_DRIVERS
from listener_head_ros.ros.listener_node import ListenerNode

TIMEOUT = 10.0
RATE = 16000
PA_FLOAT32, PA_INT24, PA_INT16, PA_CUSTOM_FORMAT = 0x01, 0x04, 0x08, 0x10000


def wait_for(condition: Callable[[], object], publish: Optional[Callable[[], None]] = None,
             retry: float = math.inf) -> None:
    """Poll ``condition`` until true, calling ``publish`` first and again every ``retry`` s."""
    deadline, next_publish = time.monotonic() + TIMEOUT, 0.0
    while not condition():
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError('condition not met in time')
        if publish is not None and now >= next_publish:
            publish()
            next_publish = now + retry
        time.sleep(0.002)


class Microphone:
    """Publish audio the way the installed flavour's driver does."""

    def __init__(self, node) -> None:
        from audio_common_msgs import msg
        self.msg = msg
        if FLAVOUR == ROS_DRIVERS:
            self.audio = node.create_publisher(msg.AudioData, 'audio', 10)
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                 reliability=ReliabilityPolicy.RELIABLE)
            self.info = node.create_publisher(msg.AudioInfo, 'audio_info', latched)
            self.info.publish(msg.AudioInfo(channels=1, sample_rate=RATE, sample_format='S16LE',
                                            coding_format='wave', bitrate=RATE * 16))
        else:
            self.audio = node.create_publisher(msg.AudioStamped, 'audio', qos_profile_sensor_data)

    def int16(self, samples: np.ndarray) -> object:
        """Return the message of int16 mono 16 kHz ``samples``."""
        if FLAVOUR == ROS_DRIVERS:
            return self.msg.AudioData(data=samples.astype('<i2').tobytes())
        return self.typed(PA_INT16, 'int16_data', array.array('h', samples.astype(np.int16)))

    def typed(self, portaudio_format: int, field: str, values: object, channels: int = 1,
              rate: int = RATE) -> object:
        """Return an mgonzs13 AudioStamped with ``values`` in ``field``."""
        msg = self.msg.AudioStamped()
        setattr(msg.audio.audio_data, field, values)
        msg.audio.info.format, msg.audio.info.channels = portaudio_format, channels
        msg.audio.info.rate, msg.audio.info.chunk = rate, len(values) // channels
        return msg


class Session:
    """A listener node and a probe node (with a microphone) spinning in a MultiThreadedExecutor."""

    def __init__(self, context=None, microphone: bool = True, **parameters) -> None:
        self.node = ListenerNode(context=context, parameter_overrides=[
            Parameter(name, value=value) for name, value in parameters.items()])
        self.probe = rclpy.create_node('flavour_probe', context=context)
        self.poses: list = []
        self.probe.create_subscription(HeadPose, 'head_pose', self.poses.append, 100)
        self.microphone = Microphone(self.probe) if microphone else None
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def start(self) -> 'Session':
        """Configure and activate the listener; wait until the microphone reaches it."""
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        if self.microphone is not None:
            wait_for(lambda: self.microphone.audio.get_subscription_count() > 0)
        return self

    def send(self, msg: object) -> None:
        """Publish ``msg`` and wait until the node has taken it (best effort: resent at 2 s)."""
        count = self.node.audio_input.snapshot().messages
        wait_for(lambda: self.node.audio_input.snapshot().messages > count,
                 lambda: self.microphone.audio.publish(msg),
                 retry=2.0 if FLAVOUR == MGONZS13 else math.inf)

    def close(self) -> None:
        """Stop spinning and destroy the nodes."""
        self.executor.shutdown()
        self.thread.join(timeout=TIMEOUT)
        self.probe.destroy_node()
        self.node.destroy_node()


def poses(path: str) -> dict:
    """Stream the samples at ``path`` one hop a tick on simulated time; return the poses."""
    session = Session(use_sim_time=True).start()
    node, probe = session.node, session.probe
    clock = probe.create_publisher(Clock, '/clock', 10)
    hop = node.listener.model.hop_length
    assert node.listener.model.sample_rate == RATE
    period = int(1.0 / node.listener.settings.frame_rate * 1e9)  # as rclpy's create_timer
    now = 3000 * period + period // 2  # mid-period: one timer call per step of one period

    def tick() -> None:
        nonlocal now
        count = len(session.poses)
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(now, 10 ** 9)
        clock.publish(msg)
        wait_for(lambda: len(session.poses) > count)
        now += period

    samples = np.load(path)
    tick()  # the jump from time 0 to the start: one tick on no audio
    for start in range(0, samples.size - hop + 1, hop):
        session.send(session.microphone.int16(samples[start:start + hop]))
        tick()
    stats = asdict(node.audio_input.snapshot())
    result = {'flavour': FLAVOUR, 'stats': stats, 'dropped': node.engine.frames_dropped,
              'poses': [[p.roll, p.pitch, p.yaw, p.angular_velocity.x, p.angular_velocity.y,
                         p.angular_velocity.z] for p in session.poses]}
    session.close()
    return result


def formats(path: str) -> dict:
    """Send each kind of mgonzs13 message; return the formats and counters that resulted."""
    assert FLAVOUR == MGONZS13, FLAVOUR
    session = Session().start()
    node, microphone = session.node, session.microphone
    speech = np.load(path)
    seen = []

    def send_all(messages: list) -> None:
        for msg in messages:
            session.send(msg)
        fmt = node.audio_input.format
        seen.append({'format': [fmt.sample_format, fmt.sample_rate, fmt.channels],
                     'error': node.audio_input.format_error, 'stats': asdict(
                         node.audio_input.snapshot())})

    stereo48k = np.repeat(speech.astype(np.float32) / 32768, 3)  # 48 kHz, held samples
    stereo48k = np.stack([stereo48k, 0.5 * stereo48k], axis=1).reshape(-1)
    send_all([microphone.typed(PA_FLOAT32, 'float32_data',
                               array.array('f', stereo48k[i:i + 1024 * 2]), 2, 48000)
              for i in range(0, 10 * 1024 * 2, 1024 * 2)])
    send_all([microphone.typed(PA_INT24, 'int24_data',
                               array.array('i', speech[i:i + 512].astype(np.int32) << 8))
              for i in range(0, 10 * 512, 512)])
    send_all([microphone.typed(PA_CUSTOM_FORMAT, 'uint8_data', bytes(512))])
    send_all([microphone.int16(speech[i:i + 512]) for i in range(0, 10 * 512, 512)])
    frames_processed = node.engine.frames_stepped
    session.close()
    return {'flavour': FLAVOUR, 'seen': seen, 'frames_processed': frames_processed}


SCENARIOS = {'poses': poses, 'formats': formats}


def main(argv: list) -> int:
    """Run the scenarios named (comma-separated) by ``argv[1]`` on ``argv[2]``; print JSON."""
    rclpy.init()
    try:
        result = {name: SCENARIOS[name](argv[2]) for name in argv[1].split(',')}
    finally:
        rclpy.shutdown()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
