"""
``listener.launch.py`` with every argument changed: each one takes effect.

A launch_testing test, run by launch_testing's runner from
``test_every_launch_argument_takes_effect`` (see test_launch_graph.py for why not by its pytest
plugin). Arguments:

- ``namespace:=robot``: the nodes are ``/robot/listener`` and ``/robot/head_driver``;
- ``robot_profile:=tiago``: the joint states name TIAGo's two head joints;
- ``audio_topic:=/mic/audio``: audio published there reaches the listener (its diagnostics
  count it);
- ``params_file:=<a file of the test's own>``: the listener's ``frame_id`` and the driver's
  ``joint_states_topic`` come from it;
- ``model:=<a small causal_gru_mdn checkpoint>``: the listener runs that model (diagnostics);
- ``use_sim_time:=true``: the poses and joint states are stamped with the test's /clock, which
  starts at 1,000,000 s, and without /clock the nodes would not tick at all.
"""

from pathlib import Path
import sys
import time
from typing import Dict, Optional
import unittest

import pytest

pytest.importorskip('launch_ros', reason='launch_ros is not installed (no ../shared/ros2-launch)')
pytest.importorskip('launch_testing', reason='launch_testing is not installed')

from audio_common_msgs.msg import AudioData  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
import launch  # noqa: E402
import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from polling import wait_for  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from test_launch_graph import (  # noqa: E402
    assert_no_errors, include_listener_launch, LaunchLog, Observer, output_text, run_launch_tests,
    wait_for_nodes)
import yaml  # noqa: E402

from listener_head_ros.models.learned import save_learned_checkpoint  # noqa: E402
from listener_head_ros.models.networks import CausalGRUListener, GRUListenerConfig  # noqa: E402
from listener_head_ros.msg import HeadPose  # noqa: E402

SIM_START = 1_000_000  # s: far from the wall clock's 1.7e9 s
NAMESPACE = '/robot'
FRAME_ID = 'launch_test_head'
TIAGO_JOINTS = ['head_1_joint', 'head_2_joint']  # config/robots/tiago.yaml
WORKDIR: Optional[Path] = None  # set by the pytest function before the launch
LAUNCH_LOG: Optional[LaunchLog] = None


def launch_arguments(workdir: Path) -> Dict[str, str]:
    """Write the parameter file and the checkpoint; return every launch argument, changed."""
    params = workdir / 'params.yaml'
    params.write_text(yaml.safe_dump({
        '/**/listener': {'ros__parameters': {'frame_id': FRAME_ID}},
        '/**/head_driver': {'ros__parameters': {'joint_states_topic': 'head_joint_states'}},
    }))
    network = CausalGRUListener(GRUListenerConfig(
        conv_channels=4, conv_kernel=3, hidden_size=8, num_layers=1, num_mixtures=2))
    checkpoint = save_learned_checkpoint(workdir / 'checkpoint', network)
    return {'namespace': NAMESPACE.strip('/'), 'robot_profile': 'tiago',
            'audio_topic': '/mic/audio', 'audio_info_topic': '/mic/audio_info',
            'params_file': str(params), 'model': str(checkpoint), 'device': 'cpu',
            'use_sim_time': 'true'}


def generate_test_description():
    """Include listener.launch.py with every argument changed."""
    global LAUNCH_LOG
    LAUNCH_LOG = LaunchLog()
    return launch.LaunchDescription([include_listener_launch(launch_arguments(WORKDIR)),
                                     launch_testing.actions.ReadyToTest()])


def _in_sim_time(stamp: Time) -> bool:
    return SIM_START <= stamp.sec < SIM_START + 3600


class TestLaunchArguments(unittest.TestCase):
    """While the launch runs, with the test publishing /clock."""

    __test__ = False  # run by launch_testing, from test_every_launch_argument_takes_effect

    @classmethod
    def setUpClass(cls) -> None:
        """Publish /clock from SIM_START at the wall clock's pace; record the outputs."""
        cls.observer = node = Observer()
        clock = node.node.create_publisher(Clock, '/clock', 10)
        start = time.monotonic()

        def tick() -> None:
            elapsed = time.monotonic() - start
            clock.publish(Clock(clock=Time(sec=SIM_START + int(elapsed),
                                           nanosec=int(elapsed % 1.0 * 1e9))))
        node.node.create_timer(0.01, tick)
        cls.poses = node.record(HeadPose, f'{NAMESPACE}/head_pose')
        cls.joints = node.record(JointState, f'{NAMESPACE}/head_joint_states')
        cls.diagnostics = node.record(DiagnosticArray, '/diagnostics')
        cls.audio = node.node.create_publisher(AudioData, '/mic/audio', 10)

    @classmethod
    def tearDownClass(cls) -> None:
        """Stop watching."""
        cls.observer.close()

    def _listener_diagnostics(self) -> Dict[str, str]:
        """Return the key/values of the newest diagnostics of /robot/listener, {} if none."""
        array = self.observer.latest(self.diagnostics)
        for status in (array.status if array else []):
            if status.hardware_id == f'{NAMESPACE}/listener':
                return {kv.key: kv.value for kv in status.values}
        return {}

    def test_namespace_puts_both_nodes_in_it(self) -> None:
        """The nodes come up as /robot/listener and /robot/head_driver; the listener activates."""
        names = {f'{NAMESPACE}/listener', f'{NAMESPACE}/head_driver'}
        self.assertLessEqual(names, wait_for_nodes(self.observer, names))
        self.assertEqual(self.observer.wait_for_state(f'{NAMESPACE}/listener', 'active'),
                         'active')

    def test_model_runs_the_checkpoint(self) -> None:
        """The listener's diagnostics name the checkpoint's network, not the embedded model."""
        self.assertTrue(wait_for(lambda: self._listener_diagnostics(), timeout=90.0))
        self.assertEqual(self._listener_diagnostics()['model'], 'causal_gru_mdn')

    def test_audio_topic_reaches_the_listener(self) -> None:
        """Audio published on /mic/audio is counted by the listener."""
        self.assertEqual(self.observer.wait_for_state(f'{NAMESPACE}/listener', 'active'),
                         'active')
        silence = AudioData(data=bytes(1024))  # 512 S16LE samples

        def counted() -> bool:
            return int(self._listener_diagnostics().get('messages', '0')) > 0
        self.assertTrue(wait_for(counted, publish=lambda: self.audio.publish(silence),
                                 timeout=30.0), self._listener_diagnostics())

    def test_params_file_and_sim_time_shape_the_head_pose(self) -> None:
        """head_pose carries the parameter file's frame_id and a stamp from the test's /clock."""
        self.assertTrue(wait_for(lambda: self.observer.count(self.poses) > 0, timeout=90.0))
        pose = self.observer.latest(self.poses)
        self.assertEqual(pose.header.frame_id, FRAME_ID)
        self.assertTrue(_in_sim_time(pose.header.stamp), pose.header.stamp)

    def test_robot_profile_names_the_joints(self) -> None:
        """The driver commands TIAGo's head joints, on the parameter file's topic, in sim time."""
        self.assertTrue(wait_for(lambda: self.observer.count(self.joints) > 0, timeout=90.0))
        state = self.observer.latest(self.joints)
        self.assertEqual(list(state.name), TIAGO_JOINTS)
        self.assertTrue(_in_sim_time(state.header.stamp), state.header.stamp)


@launch_testing.post_shutdown_test()
class TestLaunchArgumentsShutdown(unittest.TestCase):
    """After launch's shutdown."""

    __test__ = False  # run by launch_testing, from test_every_launch_argument_takes_effect

    def test_every_process_exits_with_0(self, proc_info, proc_output) -> None:
        """Both processes exited with 0 and nothing logged an error."""
        launch_testing.asserts.assertExitCodes(proc_info)
        assert_no_errors(output_text(proc_output), LAUNCH_LOG.text())


def test_every_launch_argument_takes_effect(tmp_path, monkeypatch):
    """Run the launch test above with launch_testing's runner."""
    module = sys.modules[__name__]
    monkeypatch.setattr(module, 'WORKDIR', tmp_path)
    run_launch_tests(module)
