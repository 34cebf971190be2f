"""Writes to a WebSocket's connection that wait a bounded time for the peer, while reads of
the same connection wait with no timeout (under eventlet, a read with a timeout keeps a hub
timer; under gevent, simple-websocket's reader would end on it)."""

import socket


def sendall_within(connection: socket.socket, data: bytes, seconds: float) -> None:
    """Write all of `data`, waiting at most `seconds` for the peer (each wait under eventlet,
    the whole write under gevent), or raise `OSError`. The connection has the timeout only
    during the call, so a read that starts meanwhile takes it too. Call it holding the
    WebSocket's send lock: two writers would each restore the other's timeout."""
    connection.settimeout(seconds)
    try:
        connection.sendall(data)
    finally:
        connection.settimeout(None)
