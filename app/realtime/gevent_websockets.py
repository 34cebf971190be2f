"""Engine.IO's WebSockets under gevent: whole frames, bounded writes, and a close that ends
the connection.

Under gevent, engine.io serves a WebSocket with simple-websocket (requirements.txt pins it;
with gevent-websocket installed engine.io would use that instead). Three things are fixed
here:
- simple-websocket writes each frame with one `send`, which writes what fits in the socket's
  buffer and returns how much; the rest of the frame was lost, and the client's stream broken,
  whenever a client read slower than the server wrote (a catch-up, a burst of events).
- Those sends waited for the peer with no timeout: a client that stopped reading held its
  connection, and engine.io's writer, for as long as it stayed connected.
- When engine.io closes a WebSocket from this side (a client that stopped answering pings, a
  disconnect by the server), simple-websocket sends the close frame and marks itself closed,
  but wakes neither engine.io's handler, which waits for the next message with no timeout,
  nor its own reader thread, which reads a duplicate of the connection's socket with no
  timeout. Until the client answered, the connection stayed open with both greenlets: for a
  client that is gone, as long as the kernel keeps the connection (over 400 s in a probe).
"""

import contextlib
import socket
from typing import Any

import simple_websocket
from engineio.async_drivers import gevent as engineio_gevent
from gevent.lock import Semaphore

from app.realtime.sends import sendall_within


class WholeFrames:
    """simple-websocket's socket, whose every `send` writes the whole frame within `seconds`
    or ends the connection (a frame written in part leaves nothing sendable after it; see
    `sendall_within` for the timeout). Anything else goes to the socket itself."""

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self._connection = connection
        self._seconds = seconds
        # The reader thread answers the client's pings and close frames while engine.io's
        # writer sends: gevent lets one greenlet at a time wait to write on a socket.
        self._sending = Semaphore()

    def send(self, frame: bytes) -> int:
        with self._sending:
            try:
                sendall_within(self._connection, frame, self._seconds)
            except OSError:
                with contextlib.suppress(OSError):
                    self._connection.shutdown(socket.SHUT_RDWR)
                raise
        return len(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class WebSocketWSGI(engineio_gevent.WebSocketWSGI):
    """Engine.IO's gevent WebSocket, with `WholeFrames` sends bounded by the ping interval
    plus the ping timeout (under eventlet that bounds each wait of a write, here the whole
    frame), and a close that ends the connection."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self._write_timeout = server.ping_interval + server.ping_timeout

    @property
    def ws(self) -> simple_websocket.Server:
        return self._simple_websocket

    @ws.setter
    def ws(self, server: simple_websocket.Server) -> None:
        # Engine.IO sets it once it made simple-websocket's server, before its handler runs.
        server.sock = WholeFrames(server.sock, self._write_timeout)
        self._simple_websocket = server

    def close(self) -> None:
        # simple-websocket's close raises for a peer that reset the connection or stopped
        # reading (it expects only a broken pipe): either way there is nothing more to say.
        with contextlib.suppress(OSError):
            super().close()
        # simple-websocket sets its event only for what its reader thread receives: set, the
        # handler's wait sees the socket closed (when the close frame went out) and returns.
        self.ws.event.set()
        # Ends the reader thread's read, after the close frame; the thread then marks the
        # socket closed, sets the event (which ends the handler's wait when the close frame
        # could not be sent) and closes its duplicate. Already done when the client closed
        # first.
        with contextlib.suppress(OSError):
            self.ws.sock.shutdown(socket.SHUT_RDWR)


def install() -> None:
    """Serve engine.io's WebSockets with `WebSocketWSGI`; only once gevent has patched the
    standard library (serving.py does it)."""
    engineio_gevent._async["websocket"] = WebSocketWSGI
