"""Engine.IO's pings on a hub timer instead of a greenthread per socket, under eventlet.

After each PONG, engine.io spawns a greenthread that sleeps the ping interval and then queues
the next PING: every socket holds one such greenthread at all times (a greenlet with its saved
stack and frames), and a new one is made every interval. Living the whole interval, those
objects outlast the young generations, and with thousands of sockets they were what kept
starting full garbage collections, each walking every socket's objects (0.5 s at 8,000
sockets, every ping interval). A timer in eventlet's hub does the same job with one object.
"""

import time

from engineio import packet
from engineio.socket import Socket


def _ping(socket: Socket) -> None:
    # Runs in the hub, where nothing may block or switch: queue the PING as engine.io's
    # `_send_ping` does, but without `send()`'s ping-timeout check, which may close the
    # socket and run the disconnect handlers (that is the service task's job anyway).
    if not socket.closing and not socket.closed:
        socket.last_ping = time.time()
        socket.queue.put(packet.Packet(packet.PING))


def schedule_ping(socket: Socket) -> None:
    """What engine.io's `Socket.schedule_ping` does, on a hub timer."""
    from eventlet.hubs import get_hub

    # Only once the previous ping was answered, as engine.io's own.
    if socket.last_ping:
        socket.last_ping = None
        get_hub().schedule_call_global(socket.server.ping_interval, _ping, socket)


def install() -> None:
    """Use `schedule_ping` for every engine.io socket; only once eventlet has patched the
    standard library (serving.py does it)."""
    Socket.schedule_ping = schedule_ping  # type: ignore[method-assign]
