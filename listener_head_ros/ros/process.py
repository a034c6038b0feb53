"""
Run ROS nodes as a process: an ordered stop on SIGINT or SIGTERM, and an exit code.

The order is what keeps the exit clean: a signal first stops the executors and waits for their
callbacks to return, then destroys the nodes, and only then shuts the rclpy context down. With
rclpy's own signal handler the context went first, and a callback still running then failed
("publisher's context is invalid"), or the interpreter crashed while a thread was still in rcl.
"""

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

# Seconds to wait for an executor thread to finish its last callback when stopping.
STOP_TIMEOUT = 5.0


@contextlib.contextmanager
def stop_cleanly_on_signals() -> Iterator[threading.Event]:
    """
    Make the first SIGINT or SIGTERM stop the process cleanly, and any later one harmless.

    The first signal sets the yielded event and raises KeyboardInterrupt in the main thread,
    which waits in :meth:`Spinner.wait` while the executors spin in other threads; the ``with``
    body then unwinds in order (see :func:`ros_context`). A KeyboardInterrupt that some C code
    swallows while the process starts does not matter: :meth:`Spinner.wait` sees the event
    (without it, test_graph's start/stop cycles found processes that ran on, deaf to later
    signals). Later signals do nothing: Ctrl-C under launch sends two SIGINTs (the terminal's,
    to the process group, and launch's own), and the second one must neither break the
    clean-up nor kill the interpreter as it finalizes (launch: "process has died ... exit code
    -2"). On the way out, both signals are ignored for the rest of the process's life.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    stop = threading.Event()

    def interrupt(signum, frame) -> None:
        if not stop.is_set():
            stop.set()
            raise KeyboardInterrupt
    for signum in signals:
        signal.signal(signum, interrupt)
    try:
        yield stop
    except KeyboardInterrupt:
        pass
    finally:
        for signum in signals:
            signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def ros_context(args: Optional[Sequence[str]]) -> Iterator[None]:
    """Initialise rclpy without its signal handlers, and shut it down after everything else."""
    rclpy.init(args=list(args) if args is not None else None,
               signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield
    finally:
        rclpy.try_shutdown()


class Spinner:
    """Spin each node on its own executor in a thread of its own; stop them all in order."""

    def __init__(self, pairs: Sequence[Tuple[Executor, Node]]) -> None:
        self.pairs = list(pairs)
        self.errors: List[BaseException] = []
        self._stopped = threading.Event()
        for executor, node in self.pairs:
            executor.add_node(node)
        self._threads = [threading.Thread(target=self._spin, args=(executor,), daemon=True,
                                          name=f'spin {node.get_name()}')
                         for executor, node in self.pairs]

    def _spin(self, executor: Executor) -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception as error:  # noqa: B902 - reported by wait() and the exit code
            self.errors.append(error)
        finally:
            self._stopped.set()

    def start(self) -> None:
        """Start every executor's thread."""
        for thread in self._threads:
            thread.start()

    def wait(self, stop: Optional[threading.Event] = None) -> None:
        """Block until an executor stops (it raised, or the context was shut down) or ``stop``."""
        # An Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
        # looking finished while it still runs in rcl (seen here: the process then
        # aborted at exit, "terminate called without an active exception", in 3 runs of 10).
        while not self._stopped.wait(timeout=0.1):
            if stop is not None and stop.is_set():
                return

    def stop(self) -> None:
        """Stop the executors, wait for their callbacks to return, then destroy the nodes."""
        for executor, _ in self.pairs:
            executor.shutdown(timeout_sec=STOP_TIMEOUT)
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=STOP_TIMEOUT)
        for _, node in self.pairs:
            node.destroy_node()


def run_node(args: Optional[list], make_node: Callable[[], Node], executor_type: type,
             program: str, *, start: Optional[Callable[[Node], None]] = None,
             logged_refusals: Tuple[type, ...] = ()) -> int:
    """
    Run one node in its own process until SIGINT or SIGTERM; return the process exit code.

    ``make_node`` builds it once rclpy is initialised (with ``args``), ``start`` (if given) runs
    before it spins on an ``executor_type``. A parameter the node refuses, or one of the
    ``logged_refusals`` (which the node has logged already), ends the process with 1, as does
    an executor that stops on an exception; a signal ends it cleanly with 0.
    """
    with stop_cleanly_on_signals() as stop, ros_context(args):
        node = spinner = None
        try:
            node = make_node()
            spinner = Spinner([(executor_type(), node)])
            if start is not None:
                start(node)
            spinner.start()
            spinner.wait(stop)
            for error in spinner.errors:
                print(f'{program}: the executor stopped: {error!r}', file=sys.stderr)
            return 1 if spinner.errors else 0
        except logged_refusals:
            return 1
        except ParameterException as error:
            print(f'{program}: invalid parameter: {error}', file=sys.stderr)
            return 1
        finally:
            if spinner is not None:
                spinner.stop()
            elif node is not None:
                node.destroy_node()
    return 0
