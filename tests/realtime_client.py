"""A browser tab stand-in: the python-socketio client, recording every pushed event."""

import queue
import time
from typing import Any

import socketio

EVENTS = ("notification", "notification_updated", "unread_count", "resync")
WAIT_SECONDS = 15
TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    # As browsers without a WebSocket at hand start: long-polling, then the upgrade.
    "upgrade": ["polling", "websocket"],
}


class Tab:
    """One Socket.IO connection of one user, with the events it received in order."""

    def __init__(self, url: str, token: str, transport: str, last_id: str | None = None) -> None:
        """`transport`: one of TRANSPORTS."""
        self.received: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        for name in EVENTS:
            self.client.on(name, self._recorder(name))
        auth = {"token": token} | ({"last_id": last_id} if last_id else {})
        self.client.connect(
            url, auth=auth, transports=TRANSPORTS[transport], wait_timeout=WAIT_SECONDS
        )

    def _recorder(self, name: str):
        def record(data: Any) -> None:
            self.received.put((name, data))

        return record

    def next(self, name: str, timeout: float = WAIT_SECONDS) -> Any:
        """The next event called `name`, skipping others; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name!r} event within {timeout}s")
            try:
                event, data = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            if event == name:
                return data

    def drain(self, quiet_seconds: float = 0.5) -> list[tuple[str, Any]]:
        """Everything received until nothing more arrives for `quiet_seconds`."""
        events = []
        while True:
            try:
                events.append(self.received.get(timeout=quiet_seconds))
            except queue.Empty:
                return events

    def close(self) -> None:
        self.client.disconnect()
