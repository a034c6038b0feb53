"""
Head driver node: listener head poses in, robot head joint commands out.

Subscribes to ``listener_head_ros/HeadPose`` and, at a fixed control rate, publishes the joint
positions of the configured robot head profile as a ``trajectory_msgs/JointTrajectory`` (for a
ros2_control JointTrajectoryController) and as a ``sensor_msgs/JointState`` (for
robot_state_publisher and RViz). The mapping, limits, the return to neutral when poses stop and
each point's time_from_start (long enough that no joint exceeds its max_velocity) live in
:class:`listener_head_ros.head_profile.HeadJointCommander`.
"""

import math
from typing import Optional

from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from listener_head_ros.head_profile import (
    HeadCommandSettings, HeadJointCommander, HeadProfileError, load_head_profile)
from listener_head_ros.msg import HeadPose
from listener_head_ros.ros.callbacks import CallbackFailures
from listener_head_ros.ros.parameters import declare_parameters, ParameterSpec
from listener_head_ros.ros.process import run_node
from listener_head_ros.schema import setting_specs


COMMAND_SETTINGS = setting_specs(HeadCommandSettings)
PARAMETERS = [ParameterSpec(*spec) for spec in (
    ('robot_profile', 'generic_3dof',
     'Robot head profile: a name from config/robots (generic_3dof, tiago, nao) or the path of a '
     'profile YAML file.'),
    ('head_pose_topic', 'head_pose', 'Topic of the incoming listener_head_ros/HeadPose messages.'),
    ('trajectory_topic', '',
     "JointTrajectory output topic; empty uses the robot profile's trajectory_topic."),
    ('joint_states_topic', 'joint_states', 'JointState output topic.'),
    ('publish_trajectory', True,
     'Publish trajectory_msgs/JointTrajectory commands for a trajectory controller.'),
    ('publish_joint_states', True,
     'Publish sensor_msgs/JointState (for robot_state_publisher and RViz); turn off when the '
     'robot publishes its own joint states.'),
)] + COMMAND_SETTINGS


class HeadDriverNode(Node):
    """Drive a robot head from HeadPose messages, within the joint limits of a robot profile."""

    def __init__(self, **kwargs) -> None:
        super().__init__('head_driver', **kwargs)
        declare_parameters(self, PARAMETERS, read_only=True)

        profile_name = self.get_parameter('robot_profile').value
        try:
            profile = load_head_profile(profile_name)
        except HeadProfileError as error:
            self.get_logger().error(f'Cannot load the robot head profile: {error}')
            raise
        settings = HeadCommandSettings(**{
            spec.name: self.get_parameter(spec.name).value for spec in COMMAND_SETTINGS})
        self._commander = HeadJointCommander(profile, settings)
        self._pending_pose: Optional[tuple[float, float, float]] = None

        self._trajectory_pub = None
        if self.get_parameter('publish_trajectory').value:
            topic = self.get_parameter('trajectory_topic').value or profile.trajectory_topic
            self._trajectory_pub = self.create_publisher(JointTrajectory, topic, 10)
        self._joint_state_pub = None
        if self.get_parameter('publish_joint_states').value:
            self._joint_state_pub = self.create_publisher(
                JointState, self.get_parameter('joint_states_topic').value, 10)
        if self._trajectory_pub is None and self._joint_state_pub is None:
            self.get_logger().warning(
                'publish_trajectory and publish_joint_states are both false: nothing is published')

        self.callback_failures = CallbackFailures(self.get_logger())
        failures = self.callback_failures
        self.create_subscription(
            HeadPose, self.get_parameter('head_pose_topic').value,
            failures.guard('head_pose', self._on_head_pose),
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.create_timer(1.0 / settings.control_rate, failures.guard('timer', self._on_timer))
        self.get_logger().info(
            f'Driving the {profile.name!r} head ({", ".join(profile.joint_names)}) at '
            f'{settings.control_rate:g} Hz')

    @property
    def commander(self) -> HeadJointCommander:
        """Return the joint commander, which holds the profile and the current joint command."""
        return self._commander

    def _on_head_pose(self, msg: HeadPose) -> None:
        """Keep the latest pose for the next control tick."""
        self._pending_pose = (msg.roll, msg.pitch, msg.yaw)

    def _on_timer(self) -> None:
        """Advance the commander and publish the joint command and state."""
        pose, self._pending_pose = self._pending_pose, None
        now = self.get_clock().now()
        positions = self._commander.update(pose, now.nanoseconds * 1e-9).tolist()
        velocities = self._commander.velocities.tolist()
        stamp = now.to_msg()
        names = self._commander.joint_names
        if self._trajectory_pub is not None:
            trajectory = JointTrajectory()
            trajectory.header.stamp = stamp
            trajectory.joint_names = names
            # Rounded up to whole nanoseconds: never less time than the commander gives.
            time_from_start = Duration(
                nanoseconds=math.ceil(self._commander.time_from_start * 1e9)).to_msg()
            trajectory.points = [JointTrajectoryPoint(
                positions=positions, velocities=velocities, time_from_start=time_from_start)]
            self._trajectory_pub.publish(trajectory)
        if self._joint_state_pub is not None:
            state = JointState()
            state.header.stamp = stamp
            state.name = names
            state.position = positions
            state.velocity = velocities
            self._joint_state_pub.publish(state)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the head driver node until SIGINT or SIGTERM; return the process exit code."""
    return run_node(argv, HeadDriverNode, SingleThreadedExecutor, 'head_driver',
                    logged_refusals=(HeadProfileError,))
