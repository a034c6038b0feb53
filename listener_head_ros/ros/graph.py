"""
Start the listener graph in one process, without ``ros2 launch``, from the same YAML files.

Equivalent to ``ros2 launch listener_head_ros listener.launch.py`` with the same arguments::

    ros2 run listener_head_ros listener_graph --robot-profile tiago --audio-topic /audio/audio

It builds the listener (lifecycle) and head driver nodes with the launch file's parameter file
and remappings, configures and activates the listener, and spins each node on an executor of its
own: the listener on a MultiThreadedExecutor (audio intake and inference run in parallel), the
driver on a SingleThreadedExecutor in a second thread. (One MultiThreadedExecutor for both
nodes was measured to busy-spin: 55-100 % of a core with no audio at all.)
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path
import sys
import threading
from typing import Callable, List, Optional, Tuple

import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterException
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from listener_head_ros.head_profile import HeadProfileError
from listener_head_ros.ros.head_driver_node import HeadDriverNode
from listener_head_ros.ros.listener_node import GIL_SWITCH_INTERVAL, ListenerNode
from listener_head_ros.ros.process import ros_context, Spinner, stop_cleanly_on_signals
from listener_head_ros.settings import default_params_file


@dataclass(frozen=True)
class GraphOptions:
    """The launch file's arguments."""

    params_file: Path
    namespace: str = ''
    audio_topic: str = '/audio/audio'
    audio_info_topic: str = '/audio/audio_info'
    robot_profile: Optional[str] = None  # None keeps the parameter file's
    use_sim_time: bool = False
    model: Optional[str] = None  # 'prosodic' or a checkpoint directory; None: the file's
    device: Optional[str] = None  # None keeps the parameter file's


def create_graph(options: GraphOptions,
                 context: Optional[Context] = None) -> Tuple[ListenerNode, HeadDriverNode]:
    """Create the listener and head driver nodes as the launch file does (not yet active)."""
    if not options.params_file.is_file():
        raise FileNotFoundError(f'parameter file {options.params_file} does not exist')
    common = ['--ros-args', '--params-file', str(options.params_file)]
    sim_time = [Parameter('use_sim_time', value=options.use_sim_time)]
    listener_overrides = sim_time + [
        Parameter(name, value=value) for name, value in
        (('model', options.model), ('device', options.device)) if value is not None]
    listener = ListenerNode(
        context=context, namespace=options.namespace, parameter_overrides=listener_overrides,
        cli_args=common + ['-r', f'audio:={options.audio_topic}',
                           '-r', f'audio_info:={options.audio_info_topic}'])
    driver_overrides = list(sim_time)
    if options.robot_profile is not None:
        driver_overrides.append(Parameter('robot_profile', value=options.robot_profile))
    driver = HeadDriverNode(context=context, namespace=options.namespace, cli_args=common,
                            parameter_overrides=driver_overrides)
    return listener, driver


def start_listener(listener: ListenerNode) -> None:
    """Configure and activate the listener; raise RuntimeError if a transition fails."""
    if listener.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError('the listener failed to configure (see its log above)')
    if listener.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError('the listener failed to activate (see its log above)')


def parse_options(argv: List[str]) -> GraphOptions:
    """Parse the launch-equivalent command line."""
    parser = argparse.ArgumentParser(description='Run the listener graph without ros2 launch.')
    parser.add_argument('--params-file', type=Path, default=default_params_file())
    parser.add_argument('--namespace', default='')
    parser.add_argument('--audio-topic', default='/audio/audio')
    parser.add_argument('--audio-info-topic', default='/audio/audio_info')
    parser.add_argument('--robot-profile', default=None,
                        help='generic_3dof, tiago, nao or a profile YAML path')
    parser.add_argument('--use-sim-time', action='store_true')
    parser.add_argument('--model', default=None,
                        help="'prosodic' or a trained checkpoint directory")
    parser.add_argument('--device', default=None, choices=('auto', 'cpu', 'cuda'))
    args = parser.parse_args(argv)
    return GraphOptions(args.params_file, args.namespace, args.audio_topic,
                        args.audio_info_topic, args.robot_profile, args.use_sim_time,
                        args.model, args.device)


class GraphRunner:
    """Spin the listener and the head driver, each on its own executor, until stopped."""

    def __init__(self, listener: ListenerNode, driver: HeadDriverNode,
                 context: Optional[Context] = None) -> None:
        self.listener, self.driver = listener, driver
        self.listener_executor = MultiThreadedExecutor(context=context)
        self.driver_executor = SingleThreadedExecutor(context=context)
        self.spinner = Spinner([(self.listener_executor, listener),
                                (self.driver_executor, driver)])

    def start(self) -> None:
        """Start spinning in background threads, then configure and activate the listener."""
        self.spinner.start()
        start_listener(self.listener)

    def wait(self, stop: Optional[threading.Event] = None) -> None:
        """Block until an executor stops (rclpy shutdown, or an exception) or ``stop`` is set."""
        self.spinner.wait(stop)

    def stop(self) -> None:
        """Stop the executors, wait for their callbacks, then destroy both nodes."""
        self.spinner.stop()


def run_graph(options: GraphOptions, args: List[str], program: str = 'listener_graph',
              on_started: Optional[Callable[[GraphRunner], None]] = None,
              on_stopping: Optional[Callable[[GraphRunner], None]] = None) -> int:
    """
    Run the graph until Ctrl-C; return a process exit code.

    ``on_started`` is called once the listener is active, ``on_stopping`` before the nodes are
    destroyed (only if the graph had started), e.g. to attach and save instrumentation.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    in_main_thread = threading.current_thread() is threading.main_thread()
    with stop_cleanly_on_signals() if in_main_thread else contextlib.nullcontext() as stop, \
            ros_context(args):
        runner, started = None, False
        try:
            runner = GraphRunner(*create_graph(options))
            runner.start()
            started = True
            if on_started is not None:
                on_started(runner)
            runner.wait(stop)
            for error in runner.spinner.errors:
                print(f'{program}: an executor stopped: {error!r}', file=sys.stderr)
            return 1 if runner.spinner.errors else 0
        except (RuntimeError, FileNotFoundError, ParameterException, HeadProfileError) as error:
            print(f'{program}: {error}', file=sys.stderr)
            return 1
        finally:
            if started and on_stopping is not None:
                on_stopping(runner)
            if runner is not None:
                runner.stop()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the graph from the command line until Ctrl-C; return a process exit code."""
    args = sys.argv if argv is None else argv
    return run_graph(parse_options(rclpy.utilities.remove_ros_args(args)[1:]), args)


if __name__ == '__main__':
    sys.exit(main())
