"""Polling helper for integration tests: wait for a condition with a deadline."""

import time
from typing import Callable, Optional


def wait_for(condition: Callable[[], object], publish: Optional[Callable[[], None]] = None,
             timeout: float = 10.0) -> bool:
    """Poll ``condition`` (calling ``publish`` before each poll) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if publish is not None:
            publish()
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())
