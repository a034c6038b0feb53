"""
``listener.launch.py`` run by the real ``launch`` / ``launch_ros`` and ``launch_testing``.

The launch test is a launch_testing test description (``generate_test_description`` and the
unittest classes below), run by launch_testing's own runner from ``test_default_launch``:
launch_testing 3.7.1's and launch_pytest 3.7.1's pytest plugins do not load under pytest 9 (see
scripts/env.sh), so this one function stands in for the plugin's glue, and the ``__test__ = False``
classes are left to launch_testing.

The installed launch file starts the real executables over real DDS (the test's own domain, see
conftest.py), with its default arguments; a node of the test's own watches them: both nodes are
up, ``/listener`` is ``active`` (it configures and activates itself: the launch file sends no
transition), ``head_pose`` arrives at the frame rate, nothing is logged at ERROR, by the nodes or
by launch itself; after launch's shutdown (SIGINT to each process) every process exited with 0.

The helpers here are shared with test_launch_arguments.py and test_cli.py. Skips where launch_ros
is not installed (it is on every development machine and in CI: scripts/setup_env.sh installs it
from ../shared/ros2-launch).
"""

from pathlib import Path
import sys
import threading
import time
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Set
import unittest

import pytest

pytest.importorskip('launch_ros', reason='launch_ros is not installed (no ../shared/ros2-launch)')
pytest.importorskip('launch_testing', reason='launch_testing is not installed')

from ament_index_python.packages import get_package_share_directory  # noqa: E402
import launch  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch.logging  # noqa: E402
import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from launch_testing.loader import LoadTestsFromPythonModule  # noqa: E402
from launch_testing.test_runner import LaunchTestRunner  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from polling import wait_for  # noqa: E402
import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from listener_head_ros.msg import HeadPose  # noqa: E402

FRAME_RATE = 30.0  # config/listener.yaml
# Generous: the nodes import torch and build the model on a shared 2-core machine.
STARTUP_TIMEOUT = 90.0


def launch_file() -> Path:
    """Return the installed listener.launch.py."""
    return Path(get_package_share_directory('listener_head_ros')) / 'launch' / 'listener.launch.py'


def include_listener_launch(arguments: Dict[str, str]) -> IncludeLaunchDescription:
    """Return an action that includes the installed listener.launch.py with ``arguments``."""
    return IncludeLaunchDescription(PythonLaunchDescriptionSource(str(launch_file())),
                                    launch_arguments=sorted(arguments.items()))


def run_launch_tests(module: ModuleType, launch_arguments: Sequence[str] = ()) -> None:
    """Run ``module``'s launch_testing description and tests; fail with what failed."""
    runner = LaunchTestRunner(LoadTestsFromPythonModule(module, name=module.__name__),
                              launch_file_arguments=list(launch_arguments))
    runner.validate()
    results = runner.run()
    failures = [f'{case.id()}:\n{text}' for result in results.values()
                for case, text in result.errors + result.failures]
    assert all(result.wasSuccessful() for result in results.values()), (
        '\n'.join(failures) or f'the launch test did not run: {results}')


def output_text(proc_output) -> str:
    """Return all that launch_testing recorded of the processes' output, one line per line."""
    return '\n'.join(f'[{io.process_name}] {line}' for io in proc_output
                     for line in io.text.decode(errors='replace').splitlines())


class LaunchLog:
    """The lines that launch itself logs (``launch.log``) from now on."""

    def __init__(self) -> None:
        self.path = Path(launch.logging.launch_config.log_dir) / 'launch.log'
        self._start = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        """Return what launch logged since this object was made."""
        if not self.path.exists():
            return ''
        with open(self.path, 'rb') as log:
            log.seek(self._start)
            return log.read().decode(errors='replace')


class Observer:
    """A node of the test's own, spinning in a thread: it watches the graph and the topics."""

    def __init__(self, name: str = 'launch_test_observer') -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self.lock = threading.Lock()  # guards the record() lists
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop spinning and shut the node and its context down."""
        self._executor.shutdown()
        self._thread.join(timeout=10.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def node_names(self) -> Set[str]:
        """Return the fully qualified names of the nodes on the graph, as discovered so far."""
        return {f'{ns.rstrip("/")}/{name}'
                for name, ns in self.node.get_node_names_and_namespaces()}

    def record(self, msg_type, topic: str, qos=10) -> List:
        """Subscribe to ``topic``; return the list that every message received is appended to."""
        received: List = []

        def append(msg) -> None:
            with self.lock:
                received.append(msg)
        self.node.create_subscription(msg_type, topic, append, qos)
        return received

    def count(self, received: List) -> int:
        """Return how many messages a :meth:`record` list holds now."""
        with self.lock:
            return len(received)

    def latest(self, received: List):
        """Return the last message of a :meth:`record` list, None if there is none yet."""
        with self.lock:
            return received[-1] if received else None

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        """Call service ``name``; return its response, None if it did not answer in time."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                return None
            future = client.call_async(request)
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            return future.result() if done.wait(timeout) else None
        finally:
            self.node.destroy_client(client)

    def lifecycle_state(self, node: str, timeout: float = 10.0) -> Optional[str]:
        """Return the lifecycle state label of ``node`` (``'active'``, ...), None if no answer."""
        response = self.call(GetState, f'{node}/get_state', GetState.Request(), timeout)
        return response.current_state.label if response is not None else None

    def change_state(self, node: str, transition_id: int, timeout: float = 30.0) -> bool:
        """Ask ``node`` for a lifecycle transition; return whether it succeeded."""
        request = ChangeState.Request()
        request.transition.id = transition_id
        response = self.call(ChangeState, f'{node}/change_state', request, timeout)
        return bool(response is not None and response.success)

    def wait_for_state(self, node: str, state: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """Wait until ``node`` reports ``state``; return the last state seen."""
        seen = [None]

        def reached() -> bool:
            seen[0] = self.lifecycle_state(node, timeout=2.0)
            return seen[0] == state
        wait_for(reached, timeout=timeout)
        return seen[0]

    def rate(self, received: List, window: float) -> float:
        """Return the messages per second that arrive over about ``window`` wall seconds."""
        start_count, start = self.count(received), time.monotonic()
        time.sleep(window)
        return (self.count(received) - start_count) / (time.monotonic() - start)


def assert_no_errors(*logs: str) -> None:
    """Fail on any ERROR/FATAL line, Python traceback or launch 'process has died'."""
    bad = [line for log in logs for line in log.splitlines()
           if any(mark in line for mark in ('[ERROR]', '[FATAL]', 'Traceback', 'has died'))]
    assert not bad, 'unexpected errors:\n' + '\n'.join(bad)


def wait_for_nodes(observer: Observer, names: Set[str],
                   timeout: float = STARTUP_TIMEOUT) -> Set[str]:
    """Wait until every name in ``names`` is on the graph; return the names seen last."""
    wait_for(lambda: names <= observer.node_names(), timeout=timeout)
    return observer.node_names()


# The launch test ----------------------------------------------------------------------------

LAUNCH_LOG: Optional['LaunchLog'] = None


def generate_test_description():
    """``ros2 launch listener_head_ros listener.launch.py`` with no arguments."""
    global LAUNCH_LOG
    LAUNCH_LOG = LaunchLog()
    return launch.LaunchDescription([include_listener_launch({}),
                                     launch_testing.actions.ReadyToTest()])


class TestDefaultLaunch(unittest.TestCase):
    """While the launch runs."""

    __test__ = False  # run by launch_testing, from test_default_launch

    @classmethod
    def setUpClass(cls) -> None:
        """Start watching the graph and head_pose."""
        cls.observer = Observer()
        cls.poses = cls.observer.record(HeadPose, '/head_pose')

    @classmethod
    def tearDownClass(cls) -> None:
        """Stop watching."""
        cls.observer.close()

    def test_both_nodes_come_up_and_the_listener_activates_itself(self) -> None:
        """/listener and /head_driver are on the graph and /listener reaches 'active' alone."""
        names = wait_for_nodes(self.observer, {'/listener', '/head_driver'})
        self.assertLessEqual({'/listener', '/head_driver'}, names)
        self.assertEqual(self.observer.wait_for_state('/listener', 'active'), 'active')

    def test_head_pose_arrives_at_the_frame_rate(self) -> None:
        """head_pose comes at about frame_rate (30 Hz): counted over a window, generous bounds."""
        self.assertEqual(self.observer.wait_for_state('/listener', 'active'), 'active')
        self.assertTrue(wait_for(lambda: self.observer.count(self.poses) > 0, timeout=30.0),
                        'no head_pose received')
        rate = self.observer.rate(self.poses, window=2.0)
        self.assertTrue(0.5 * FRAME_RATE <= rate <= 1.3 * FRAME_RATE, f'{rate:.1f} poses/s')
        self.assertEqual(self.observer.latest(self.poses).header.frame_id, 'head')

    def test_a_normal_start_logs_no_error(self, proc_output) -> None:
        """Neither the nodes nor launch log an ERROR (e.g. a transition sent twice) on start."""
        self.assertEqual(self.observer.wait_for_state('/listener', 'active'), 'active')
        proc_output.assertWaitFor('active: listening', timeout=10.0, stream='stderr')
        assert_no_errors(output_text(proc_output), LAUNCH_LOG.text())


@launch_testing.post_shutdown_test()
class TestDefaultLaunchShutdown(unittest.TestCase):
    """After launch's shutdown: SIGINT to each process, as on Ctrl-C."""

    __test__ = False  # run by launch_testing, from test_default_launch

    def test_every_process_exits_with_0(self, proc_info, proc_output) -> None:
        """Both processes exited cleanly with 0, and nothing logged an error on the way."""
        launch_testing.asserts.assertExitCodes(proc_info)
        self.assertEqual(len(proc_info.process_names()), 2)
        assert_no_errors(output_text(proc_output), LAUNCH_LOG.text())


def test_default_launch():
    """Run the launch test above with launch_testing's runner."""
    run_launch_tests(sys.modules[__name__])
