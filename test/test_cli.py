"""
The real ``ros2`` command against a real ``ros2 launch``, as a user types them in a terminal.

One ``ros2 launch listener_head_ros listener.launch.py model:=<a missing checkpoint>`` runs for
the whole module (a subprocess in a session of its own, as a terminal would start it), and the
tests below drive it in file order, one step of the session each:

1. the configure fails, and the node stays alive and ``unconfigured`` (``ros2 lifecycle get``);
2. ``ros2 param describe`` shows the declared parameters;
3. ``ros2 param set`` fixes ``model``, then ``ros2 lifecycle set ... configure`` configures it,
   and once activated head poses flow;
4. ``ros2 lifecycle set ... deactivate`` leaves it ``inactive``, with no more poses;
5. Ctrl-C (SIGINT to the process group, which also makes launch send its own SIGINT): launch and
   both nodes exit cleanly with 0, and nothing is left behind: no process, no node on the graph.

Every ``ros2`` call uses ``--no-daemon``: the daemon can answer from a stale graph (the shared
README's snag); it is stopped at the end in case anything started one.
"""

import os
from pathlib import Path
import signal
import subprocess
import time
from typing import Callable, List, Optional

import pytest

pytest.importorskip('launch_ros', reason='launch_ros is not installed (no ../shared/ros2-launch)')
pytest.importorskip('ros2cli', reason='the ros2 command is not installed')
psutil = pytest.importorskip('psutil')

from lifecycle_msgs.msg import Transition  # noqa: E402
from polling import wait_for  # noqa: E402
from test_launch_graph import assert_no_errors, Observer, STARTUP_TIMEOUT  # noqa: E402

from listener_head_ros.msg import HeadPose  # noqa: E402

NODE = '/listener'
NOT_REACHED = ('Node not found', 'not available', 'not found')
CALL_TIMEOUT = 20.0  # s for one ros2 call; a hung one is retried


def ros2(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``ros2 <args> --no-daemon``; return its result."""
    return subprocess.run(['ros2', *args, '--no-daemon'], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def ros2_until_reached(*args: str, timeout: float = STARTUP_TIMEOUT,
                       done: Optional[Callable[[], bool]] = None) -> str:
    """
    Run ``ros2 <args>``, again while it has not yet discovered the node; return its output.

    A call that hangs (discovery without the daemon sometimes does) counts as a miss; ``done``,
    when given, says whether a missed call took effect all the same, which ends the retries.
    """
    result = [None]

    def reached() -> bool:
        try:
            result[0] = ros2(*args, timeout=CALL_TIMEOUT)
        except subprocess.TimeoutExpired as expired:
            result[0] = subprocess.CompletedProcess(expired.cmd, -1, '', 'timed out')
            return done is not None and done()
        missed = any(mark in result[0].stdout + result[0].stderr for mark in NOT_REACHED)
        return not missed or (done is not None and done())
    wait_for(reached, timeout=timeout)
    return result[0].stdout + result[0].stderr


def _alive(process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class LaunchSession:
    """``ros2 launch`` in a session of its own, its output in a file, and an observer node."""

    def __init__(self, arguments: List[str], log: Path) -> None:
        self.observer = Observer('cli_test_observer')
        self.poses = self.observer.record(HeadPose, '/head_pose')
        self.log = log
        with open(log, 'wb') as out:
            self.process = subprocess.Popen(
                ['ros2', 'launch', 'listener_head_ros', 'listener.launch.py', *arguments],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def output(self) -> str:
        """Return everything launch and the nodes printed so far."""
        return self.log.read_text(errors='replace')

    def interrupt(self) -> None:
        """Press Ctrl-C: SIGINT to the whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def close(self) -> None:
        """Stop whatever is still running, and the observer."""
        if self.process.poll() is None:
            self.interrupt()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.observer.close()


@pytest.fixture(scope='module')
def missing_checkpoint(tmp_path_factory) -> Path:
    """Return a checkpoint path that does not exist."""
    return tmp_path_factory.mktemp('cli') / 'no_such_checkpoint'


@pytest.fixture(scope='module')
def session(missing_checkpoint, tmp_path_factory):
    """Yield ``ros2 launch ... model:=<missing checkpoint>``, running."""
    launched = LaunchSession([f'model:={missing_checkpoint}'],
                             tmp_path_factory.mktemp('cli_log') / 'launch.txt')
    yield launched
    launched.close()
    subprocess.run(['ros2', 'daemon', 'stop'], capture_output=True, timeout=60)


def test_a_failed_configure_leaves_a_live_unconfigured_node(session, missing_checkpoint):
    """model:=<missing> fails configure with a clear log; the node lives on, unconfigured."""
    assert wait_for(lambda: 'configure failed' in session.output(), timeout=STARTUP_TIMEOUT), (
        session.output())
    failure = next(line for line in session.output().splitlines() if 'configure failed' in line)
    assert str(missing_checkpoint) in failure and 'ros2 lifecycle set' in failure
    assert ros2_until_reached('lifecycle', 'get', NODE).startswith('unconfigured'), (
        session.output())
    assert session.process.poll() is None
    assert 'process has died' not in session.output()


def test_param_describe_shows_the_declared_parameters(session):
    """ros2 param describe gives each parameter's type, description and range."""
    text = ros2_until_reached('param', 'describe', NODE, 'model', 'frame_rate')
    assert 'Parameter name: model' in text and 'Type: string' in text
    assert "'prosodic' (embedded default) or a checkpoint directory" in text
    assert 'Parameter name: frame_rate' in text and 'Type: double' in text
    assert 'Min value: 1.0' in text and 'Max value: 200.0' in text


def test_fixing_the_parameter_and_configuring_again_recovers(session):
    """ros2 param set model, then ros2 lifecycle set configure: the node configures, and runs."""
    assert 'Set parameter successful' in ros2_until_reached(
        'param', 'set', NODE, 'model', 'prosodic')
    assert 'Transitioning successful' in ros2_until_reached('lifecycle', 'set', NODE, 'configure')
    assert session.observer.lifecycle_state(NODE) == 'inactive'
    assert session.observer.change_state(NODE, Transition.TRANSITION_ACTIVATE)
    assert session.observer.lifecycle_state(NODE) == 'active'
    assert wait_for(lambda: session.observer.count(session.poses) > 0, timeout=30.0)


def test_deactivate_stays_inactive(session):
    """After ros2 lifecycle set deactivate the node stays inactive and publishes no pose."""
    assert session.observer.lifecycle_state(NODE) == 'active'
    answer = ros2_until_reached(
        'lifecycle', 'set', NODE, 'deactivate',
        done=lambda: session.observer.lifecycle_state(NODE) == 'inactive')
    deactivated = time.time()  # the node answers once the transition is done
    # A call that hung after the node had already taken the transition is retried and then
    # told the transition is not available: the node's own state says what happened.
    assert 'Transitioning successful' in answer or (
        session.observer.lifecycle_state(NODE) == 'inactive'), answer
    time.sleep(1.5)  # about 45 frames at 30 Hz
    assert session.observer.lifecycle_state(NODE) == 'inactive'
    with session.observer.lock:
        stamps = [pose.header.stamp.sec + 1e-9 * pose.header.stamp.nanosec
                  for pose in session.poses]
    assert stamps and max(stamps) < deactivated, 'a head pose was published while inactive'


def test_ctrl_c_exits_cleanly_and_leaves_nothing_behind(session):
    """SIGINT to the process group: every process exits with 0 and the graph empties at once."""
    launch = psutil.Process(session.process.pid)
    children = launch.children(recursive=True)
    assert len(children) >= 2, [child.cmdline() for child in children]
    assert {NODE, '/head_driver'} <= session.observer.node_names()
    session.interrupt()
    assert session.process.wait(timeout=60) == 0, session.output()
    interrupted = session.output().split('user interrupted with ctrl-c', 1)
    assert len(interrupted) == 2, session.output()
    assert interrupted[1].count('process has finished cleanly') == 2, interrupted[1]
    assert_no_errors(interrupted[1])
    assert wait_for(lambda: not any(_alive(child) for child in children), timeout=10.0)
    # The observer keeps a graph as the daemon does: a process that died without destroying its
    # node would stay on it for the DDS lease (20 s: the stale entries of `ros2 node list`); a
    # clean exit leaves it at once.
    assert wait_for(lambda: not {NODE, '/head_driver'} & session.observer.node_names(),
                    timeout=10.0), session.observer.node_names()
