"""
Publish a sound file as a microphone would: AudioInfo once (latched), then AudioData chunks.

Stands in for ros-drivers ``audio_capture`` when there is no microphone, e.g.::

    ros2 run listener_head_ros listener_graph &
    python -m listener_head_ros.ros.audio_file_publisher speech.wav --ros-args \
        -r audio:=/audio/audio -r audio_info:=/audio/audio_info
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Any, Optional

from audio_common_msgs.msg import AudioData, AudioInfo
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
import soundfile

from listener_head_ros.audio.pcm import encode_pcm


class AudioFilePublisher(Node):
    """Publish a sound file's samples as audio_common_msgs at real time (or faster)."""

    def __init__(self, samples: np.ndarray, sample_rate: int, sample_format: str = 'S16LE',
                 chunk_frames: int = 512, speed: float = 1.0, loop: bool = False,
                 node_name: str = 'audio_file_publisher', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.samples = np.asarray(samples, dtype=np.float32)
        if self.samples.ndim == 1:
            self.samples = self.samples[:, None]
        self.sample_rate = int(sample_rate)
        self.sample_format = sample_format
        self.chunk_frames = int(chunk_frames)
        self.loop = loop
        self.position = 0
        self.chunks_published = 0
        self.finished = False
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.info_publisher = self.create_publisher(AudioInfo, 'audio_info', latched)
        self.audio_publisher = self.create_publisher(AudioData, 'audio', 10)
        self.info_publisher.publish(AudioInfo(
            channels=self.samples.shape[1], sample_rate=self.sample_rate,
            sample_format=sample_format, coding_format='wave',
            bitrate=self.sample_rate * self.samples.shape[1] * 8 * _sample_bytes(sample_format)))
        period = self.chunk_frames / self.sample_rate / speed
        self.timer = self.create_timer(period, self.publish_next_chunk)

    def publish_next_chunk(self) -> None:
        """Publish the next chunk; at the end, wrap around or stop."""
        if self.finished:
            return
        if self.position >= len(self.samples):
            if not self.loop:
                self.finished = True
                self.timer.cancel()
                return
            self.position = 0
        chunk = self.samples[self.position:self.position + self.chunk_frames]
        self.position += self.chunk_frames
        self.audio_publisher.publish(AudioData(data=encode_pcm(chunk, self.sample_format)))
        self.chunks_published += 1


def _sample_bytes(sample_format: str) -> int:
    return int(''.join(c for c in sample_format if c.isdigit()) or 8) // 8


def main(argv: Optional[list] = None) -> int:
    """Publish a file given on the command line; return when it has been played."""
    args_in = sys.argv if argv is None else argv
    non_ros = rclpy.utilities.remove_ros_args(args_in)[1:]
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('file', type=Path, help='any file libsndfile reads (wav, flac, ogg)')
    parser.add_argument('--sample-format', default='S16LE', help='PCM format to send')
    parser.add_argument('--chunk', type=int, default=512, help='frames per message')
    parser.add_argument('--speed', type=float, default=1.0, help='1.0 is real time')
    parser.add_argument('--loop', action='store_true', help='start again at the end')
    options = parser.parse_args(non_ros)
    samples, sample_rate = soundfile.read(options.file, dtype='float32', always_2d=True)
    rclpy.init(args=args_in)
    node = AudioFilePublisher(samples, sample_rate, options.sample_format, options.chunk,
                              options.speed, options.loop)
    try:
        while rclpy.ok() and not node.finished:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
