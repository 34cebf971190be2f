"""`WriteQueue` (app/realtime/writes.py) writing to a real eventlet `RFC6455WebSocket` over a
real socket pair, read by a client-side `RFC6455WebSocket`: the frames that waited together
and went out in one write are what a WebSocket client decodes, in order, with and without
permessage-deflate."""

import random
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from engineio import packet

with warnings.catch_warnings():
    # eventlet announces its deprecation on import (writes.py imports it too).
    warnings.simplefilter("ignore")
    import eventlet
    from eventlet.green import socket
    from eventlet.hubs import get_hub
    from eventlet.websocket import RFC6455WebSocket, WebSocketWSGI

    from app.realtime.writes import WriteQueue, bound_sends

SECONDS = 5
"""The longest any read or join may wait: past it, the test fails instead of hanging."""
WRITE_TIMEOUT = 0.2
"""How long a write may wait for a peer that reads nothing (`bound_sends`; the ping cycle, in
the handler)."""
LARGE = 100_000
"""Bytes of an incompressible message: its frame needs the 64-bit length form (> 65,535)."""


class CountingSocket:
    """The server's green socket, recording what each `sendall` (a `_send` each) carried."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.sendalls: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sendalls.append(bytes(data))
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@dataclass
class Connection:
    """Both ends of a WebSocket: the server's, as `WriteQueue` gets it, and a client's."""

    server: RFC6455WebSocket
    client: RFC6455WebSocket
    wire: CountingSocket


class Frame(NamedTuple):
    """What a frame's header says (RFC 6455 section 5.2)."""

    opcode: int
    compressed: bool
    masked: bool
    length_code: int
    length: int


def frames(wire: bytes) -> list[Frame]:
    """The header of each frame the server wrote (RFC 6455 section 5.2), checking that the
    frames exactly fill the bytes."""
    found = []
    offset = 0
    while offset < len(wire):
        first, second = wire[offset], wire[offset + 1]
        offset += 2
        length = length_code = second & 0x7F
        if length_code == 126:
            (length,) = struct.unpack_from("!H", wire, offset)
            offset += 2
        elif length_code == 127:
            (length,) = struct.unpack_from("!Q", wire, offset)
            offset += 8
        found.append(
            Frame(first & 0x0F, bool(first & 0x40), bool(second & 0x80), length_code, length)
        )
        offset += length
    assert offset == len(wire)
    return found


def negotiated(offer: str) -> dict[str, Any]:
    """The permessage-deflate parameters eventlet's server agrees to for a client's offer."""
    handshake = WebSocketWSGI(None)
    agreed = handshake._negotiate_permessage_deflate(handshake._parse_extension_header(offer))
    assert agreed is not None
    return {"permessage-deflate": agreed}


@pytest.fixture
def connect() -> Iterator[Callable[..., Connection]]:
    """Make a connected pair of WebSockets on a green socket pair, with the extensions both
    ends negotiated (none by default), the server's writes bounded as the handler bounds
    them; every socket is closed afterwards."""
    sockets: list[Any] = []

    def make(extensions: dict[str, Any] | None = None) -> Connection:
        server_end, client_end = socket.socketpair()
        sockets.extend((server_end, client_end))
        wire = CountingSocket(server_end)
        server = RFC6455WebSocket(wire, {}, extensions=extensions)
        bound_sends(server, WRITE_TIMEOUT)
        return Connection(
            server=server,
            client=RFC6455WebSocket(client_end, {}, client=True, extensions=extensions),
            wire=wire,
        )

    yield make
    for sock in sockets:
        sock.close()


def receive(client: RFC6455WebSocket, count: int) -> list[str | bytes | None]:
    """The next `count` messages the client decodes (None once the server closed)."""
    with eventlet.Timeout(SECONDS):
        return [client.wait() for _ in range(count)]


def message(data: str | bytes) -> packet.Packet:
    """A MESSAGE packet: a text frame for a string, a binary frame for bytes."""
    return packet.Packet(packet.MESSAGE, data=data)


def test_packets_that_waited_together_go_in_one_write_of_frames_a_client_decodes(connect):
    """Without compression: the packets queued before the writer ran go out in one `sendall`
    of unmasked frames, one per packet, that the client decodes in order as text or binary
    as they were queued; `None` then ends the queue and writes nothing more (the close frame
    is eventlet's to write, once the handler returns)."""
    connection = connect()
    opening = packet.Packet(packet.OPEN, {"sid": "s", "pingInterval": 25000})
    writes = WriteQueue(connection.server, [opening])
    for queued in (message("first"), message(b"\x00\xffbytes"), message("último ✓")):
        writes.put(queued)
    writes.put(None)
    assert receive(connection.client, 4) == [
        opening.encode(),
        "4first",
        b"\x00\xffbytes",
        "4último ✓",
    ]
    with eventlet.Timeout(SECONDS):
        writes.join()
    assert len(connection.wire.sendalls) == 1
    (written,) = connection.wire.sendalls
    assert [frame.opcode for frame in frames(written)] == [1, 1, 2, 1]
    assert not any(frame.masked for frame in frames(written))


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate",
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    ],
)
def test_compressed_packets_written_together_decode_in_order(connect, offer):
    """With permessage-deflate negotiated on both ends: the packets that waited together go
    in one write of frames compressed one message each (RSV1 set), a large one with the 64-bit
    length, and the client decodes them all, in order and kind. A repeated message decodes
    whether the server's compressor keeps its context (the repeat then takes a few bytes) or
    starts afresh for each message (the repeat is as long as the first), within one write and
    across writes."""
    extensions = negotiated(offer)
    takes_over = not extensions["permessage-deflate"]["server_no_context_takeover"]
    connection = connect(extensions)
    rng = random.Random(6455)
    large = rng.randbytes(LARGE)
    repeated = rng.randbytes(300).hex()
    writes = WriteQueue(
        connection.server,
        [
            message("small"),
            message(large),
            message(repeated),
            message(repeated),
            message(b"\x01\x02"),
        ],
    )
    assert receive(connection.client, 5) == [
        "4small",
        large,
        "4" + repeated,
        "4" + repeated,
        b"\x01\x02",
    ]
    assert len(connection.wire.sendalls) == 1
    written = frames(connection.wire.sendalls[0])
    assert [frame.opcode for frame in written] == [1, 2, 1, 1, 2]
    assert all(frame.compressed for frame in written)
    assert written[1].length_code == 127
    assert written[1].length > 65_535
    first, repeat = written[2].length, written[3].length
    assert (repeat < first // 4) if takes_over else (repeat == first)

    # A later burst: its own write, the same compression context, and still decoded.
    writes.put(message(repeated))
    assert receive(connection.client, 1) == ["4" + repeated]
    assert len(connection.wire.sendalls) == 2
    (again,) = frames(connection.wire.sendalls[1])
    assert again.compressed
    assert (again.length < first // 4) if takes_over else (again.length == first)


def pending_timers() -> int:
    """Timers in eventlet's hub that have neither fired nor been cancelled."""
    hub = get_hub()
    return sum(not timer.called for _, timer in [*hub.timers, *hub.next_timers])


def test_a_waiting_read_keeps_no_timer_and_the_end_wakes_it(connect):
    """The handler's reader waits on the socket between writes with no timeout, so eventlet
    keeps no timer for it; the queue's end shuts the reading down, which wakes it while the
    client, alive but silent, stays connected (closing the socket would leave it waiting)."""
    connection = connect()
    writes = WriteQueue(connection.server, [message("first")])
    with eventlet.Timeout(SECONDS):
        writes.join()
    before = pending_timers()
    reader = eventlet.spawn(connection.server.wait)
    eventlet.sleep(0.01)
    assert not reader.dead, "the reader should be waiting on the socket"
    assert pending_timers() == before
    writes.put(message("last"))
    writes.put(None)
    with eventlet.Timeout(SECONDS):
        assert reader.wait() is None
    assert receive(connection.client, 2) == ["4first", "4last"]


def ping_until_refused(client: RFC6455WebSocket) -> None:
    """Send the largest pings a control frame may carry, reading nothing, until the server
    has gone."""
    ping = client._pack_message(bytes(125), control_code=0x9, masked=True)
    try:
        while True:
            client.socket.sendall(ping)
    except OSError:
        return


def test_the_readers_answers_to_a_client_that_reads_nothing_give_up(connect):
    """Eventlet answers a client's pings from the reader. A client that sends pings and
    reads nothing fills the server's socket buffer; the reader's next answer then waits out
    the write timeout and the reader ends, instead of waiting for ever (the socket has no
    timeout between writes)."""
    connection = connect()
    reader = eventlet.spawn(lambda: list(iter(connection.server.wait, None)))
    pinger = eventlet.spawn(ping_until_refused, connection.client)
    with eventlet.Timeout(SECONDS), pytest.raises(TimeoutError):
        reader.wait()
    pinger.kill()
    assert connection.wire.gettimeout() is None


def stop_reading(connection: Connection) -> list[packet.Packet]:
    """The client stays connected but reads nothing: a write larger than the socket
    buffers waits out the write timeout."""
    return [message(bytes(4 << 20))]


def go_away(connection: Connection) -> list[packet.Packet]:
    """The client is gone: its socket is closed."""
    connection.client.socket.close()
    return [message("a"), message("b")]


@pytest.mark.parametrize("peer", [go_away, stop_reading])
def test_a_peer_gone_or_not_reading_ends_the_queue_quietly(connect, caplog, peer):
    """What eventlet's real socket raises when the peer is gone or stops reading is the
    `OSError` the queue treats as an ordinary end: the write fails, the connection is shut
    down both ways (a reader waiting on it sees the end, and nothing more can be written),
    joiners are freed, nothing is logged as an error, and later packets are dropped rather
    than written."""
    connection = connect()
    reader = eventlet.spawn(connection.server.wait)
    writes = WriteQueue(connection.server, peer(connection))
    with eventlet.Timeout(SECONDS):
        writes.join()
        assert reader.wait() is None
    with pytest.raises(BrokenPipeError):
        connection.wire.sendall(b"x")
    assert "could not write a packet" not in caplog.text
    attempts = len(connection.wire.sendalls)
    writes.put(message("later"))
    with eventlet.Timeout(SECONDS):
        writes.join()
    assert len(connection.wire.sendalls) == attempts
