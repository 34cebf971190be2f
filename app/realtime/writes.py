"""WebSocket writes without a greenthread per socket, under eventlet.

Engine.IO gives each WebSocket a writer greenthread that waits on the socket's queue for the
socket's whole life. A waiting greenthread keeps about 8 KiB resident (its greenlet, the
frames' data stack, the queue's timer: measured with 10,000 of them waiting on queues), a
seventh of an idle socket's memory, for a socket that is written a ping every 25 s. Here a
socket's packets wait in a `WriteQueue`, and a greenthread runs only while something is
queued: it writes what was queued, in order, the packets that waited together in one write,
and ends.

Reads wait with no timeout: eventlet makes a hub timer for every read that waits with one,
and a cancelled timer stays in the hub's heap until it would have fired, so a 45 s read
timeout kept about two timers per idle socket, some 0.7 KiB (a pending one with its
exception 0.6 KiB, a cancelled one 0.15 KiB). A silent client is found by engine.io's
service task instead (no PONG within the ping timeout), which closes the socket; the queue's
end then shuts the connection down, and that wakes the reader. Every write keeps a timeout
(`bound_sends`), those of the reader included (eventlet answers a client's pings and close
frames from it): the socket has it only while a write runs, so a read that starts meanwhile
takes it too, and a timer, but a read between writes does not.

Only connections that open as RFC 6455 WebSockets take this path (every client of this
server does); one upgraded from long-polling keeps engine.io's own handler, whose queue its
polling requests read, and so does one from a pre-RFC 6455 client.
"""

import contextlib
import logging
import socket as sockets
from collections import deque
from collections.abc import Iterable
from typing import Any

from engineio import exceptions, packet
from engineio.socket import Socket
from eventlet.websocket import RFC6455WebSocket

from app.realtime.sends import sendall_within

log = logging.getLogger(__name__)

ENGINEIOS_HANDLER = Socket._websocket_handler
"""Engine.IO's WebSocket handler, kept for connections upgraded from long-polling."""


class WriteQueue:
    """What engine.io asks of a socket's queue (`put`, `join`), writing the packets to the
    WebSocket (a frame each, those that waited together in one write) in a greenthread that
    runs only while packets wait. `None` ends the queue once what was queued before it is
    written; nothing queued after it is sent. A write that fails (the WebSocket's own timeout,
    see `bound_sends`) ends it too. An ended queue shuts the connection down: whoever reads it
    sees the end, and the WSGI server closes it once the handler returns."""

    __slots__ = ("_drained", "_ended", "_packets", "_websocket")

    def __init__(self, websocket: Any, queued: Iterable[packet.Packet]) -> None:
        self._websocket = websocket
        # Packets waiting for the greenthread that writes them; None while none is running
        # (an idle socket keeps no queue: an empty deque is 0.7 KiB).
        self._packets: deque[packet.Packet | None] | None = None
        self._ended = False
        # Made only when someone waits for the writes (a disconnect from the server side).
        self._drained: Any = None
        for queued_packet in queued:
            self.put(queued_packet)

    def put(self, item: packet.Packet | None) -> None:
        """Queue a packet to write. Never blocks nor switches greenthreads, so a hub timer
        may call it (pings.py does)."""
        if self._ended:
            return
        if self._packets is None:
            self._packets = deque()
            from eventlet import spawn_n

            spawn_n(self._write, self._packets)
        self._packets.append(item)

    def join(self) -> None:
        """Wait until everything queued is written, or can no longer be."""
        if self._packets is None:
            return
        if self._drained is None:
            from eventlet.event import Event

            self._drained = Event()
        self._drained.wait()

    def _write(self, packets: deque[packet.Packet | None]) -> None:
        try:
            while packets:
                frames = []
                while packets and packets[0] is not None:
                    frames.append(self._websocket._pack_message(packets.popleft().encode()))
                if not frames:  # `None` comes next
                    self._end(sockets.SHUT_RD)
                    break
                # What waited goes in one write (a send's event and its unread count wait
                # together): a system call per packet was much of a fan-out's time.
                self._websocket._send(b"".join(frames))
        except OSError:
            # The peer is gone or stopped reading for a whole ping cycle (the write's
            # timeout, `bound_sends`): nothing more can be written.
            self._end(sockets.SHUT_RDWR)
        except Exception:
            # As engine.io's writer: a packet that cannot be written ends the connection
            # (the client reconnects and catches up) rather than leaving it open and mute.
            log.exception("could not write a packet, closing the WebSocket")
            self._end(sockets.SHUT_RDWR)
        finally:
            # No switch since the loop saw the queue empty, so no packet is left behind;
            # after an end, what is left is dropped.
            self._packets = None
            if self._drained is not None:
                self._drained.send()
                self._drained = None

    def _end(self, how: int) -> None:
        """Shut the connection down `how` (reading, or both ways when nothing more can be
        written), not close it: a read waiting on a closed socket is never woken (eventlet's
        hub loses it with the descriptor), and the reader waits without a timeout."""
        self._ended = True
        with contextlib.suppress(OSError):  # the peer already ended it
            self._websocket.socket.shutdown(how)
        # The engine.io socket outlives the connection by up to a ping interval (the hub's
        # ping timer holds it): without this, the WebSocket, its WSGI environ and eventlet's
        # buffers would live as long.
        self._websocket = None


def bound_sends(websocket: Any, seconds: float) -> None:
    """Make every write to `websocket` wait at most `seconds` for the peer, each time it
    waits: the queue's, and the reader's answers to the client's pings and close frames.
    The socket has the timeout only while a write holds the WebSocket's send lock, so that
    reads between writes wait without one."""
    connection = websocket.socket
    lock = websocket._sendlock

    def send(frame: bytes) -> None:
        with lock:
            sendall_within(connection, frame, seconds)

    websocket._send = send


def _queued(socket: Socket) -> list[packet.Packet]:
    """Take what engine.io queued before the WebSocket handler ran (the OPEN packet)."""
    packets = []
    while not socket.queue.empty():
        packets.append(socket.queue.get_nowait())
        socket.queue.task_done()
    return packets


def _read_until_closed(socket: Socket, websocket: Any) -> None:
    max_size = socket.server.max_http_buffer_size
    try:
        while (data := websocket.wait()) is not None and len(data) <= max_size:
            try:
                socket.receive(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                continue
    except (OSError, exceptions.SocketIsClosedError):
        return  # the peer is gone, or the queue's end shut the connection down
    except Exception:
        # As engine.io's handler does: what breaks a packet's handling ends the connection,
        # which the client then retries.
        log.exception("%s: could not handle a packet, closing the connection", socket.sid)


def websocket_handler(socket: Socket, websocket: Any) -> list[Any]:
    """Engine.IO's WebSocket transport with a `WriteQueue` for the socket's queue."""
    if socket.connected or not isinstance(websocket, RFC6455WebSocket):
        # Upgraded from long-polling, or a pre-RFC 6455 (Hixie-76) client, whose WebSocket
        # eventlet writes otherwise.
        return ENGINEIOS_HANDLER(socket, websocket)
    server = socket.server
    # Reads wait with no timeout (see the module's docstring); a live client reads each
    # ping within a ping cycle, and a write that waits longer has lost it.
    websocket.socket.settimeout(None)
    bound_sends(websocket, server.ping_interval + server.ping_timeout)
    socket.connected = socket.upgraded = True
    writes = WriteQueue(websocket, _queued(socket))
    socket.queue = writes
    _read_until_closed(socket, websocket)
    writes.put(None)
    writes.join()
    socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
    return []


def install() -> None:
    """Use `websocket_handler` for every engine.io socket; only once eventlet has patched
    the standard library (serving.py does it)."""
    Socket._websocket_handler = websocket_handler  # type: ignore[method-assign]
