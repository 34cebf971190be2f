"""Engine.IO's WebSockets under gevent, which end when this side closes them.

Under gevent, engine.io serves a WebSocket with simple-websocket (requirements.txt pins it;
with gevent-websocket installed engine.io would use that instead). When engine.io closes one
from this side (a client that stopped answering pings, a disconnect by the server),
simple-websocket sends the close frame and marks itself closed, but wakes neither engine.io's
handler, which waits for the next message with no timeout, nor its own reader thread, which
reads a duplicate of the connection's socket with no timeout. Until the client answered, the
connection stayed open with both greenlets: for a client that is gone, as long as the kernel
keeps the connection (over 400 s in a probe). Here a close also wakes the handler and shuts
the connection down.
"""

import contextlib
import socket

from engineio.async_drivers import gevent as engineio_gevent


class WebSocketWSGI(engineio_gevent.WebSocketWSGI):
    """Engine.IO's gevent WebSocket, whose close ends the connection."""

    def close(self) -> None:
        try:
            # Raises if the peer reset the connection (simple-websocket only expects a
            # broken pipe).
            super().close()
        finally:
            # simple-websocket sets its event only for what its reader thread receives:
            # set, the handler's wait sees the socket closed and the handler returns.
            self.ws.event.set()
            # Ends the reader thread's read (it then closes its duplicate) and the
            # connection, after the close frame; already done when the client closed first.
            with contextlib.suppress(OSError):
                self.ws.sock.shutdown(socket.SHUT_RDWR)


def install() -> None:
    """Serve engine.io's WebSockets with `WebSocketWSGI`; only once gevent has patched the
    standard library (serving.py does it)."""
    engineio_gevent._async["websocket"] = WebSocketWSGI
