"""Our messages and the audio_common_msgs stand-in cross a real DDS link between two processes."""

import subprocess
import sys
import textwrap
import time

import pytest

rclpy = pytest.importorskip('rclpy')
HeadPose = pytest.importorskip('listener_head_ros.msg').HeadPose
AudioData = pytest.importorskip('audio_common_msgs.msg').AudioData

PUBLISHER = textwrap.dedent('''
    import sys
    import numpy as np
    import rclpy
    from audio_common_msgs.msg import AudioData
    from listener_head_ros.msg import HeadPose

    rclpy.init()
    node = rclpy.create_node('dds_test_publisher')
    pose_pub = node.create_publisher(HeadPose, 'head_pose', 10)
    audio_pub = node.create_publisher(AudioData, 'audio', 10)
    pose = HeadPose()
    pose.header.frame_id = 'head'
    pose.roll, pose.pitch, pose.yaw = 0.1, -0.25, 0.5
    pose.has_angular_velocity = True
    pose.angular_velocity.y = 1.5
    audio = AudioData(data=np.arange(256, dtype=np.uint8))
    deadline = node.get_clock().now().nanoseconds + int(float(sys.argv[1]) * 1e9)
    while rclpy.ok() and node.get_clock().now().nanoseconds < deadline:
        pose.header.stamp = node.get_clock().now().to_msg()
        pose_pub.publish(pose)
        audio_pub.publish(audio)
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
''')


def test_head_pose_and_audio_cross_processes(rclpy_context):
    """A subscriber here receives exact field values published by another process."""
    publisher = subprocess.Popen([sys.executable, '-c', PUBLISHER, '20'])
    node = rclpy.create_node('dds_test_subscriber', context=rclpy_context)
    poses, audio = [], []
    node.create_subscription(HeadPose, 'head_pose', poses.append, 10)
    node.create_subscription(AudioData, 'audio', audio.append, 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 20.0
        while (not poses or not audio) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            assert publisher.poll() is None, 'the publisher process died'
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
        executor.shutdown()
        node.destroy_node()
    assert poses and audio, 'nothing arrived over DDS within 20 s'
    pose = poses[-1]
    assert (pose.roll, pose.pitch, pose.yaw) == (0.1, -0.25, 0.5)
    assert pose.header.frame_id == 'head' and pose.header.stamp.sec > 0
    assert pose.has_angular_velocity and pose.angular_velocity.y == 1.5
    assert list(audio[-1].data) == list(range(256))
