"""
Stopping a training run on SIGINT or SIGTERM without losing a step, and saying how to resume.

While a network trains (inside :func:`stop_requests`) the first SIGINT or SIGTERM only
records the request: the trainer finishes the step it is in, saves the training state and
raises :class:`TrainingInterrupted`.  Elsewhere (loading data, scoring) nothing trained can be
lost, since each network's state is saved when its training ends, and under
:func:`exit_on_interrupt` either signal raises KeyboardInterrupt there.  Either way a training
script prints the command that resumes the run and exits with 128 + the signal number, as a
shell reports a process killed by it; later signals are ignored.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
import shlex
import signal
import sys
import threading
from typing import Callable, Iterator, List, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The first SIGINT or SIGTERM received while a network trains, if any."""

    def __init__(self) -> None:
        self.signal_number: Optional[int] = None

    def record(self, signal_number: int, frame=None) -> None:
        """Record ``signal_number`` unless a signal came before it (a signal handler)."""
        if self.signal_number is None:
            self.signal_number = int(signal_number)


class TrainingInterrupted(Exception):
    """A signal stopped training after ``step`` steps, whose state is saved in ``state_dir``."""

    def __init__(self, signal_number: int, name: str, step: int, steps: int,
                 state_dir: Path) -> None:
        self.signal_number, self.step, self.state_dir = signal_number, step, state_dir
        super().__init__(f'{signal.Signals(signal_number).name} after step {step} of {steps} '
                         f'of {name}; its training state is saved in {state_dir}')


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Within it, SIGINT and SIGTERM only set the yielded request (in the main thread)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signals reach the main thread only; it keeps its own handlers
        return
    previous = {number: signal.signal(number, request.record) for number in SIGNALS}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def resume_command() -> str:
    """Return the command line that started this script, which resumes its run."""
    return shlex.join(['python', *sys.argv])


def exit_on_interrupt(program: str, run: Callable[[], int]) -> int:
    """Return ``run()``; on SIGINT or SIGTERM print how to resume, and return 128 + the signal."""
    received: List[int] = []

    def interrupt(signal_number: int, frame) -> None:
        if not received:
            received.append(signal_number)
            raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in SIGNALS}
    stopped_by: Optional[int] = None
    try:
        return run()
    except TrainingInterrupted as error:
        stopped_by = error.signal_number
        print(f'{program}: stopped by {error}', file=sys.stderr)
    except KeyboardInterrupt:
        stopped_by = received[0] if received else int(signal.SIGINT)
        print(f'{program}: stopped by {signal.Signals(stopped_by).name}; every finished step '
              'is saved', file=sys.stderr)
    finally:
        for number, handler in previous.items():
            if stopped_by is not None:
                handler = signal.SIG_IGN  # a second Ctrl-C must not break the message
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
    print(f'resume with: {resume_command()}', file=sys.stderr)
    return 128 + stopped_by
