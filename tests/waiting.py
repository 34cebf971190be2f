"""Waiting in tests for something another thread or process does."""

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Return once `condition()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
