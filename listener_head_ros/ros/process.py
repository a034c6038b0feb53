"""Run a node as its own process: one clean stop on SIGINT or SIGTERM, and its exit code."""

import contextlib
import signal
import sys
from typing import Callable, Iterator, Optional

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


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
             program: str, *, start: Optional[Callable[[Node], None]] = None,
             logged_refusals: tuple[type[BaseException], ...] = ()) -> int:
    """
    Run one node in its own process until SIGINT or SIGTERM; return the process exit code.

    ``make_node`` builds it once rclpy is initialised (with ``args``), ``start`` (if given) runs
    before it spins on an ``executor_type``. A parameter the node refuses, or one of the
    ``logged_refusals`` (which the node has logged already), ends the process with 1; a signal
    ends it cleanly with 0 (see :func:`stop_cleanly_on_signals`).
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
        except logged_refusals:
            return 1
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
