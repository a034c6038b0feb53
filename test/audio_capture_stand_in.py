"""
Publish audio_info and audio as ros-drivers ``audio_capture`` does, in its old or current QoS.

A stand-in for the driver, which cannot run here (no GStreamer source, no microphone): it
publishes the same messages with the same QoS. ``audio_info`` is volatile (releases before
ros-drivers/audio_common#257) or transient-local (current ones), published at start and then
every ``--info-period`` seconds (``0``: never again; the real driver uses 5 s); ``audio``
carries silence in that format, reliable, depth 10. Its publishers keep rclpy's default event
callbacks, so an incompatible subscription makes it log a warning, as the C++ driver does. Prints
``ready`` once publishing; runs until SIGINT.
"""

from __future__ import annotations

import argparse
import sys

from audio_common_msgs.msg import AudioData, AudioInfo
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from listener_head_ros.ros.process import run_node

CHANNELS, RATE, SAMPLE_FORMAT, CHUNK_FRAMES = 2, 48000, 'F32LE', 1024


class AudioCaptureStandIn(Node):
    """Publish ``audio_info`` with the given durability, and silence on ``audio``."""

    def __init__(self, durability: DurabilityPolicy, info_period: float) -> None:
        super().__init__('audio_capture')
        info_publisher = self.create_publisher(AudioInfo, 'audio_info', QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=durability))
        audio_publisher = self.create_publisher(AudioData, 'audio', 10)
        info = AudioInfo(channels=CHANNELS, sample_rate=RATE, sample_format=SAMPLE_FORMAT,
                         coding_format='wave', bitrate=RATE * CHANNELS * 32)
        silence = AudioData(data=bytes(CHUNK_FRAMES * CHANNELS * 4))
        info_publisher.publish(info)
        if info_period > 0:
            self.create_timer(info_period, lambda: info_publisher.publish(info))
        self.create_timer(CHUNK_FRAMES / RATE, lambda: audio_publisher.publish(silence))


def main(argv: list) -> int:
    """Publish until SIGINT; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--durability', choices=('volatile', 'transient_local'), required=True)
    parser.add_argument('--info-period', type=float, default=5.0)
    args = parser.parse_args(argv)
    durability = DurabilityPolicy[args.durability.upper()]
    return run_node([], lambda: AudioCaptureStandIn(durability, args.info_period),
                    SingleThreadedExecutor, 'audio_capture_stand_in',
                    start=lambda node: print('ready', flush=True))


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
