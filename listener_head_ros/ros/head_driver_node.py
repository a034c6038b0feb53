"""
Head driver node: listener head poses in, robot head joint commands out.

Subscribes to ``listener_head_ros/HeadPose`` and, at a fixed control rate, publishes the joint
positions of the configured robot head profile as a ``trajectory_msgs/JointTrajectory`` (for a
ros2_control JointTrajectoryController) and as a ``sensor_msgs/JointState`` (for
robot_state_publisher and RViz). The mapping, limits and the return to neutral when poses stop
live in :class:`listener_head_ros.head_profile.HeadJointCommander`.
"""

import contextlib
import signal
import sys
from typing import Callable, Iterator, Optional

import rclpy
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from listener_head_ros.head_profile import HeadJointCommander, HeadProfileError, load_head_profile
from listener_head_ros.msg import HeadPose
from listener_head_ros.ros.parameters import declare_parameters, ParameterSpec


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
    ('control_rate', 50.0, 'Rate of the joint command updates, in Hz.', (1.0, 1000.0)),
    ('hold_time', 0.5,
     'Seconds without a HeadPose after which the head leaves the last pose and returns to '
     'neutral.', (0.0, 60.0)),
    ('neutral_return_velocity', 0.5,
     "Joint speed, in rad/s, of the return to neutral (capped by each joint's max_velocity).",
     (0.01, 10.0)),
    ('trajectory_time_from_start', 0.1,
     'time_from_start of the single JointTrajectory point, in seconds.', (0.001, 10.0)),
)]


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
        control_rate = self.get_parameter('control_rate').value
        self._commander = HeadJointCommander(
            profile,
            hold_time=self.get_parameter('hold_time').value,
            neutral_return_velocity=self.get_parameter('neutral_return_velocity').value,
            max_step=max(0.25, 2.0 / control_rate))
        self._time_from_start = Duration(
            seconds=self.get_parameter('trajectory_time_from_start').value).to_msg()
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

        self.create_subscription(
            HeadPose, self.get_parameter('head_pose_topic').value, self._on_head_pose,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.create_timer(1.0 / control_rate, self._on_timer)
        self.get_logger().info(
            f'Driving the {profile.name!r} head ({", ".join(profile.joint_names)}) at '
            f'{control_rate:g} Hz')

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
            trajectory.points = [JointTrajectoryPoint(
                positions=positions, velocities=velocities,
                time_from_start=self._time_from_start)]
            self._trajectory_pub.publish(trajectory)
        if self._joint_state_pub is not None:
            state = JointState()
            state.header.stamp = stamp
            state.name = names
            state.position = positions
            state.velocity = velocities
            self._joint_state_pub.publish(state)


@contextlib.contextmanager
def stop_cleanly_on_signals() -> Iterator[None]:
    """
    Make the first SIGINT or SIGTERM stop the process cleanly, and any later one harmless.

    Enter it before ``rclpy.init``: rclpy's own handler, which chains to this one, shuts the
    context down, and the first signal raises KeyboardInterrupt in the main thread, which gets it
    out of any wait (a node with no timer, or on a stopped /clock, wakes up for nothing else).
    Later signals do nothing: Ctrl-C under launch sends two SIGINTs (the terminal's, to the
    process group, and launch's own), and the second one must neither break the clean-up nor kill
    the interpreter as it finalizes (launch: "process has died ... exit code -2"). On the way out,
    both signals are ignored for the rest of the process's life.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    interrupted = []

    def interrupt(signum, frame) -> None:
        if not interrupted:
            interrupted.append(signum)
            raise KeyboardInterrupt
    for signum in signals:
        signal.signal(signum, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        for signum in signals:
            signal.signal(signum, signal.SIG_IGN)


def run_node(args: Optional[list], make_node: Callable[[], Node], executor_type: type,
             program: str, start: Optional[Callable[[Node], None]] = None) -> int:
    """
    Run one node in its own process until SIGINT or SIGTERM; return the process exit code.

    ``make_node`` builds it once rclpy is initialised (with ``args``), ``start`` (if given) runs
    before it spins on an ``executor_type``. A parameter or robot profile the node refuses ends
    the process with 1; a signal ends it cleanly with 0 (see :func:`stop_cleanly_on_signals`).
    """
    node = executor = None
    with stop_cleanly_on_signals(), rclpy.init(args=args):
        try:
            node = make_node()
            executor = executor_type()
            executor.add_node(node)
            if start is not None:
                start(node)
            executor.spin()
        except HeadProfileError:
            return 1  # already logged by the node
        except ParameterException as error:
            print(f'{program}: invalid parameter: {error}', file=sys.stderr)
            return 1
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            if rclpy.ok():  # else the signal's shutdown came half-way (into a new wait set)
                raise
        finally:
            if executor is not None:
                executor.shutdown()
            if node is not None:
                node.destroy_node()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Run the head driver node until SIGINT or SIGTERM; return the process exit code."""
    return run_node(argv, HeadDriverNode, SingleThreadedExecutor, 'head_driver')
