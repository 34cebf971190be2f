"""How many Socket.IO connects a web process works on at once.

Each connect reads the database on a pooled connection. Thousands arriving together (a
reconnect storm) all started at once: each got a slice of the CPU in turn, so each held its
connection for seconds, the pool ran dry, the API's requests waited behind them, and some
connects timed out waiting (those clients were never answered). Past SOCKET_CONNECTS_IN_FLIGHT,
a connect now waits its turn before it touches the database, and turns go in arrival order.
"""

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from app import metrics


class ConnectGate:
    """At most `slots` holders at a time; the others wait, first come first served (a freed
    slot is handed to the longest waiter, so a newcomer never overtakes it). Green under
    eventlet and gevent, whose monkey patching makes these locks and events their own."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Holders-to-be waiting for a slot now."""
        return len(self._waiting)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block, waiting for it first if none is free."""
        with self._lock:
            turn = None
            if self._free:
                self._free -= 1
            else:
                turn = threading.Event()
                self._waiting.append(turn)
                metrics.SOCKET_CONNECTS_WAITING.set(self.waiting)
        if turn is not None:
            turn.wait()
        try:
            yield
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting.popleft().set()
                    metrics.SOCKET_CONNECTS_WAITING.set(self.waiting)
                else:
                    self._free += 1
