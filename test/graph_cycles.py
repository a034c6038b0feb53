"""
Start and stop the listener graph in many processes; print one JSON line per cycle.

Run as a script: ``python graph_cycles.py CYCLES LOG_DIR``. It imports the graph once, then
forks one real process per cycle, which runs ``listener_graph``'s ``main`` (its own rclpy
context, DDS participants, executors and signal handling) and gets SIGINT either while it
starts or once the listener is active and publishing. Forking saves the 3 s of imports per
cycle; everything after the imports is what ``ros2 run listener_head_ros listener_graph``
runs.
"""

import json
import os
from pathlib import Path
import signal
import sys
import time

from listener_head_ros.ros import graph

ACTIVE = 'active: listening'
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def _child(log: Path) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        code = graph.main(['listener_graph'])
    except BaseException:  # noqa: B902 - the parent reads it in the log
        import traceback
        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def cycle(index: int, log: Path) -> dict:
    """Run one start/stop cycle; return what happened."""
    log.write_text('')
    pid = os.fork()
    if pid == 0:
        _child(log)
    try:
        return _stop(index, pid, log)
    except BaseException:  # no graph is left running on the DDS domain, whatever went wrong
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def _stop(index: int, pid: int, log: Path) -> dict:
    """Interrupt the graph process ``pid`` while it starts or once active; return the outcome."""
    early = index % 5 == 4  # one cycle in five is interrupted while it starts
    if early:  # (not at once: a signal in the instant after fork is lost with the fork's state)
        time.sleep(0.02 + 0.05 * (index % 7))
        started = False
    else:
        started = _wait_for(lambda: ACTIVE in log.read_text(errors='replace'), START_TIMEOUT)
        time.sleep(0.1 * (index % 4))
    os.kill(pid, signal.SIGINT)
    status = None
    deadline = time.monotonic() + STOP_TIMEOUT
    while status is None and time.monotonic() < deadline:
        done, raw = os.waitpid(pid, os.WNOHANG)
        status = raw if done else None
        time.sleep(0.01)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        code = 'hung'
    else:
        code = os.waitstatus_to_exitcode(status)
    return {'cycle': index, 'early': early, 'started': started, 'returncode': code,
            'log': log.read_text(errors='replace')}


def main() -> None:
    """Run the cycles named on the command line."""
    cycles, directory = int(sys.argv[1]), Path(sys.argv[2])
    for index in range(cycles):
        print(json.dumps(cycle(index, directory / f'cycle_{index}.log')), flush=True)


if __name__ == '__main__':
    main()
