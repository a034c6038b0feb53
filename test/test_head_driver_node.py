"""Integration tests of the head driver node with real rclpy over real DDS."""

from contextlib import contextmanager
from functools import partial
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
HeadPose = pytest.importorskip('listener_head_ros.msg').HeadPose
JointState = pytest.importorskip('sensor_msgs.msg').JointState
JointTrajectory = pytest.importorskip('trajectory_msgs.msg').JointTrajectory
Clock = pytest.importorskip('rosgraph_msgs.msg').Clock

import polling  # noqa: E402
from listener_head_ros.head_profile import HeadProfileError, load_head_profile  # noqa: E402
from listener_head_ros.ros.head_driver_node import HeadDriverNode  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 15.0  # s; generous: DDS discovery on a loaded CI machine once took over 5 s
TOL = 1e-6


class Probe:
    """A test node that publishes head poses and records what the driver publishes."""

    def __init__(self, context, trajectory_topic: str, joint_states_topic: str = 'joint_states'):
        self.node = rclpy.create_node('head_driver_probe', context=context)
        self.pose_pub = self.node.create_publisher(HeadPose, 'head_pose', 10)
        self.clock_pub = self.node.create_publisher(Clock, '/clock', 10)
        self.states: list = []
        self.trajectories: list = []
        # Deep queues: a loaded machine that delays the probe must not drop a message.
        self.node.create_subscription(JointState, joint_states_topic, self.states.append, 1000)
        self.node.create_subscription(
            JointTrajectory, trajectory_topic, self.trajectories.append, 1000)

    def publish_pose(self, roll: float, pitch: float, yaw: float) -> None:
        """Publish one HeadPose."""
        msg = HeadPose()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.roll, msg.pitch, msg.yaw = roll, pitch, yaw
        self.pose_pub.publish(msg)


wait_for = partial(polling.wait_for, timeout=TIMEOUT)


def seconds(duration) -> float:
    """Return a builtin_interfaces/Duration in seconds."""
    return duration.sec + duration.nanosec * 1e-9


def close_to(values, expected) -> bool:
    """Return whether two sequences have equal length and match within TOL."""
    return len(values) == len(expected) and all(
        abs(a - b) <= TOL for a, b in zip(values, expected))


@contextmanager
def running_driver(context, probe_topic: str = 'head_controller/joint_trajectory',
                   **parameters):
    """Run a driver node (with parameter overrides) and a probe node in a spinning executor."""
    overrides = [Parameter(name, value=value) for name, value in parameters.items()]
    driver = HeadDriverNode(context=context, parameter_overrides=overrides)
    probe = Probe(context, probe_topic)
    executor = MultiThreadedExecutor(context=context)
    executor.add_node(driver)
    executor.add_node(probe.node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield driver, probe
    finally:
        executor.shutdown()
        thread.join(timeout=TIMEOUT)
        probe.node.destroy_node()
        driver.destroy_node()


def test_generic_head_tracks_clamps_and_returns_to_neutral(rclpy_context):
    """Poses become clamped joint commands on both outputs; without poses the head recentres."""
    profile = load_head_profile('generic_3dof')
    with running_driver(rclpy_context, hold_time=0.2, neutral_return_velocity=3.0) as (
            driver, probe):
        expected = [0.1, 0.45, -0.2]  # pitch 1.0 is clamped to the joint's 0.45 maximum
        assert wait_for(
            lambda: (probe.states and close_to(probe.states[-1].position, expected)
                     and probe.trajectories
                     and close_to(probe.trajectories[-1].points[0].positions, expected)),
            publish=lambda: probe.publish_pose(0.1, 1.0, -0.2)), 'the head did not follow'
        state, trajectory = probe.states[-1], probe.trajectories[-1]
        assert list(state.name) == profile.joint_names
        assert len(state.velocity) == 3 and state.header.stamp.sec > 0
        assert list(trajectory.joint_names) == profile.joint_names
        assert len(trajectory.points) == 1 and trajectory.header.stamp.sec > 0
        assert len(trajectory.points[0].velocities) == 3

        assert wait_for(lambda: close_to(probe.states[-1].position, [0.0, 0.0, 0.0]) and close_to(
            probe.trajectories[-1].points[0].positions, [0.0, 0.0, 0.0])), 'no return to neutral'
        # Once the controller has had the time to get there, a point gets the configured time.
        assert wait_for(lambda: seconds(probe.trajectories[-1].points[0].time_from_start) == 0.1)
        point = probe.trajectories[-1].points[0]
        assert (point.time_from_start.sec, point.time_from_start.nanosec) == (0, 100_000_000)
        for msg in probe.states:
            assert all(low - TOL <= q <= high + TOL for q, low, high in zip(
                msg.position, profile.lower, profile.upper))


@pytest.mark.parametrize('profile_name, parameters', [
    ('generic_3dof', {'control_rate': 5.0, 'trajectory_time_from_start': 0.1}),
    ('nao', {'trajectory_time_from_start': 0.001}),
])
def test_published_points_respect_max_velocity(rclpy_context, profile_name, parameters):
    """
    No point's step over its time_from_start exceeds a joint's max_velocity (issue 12.9).

    At 5 Hz a generic joint moves 0.3 rad a tick, and a NAO joint 0.04 rad at 50 Hz: points
    timed at 0.1 s and 1 ms would imply 3 and 40 rad/s against 1.5 and 2 rad/s.
    """
    profile = load_head_profile(profile_name)
    pose = np.array([0.0, 0.4, -0.6])
    expected = list(np.clip(profile.neutral + profile.signs * pose[profile.axis_indices],
                            profile.lower, profile.upper))
    with running_driver(rclpy_context, robot_profile=profile_name, **parameters) as (
            driver, probe):
        assert wait_for(
            lambda: probe.trajectories and close_to(
                probe.trajectories[-1].points[0].positions, expected),
            publish=lambda: probe.publish_pose(*pose)), 'the head did not follow'
        points = [trajectory.points[0] for trajectory in list(probe.trajectories)]
    shortest = parameters['trajectory_time_from_start']
    steps = [(np.abs(np.subtract(point.positions, before.positions)), seconds(
        point.time_from_start)) for before, point in zip(points, points[1:])]
    assert any(np.max(moved / profile.max_velocities) > shortest for moved, _ in steps), \
        'no step needed more than trajectory_time_from_start'
    for moved, time_from_start in steps:
        assert time_from_start >= shortest
        assert np.all(moved / time_from_start <= profile.max_velocities * (1 + 1e-6)), \
            f'{moved / time_from_start} rad/s: {moved} rad in {time_from_start} s'
    for point in points:
        assert np.all(np.abs(point.velocities) <= profile.max_velocities * (1 + 1e-6))


def test_tiago_profile_maps_inverted_pitch(rclpy_context):
    """The TIAGo tilt joint gets the negated pitch; trajectory_topic overrides the profile's."""
    with running_driver(rclpy_context, 'tiago/head_command', robot_profile='tiago',
                        trajectory_topic='tiago/head_command') as (driver, probe):
        assert wait_for(
            lambda: probe.trajectories and close_to(
                probe.trajectories[-1].points[0].positions, [0.5, -0.3]),
            publish=lambda: probe.publish_pose(0.2, 0.3, 0.5)), 'TIAGo head did not follow'
        assert list(probe.trajectories[-1].joint_names) == ['head_1_joint', 'head_2_joint']
        assert driver.commander.profile.name == 'tiago'


def test_stamps_follow_sim_time(rclpy_context):
    """With use_sim_time the output stamps come from /clock."""
    with running_driver(rclpy_context, use_sim_time=True) as (driver, probe):
        def publish_clock():
            msg = Clock()
            msg.clock.sec = 4242
            probe.clock_pub.publish(msg)
        assert wait_for(lambda: probe.states and probe.states[-1].header.stamp.sec == 4242,
                        publish=publish_clock), 'stamps do not follow /clock'


def test_unknown_profile_raises_a_clear_error(rclpy_context):
    """A bad robot_profile raises HeadProfileError that lists the available profiles."""
    with pytest.raises(HeadProfileError, match='generic_3dof, nao, tiago'):
        HeadDriverNode(context=rclpy_context,
                       parameter_overrides=[Parameter('robot_profile', value='no_such_robot')])


def test_parameters_are_described_with_ranges(rclpy_context):
    """Every parameter has a description; the numeric ones have a range."""
    driver = HeadDriverNode(context=rclpy_context)
    try:
        names = ['robot_profile', 'head_pose_topic', 'trajectory_topic', 'joint_states_topic',
                 'publish_trajectory', 'publish_joint_states', 'control_rate', 'hold_time',
                 'neutral_return_velocity', 'trajectory_time_from_start']
        for descriptor in driver.describe_parameters(names):
            assert descriptor.description, descriptor.name
        for name in names[6:]:
            assert driver.describe_parameter(name).floating_point_range, name
        assert driver.get_parameter('control_rate').value == 50.0
    finally:
        driver.destroy_node()


def run_executable(*ros_args: str) -> subprocess.Popen:
    """Start scripts/head_driver_node as its own process, this source tree first on the path."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')]))
    return subprocess.Popen(
        [sys.executable, str(ROOT / 'scripts' / 'head_driver_node'), '--ros-args', *ros_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_executable_exits_non_zero_on_a_bad_profile():
    """The executable reports a bad profile and exits with a non-zero status."""
    process = run_executable('-p', 'robot_profile:=no_such_robot')
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode != 0
    assert "unknown robot profile 'no_such_robot'" in stderr


def test_executable_publishes_and_stops_cleanly_on_ctrl_c(rclpy_context):
    """The executable publishes joint states over DDS and exits with 0 on SIGINT."""
    process = run_executable('-p', 'robot_profile:=nao', '-r', 'joint_states:=nao_states')
    node = rclpy.create_node('head_driver_exe_probe', context=rclpy_context)
    states = []
    node.create_subscription(JointState, 'nao_states', states.append, 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 2 * TIMEOUT
        while not states and time.monotonic() < deadline and process.poll() is None:
            executor.spin_once(timeout_sec=0.05)
        assert states and list(states[-1].name) == ['HeadYaw', 'HeadPitch']
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        executor.shutdown()
        node.destroy_node()


def test_a_failing_update_is_logged_and_the_driver_keeps_commanding(rclpy_context, capfd):
    """An exception in the control tick is caught, counted and logged; commands go on."""
    with running_driver(rclpy_context) as (driver, probe):
        original, failures = driver.commander.update, []

        def fail_three_times(*args):
            # Fault injection: no real input makes the commander raise (NaN poses are held).
            if len(failures) < 3:
                failures.append(1)
                raise RuntimeError('injected')
            return original(*args)
        driver._commander.update = fail_three_times
        assert wait_for(lambda: driver.callback_failures.counts().get('timer') == 3)
        published = len(probe.states)
        assert wait_for(lambda: len(probe.states) >= published + 5), 'the driver stopped'
    err = capfd.readouterr().err
    assert "the timer callback failed (1 time(s)): RuntimeError('injected')" in err, err
    assert 'Traceback' in err
