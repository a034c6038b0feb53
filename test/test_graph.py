"""
The launch-equivalent listener graph, started without ``ros2 launch`` from the same YAML.

Real rclpy over real DDS: the graph is built by listener_head_ros.ros.graph from
config/listener.yaml, audio comes from another process on the remapped /audio/audio topic, and
a probe node records the poses and the TIAGo joint trajectories.
"""

from functools import partial
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
listener_msgs = pytest.importorskip('listener_head_ros.msg')
soundfile = pytest.importorskip('soundfile')
yaml = pytest.importorskip('yaml')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

import polling  # noqa: E402
from listener_head_ros.head_profile import load_head_profile  # noqa: E402
from listener_head_ros.ros.graph import (  # noqa: E402
    create_graph, GraphOptions, GraphRunner, parse_options)

HeadPose = listener_msgs.HeadPose
ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = ROOT / 'config' / 'listener.yaml'
GRAPH_EXECUTABLE = ROOT / 'install' / 'listener_head_ros' / 'lib' / 'listener_head_ros' / (
    'listener_graph')
SPEECH = ROOT / 'listener_head_ros' / 'data' / 'speech_en.wav'
TIMEOUT = 10.0


def flatten(parameters: dict, prefix: str = '') -> dict:
    """Return nested ros__parameters as {'dotted.name': value}."""
    flat = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def yaml_parameters(path: Path, node: str) -> dict:
    """Return the flattened parameters of ``node`` in a parameter file."""
    return flatten(yaml.safe_load(path.read_text())[f'/**/{node}']['ros__parameters'])


wait_for = partial(polling.wait_for, timeout=TIMEOUT)


def test_yaml_parameters_reach_both_nodes(rclpy_context):
    """Every parameter in config/listener.yaml reaches its node; the profile argument wins."""
    listener, driver = create_graph(GraphOptions(PARAMS_FILE, robot_profile='tiago'),
                                    context=rclpy_context)
    try:
        for node, name in ((listener, 'listener'), (driver, 'head_driver')):
            expected = yaml_parameters(PARAMS_FILE, name)
            assert len(expected) > 5
            for key, value in expected.items():
                if key == 'robot_profile':
                    value = 'tiago'
                actual = node.get_parameter(key).value
                assert (list(actual) if isinstance(value, list) else actual) == value, key
        assert listener.get_parameter('use_sim_time').value is False
        assert driver.commander.profile.name == 'tiago'
    finally:
        listener.destroy_node()
        driver.destroy_node()


def test_non_default_yaml_values_configure_the_engine(rclpy_context, tmp_path):
    """Edited YAML values (frame rate, limits, control rate) end up in the running objects."""
    text = PARAMS_FILE.read_text()
    for old, new in (('frame_rate: 30.0', 'frame_rate: 25.0'), ('yaw_max: 0.6', 'yaw_max: 0.5'),
                     ('max_angular_velocity: 1.5', 'max_angular_velocity: 0.9'),
                     ('control_rate: 50.0', 'control_rate: 40.0')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    params_file = tmp_path / 'listener.yaml'
    params_file.write_text(text)
    listener, driver = create_graph(GraphOptions(params_file, namespace='robot1'),
                                    context=rclpy_context)
    try:
        assert driver.get_parameter('control_rate').value == 40.0
        assert driver.commander.profile.name == 'generic_3dof'
        assert listener.get_fully_qualified_name() == '/robot1/listener'
        assert listener.trigger_configure() == TransitionCallbackReturn.SUCCESS
        config = listener.engine.config
        assert config.frame_rate == 25.0 and listener.engine.model.frame_rate == pytest.approx(25)
        assert config.limits.yaw_max == 0.5 and config.limits.max_angular_velocity == 0.9
    finally:
        listener.destroy_node()
        driver.destroy_node()


def test_missing_params_file_raises(rclpy_context, tmp_path):
    """create_graph names a missing parameter file."""
    with pytest.raises(FileNotFoundError, match='parameter file .*nowhere.yaml does not exist'):
        create_graph(GraphOptions(tmp_path / 'nowhere.yaml'), context=rclpy_context)


def test_parse_options_matches_the_launch_arguments():
    """The command line mirrors the launch file's arguments and defaults."""
    options = parse_options([])
    assert options.audio_topic == '/audio/audio' and options.robot_profile is None
    assert options.params_file.name == 'listener.yaml' and options.params_file.is_file()
    options = parse_options(['--namespace', 'r', '--audio-topic', '/mic', '--robot-profile',
                             'nao', '--use-sim-time', '--params-file', '/x.yaml'])
    assert (options.namespace, options.audio_topic, options.robot_profile) == ('r', '/mic', 'nao')
    assert options.use_sim_time and options.params_file == Path('/x.yaml')


class Probe:
    """Record head poses, TIAGo trajectories and listener diagnostics over DDS."""

    def __init__(self, context, trajectory_topic: str):
        self.node = rclpy.create_node('graph_probe', context=context)
        self.poses, self.trajectories, self.diagnostics = [], [], []
        self.node.create_subscription(HeadPose, 'head_pose', self.poses.append, 100)
        self.node.create_subscription(
            JointTrajectory, trajectory_topic, self.trajectories.append, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(': listener'):
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self.executor.shutdown()
        self.thread.join(timeout=TIMEOUT)
        self.node.destroy_node()


def test_graph_runs_with_remapped_audio_and_drives_tiago(rclpy_context, tmp_path):
    """Audio on /audio/audio from another process moves the TIAGo head through the graph."""
    samples, rate = soundfile.read(SPEECH, dtype='float32')
    wav = tmp_path / 'speech.wav'
    soundfile.write(wav, samples[:int(2.5 * rate)], rate)
    profile = load_head_profile('tiago')
    listener, driver = create_graph(GraphOptions(PARAMS_FILE, robot_profile='tiago'),
                                    context=rclpy_context)
    runner = GraphRunner(listener, driver, context=rclpy_context)
    probe = Probe(rclpy_context, profile.trajectory_topic)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')]))
    process = None
    try:
        runner.start()
        assert '/audio/audio' in {s.topic_name for s in listener.subscriptions}
        assert '/audio/audio_info' in {s.topic_name for s in listener.subscriptions}
        process = subprocess.Popen(
            [sys.executable, '-m', 'listener_head_ros.ros.audio_file_publisher', str(wav),
             '--loop', '--ros-args', '-r', 'audio:=/audio/audio',
             '-r', 'audio_info:=/audio/audio_info'],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: listener.engine.frames_stepped > 20
                        or process.poll() is not None), 'no audio reached the graph'
        assert process.poll() is None, process.communicate()[1]
        assert wait_for(lambda: probe.diagnostics
                        and int(probe.diagnostics[-1]['frames processed']) > 20)
        # The latched AudioInfo may reach the node after the first audio: wait for the report.
        assert wait_for(lambda: probe.diagnostics[-1]['input format']
                        == 'S16LE 16000 Hz x1 (wave)'), probe.diagnostics[-1]['input format']
        # the listener stays at neutral until its first cue: wait for movement, then check it
        assert wait_for(lambda: len(probe.poses) > 30 and np.ptp(
            [pose.pitch for pose in list(probe.poses)]) > 1e-3), len(probe.poses)
        trajectories = list(probe.trajectories)
        assert trajectories and {tuple(t.joint_names) for t in trajectories} == {
            ('head_1_joint', 'head_2_joint')}
        positions = np.array([t.points[0].positions for t in trajectories])
        assert np.ptp(positions[:, 1]) > 1e-3, 'the tilt joint did not move'
        assert np.all(positions >= np.array(profile.lower) - 1e-9)
        assert np.all(positions <= np.array(profile.upper) + 1e-9)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.communicate()
        probe.close()
        runner.stop()
    assert not any(thread.is_alive() for thread in runner.spinner._threads), 'still spinning'


def test_listener_graph_executable_rejects_bad_params_files(tmp_path):
    """The installed listener_graph exits with 1 and a one-line reason for bad parameter files."""
    wrong_type = tmp_path / 'wrong_type.yaml'
    wrong_type.write_text(PARAMS_FILE.read_text().replace('frame_rate: 30.0', 'frame_rate: fast'))
    cases = {
        tmp_path / 'missing.yaml': 'listener_graph: parameter file {} does not exist',
        wrong_type: "listener_graph: Trying to set parameter 'frame_rate' to 'fast'",
    }
    processes = {path: subprocess.Popen(
        [str(GRAPH_EXECUTABLE), '--params-file', str(path)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for path in cases}
    for path, process in processes.items():
        try:
            _, stderr = process.communicate(timeout=3 * TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 1, stderr
        assert cases[path].format(path) in stderr
        assert 'Traceback' not in stderr


def test_fifty_start_stop_cycles_exit_cleanly(tmp_path):
    """Fifty graph processes get SIGINT (one in five while starting): rc 0, no traceback."""
    cycles = 50
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name('graph_cycles.py')), str(cycles),
         str(tmp_path)], capture_output=True, text=True, timeout=600,
        env={**os.environ, 'RCUTILS_COLORIZED_OUTPUT': '0'})
    assert result.returncode == 0, result.stderr
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(runs) == cycles
    bad = [run for run in runs if run['returncode'] != 0 or any(
        word in run['log'] for word in ('Traceback', 'xception', 'terminate called', '[ERROR]',
                                        'Segmentation', 'never retrieved'))]
    assert not bad, json.dumps(bad[:3], indent=1)
    assert sum(run['started'] for run in runs) == cycles - cycles // 5
