"""Callback failures: caught, counted and logged, so that no exception ends an executor."""

import collections
import threading
import traceback
from typing import Callable, Dict


def describe_error(error: BaseException, anticipated: tuple = (ValueError, TypeError)) -> str:
    """Return the text of an ``anticipated`` error, or the repr of an unexpected one."""
    return str(error) if isinstance(error, anticipated) else repr(error)


class CallbackFailures:
    """Count the exceptions of a node's callbacks by name; log each, the first with its trace."""

    def __init__(self, logger, anticipated: tuple = (ValueError, TypeError)) -> None:
        self._logger = logger
        self._anticipated = anticipated
        self._lock = threading.Lock()
        self._counts: collections.Counter = collections.Counter()
        self.last = ''

    def record(self, name: str, error: Exception) -> None:
        """Count and log an exception that the callback ``name`` raised."""
        text = describe_error(error, self._anticipated)
        with self._lock:
            self._counts[name] += 1
            count = self._counts[name]
            self.last = f'{name}: {text}'
        detail = f':\n{traceback.format_exc()}' if count == 1 else ''
        self._logger.error(
            f'the {name} callback failed ({count} time(s)): {text}; the node keeps running'
            f'{detail}', throttle_duration_sec=5.0)

    def counts(self) -> Dict[str, int]:
        """Return the failures so far, by callback name."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """Return the number of failures so far, all callbacks together."""
        with self._lock:
            return sum(self._counts.values())

    def clear(self) -> None:
        """Forget the counts (a new configure)."""
        with self._lock:
            self._counts.clear()
            self.last = ''

    def guard(self, name: str, callback: Callable[..., None]) -> Callable[..., None]:
        """Return ``callback`` wrapped so that its exceptions are recorded, not raised."""
        def guarded(*args) -> None:
            try:
                callback(*args)
            except Exception as error:  # noqa: B902 - recorded and logged, never lost
                self.record(name, error)
        return guarded
