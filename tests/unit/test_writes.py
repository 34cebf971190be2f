"""WebSocket writes from a greenthread that runs only while packets wait
(app/realtime/writes.py), on a stand-in WebSocket under eventlet."""

import gc
import socket
import warnings
import weakref

import pytest
from engineio import packet

with warnings.catch_warnings():
    # eventlet announces its deprecation on import (writes.py imports it too).
    warnings.simplefilter("ignore")
    import eventlet
    from eventlet.hubs import get_hub

    from app.realtime.writes import WriteQueue


class StandInSocket:
    """The connection under a stand-in WebSocket: each shutdown."""

    def __init__(self) -> None:
        self.shutdowns: list[int] = []

    def shutdown(self, how: int) -> None:
        self.shutdowns.append(how)


class StandInWebSocket:
    """Records each write (the messages its frames carried) and the connection's shutdowns;
    a write may wait or fail. Only what `WriteQueue` calls of eventlet's WebSocket."""

    def __init__(
        self,
        send_seconds: float = 0.0,
        fail_after: int | None = None,
        failure: Exception | None = None,
    ) -> None:
        self.writes: list[list[str]] = []
        self.socket = StandInSocket()
        self.writers: set[object] = set()
        self._send_seconds = send_seconds
        self._fail_after = fail_after
        self._failure = failure or BrokenPipeError("the peer is gone")

    @property
    def sent(self) -> list[str]:
        return [sent for write in self.writes for sent in write]

    def _pack_message(self, message: str) -> bytes:
        # A frame per message; NUL ends one here, so that a write can be split into them.
        return message.encode() + b"\0"

    def _send(self, frames: bytes) -> None:
        if self._fail_after is not None and len(self.writes) >= self._fail_after:
            raise self._failure
        self.writers.add(eventlet.getcurrent())
        eventlet.sleep(self._send_seconds)
        self.writes.append(frames.decode().split("\0")[:-1])


def message(text: str) -> packet.Packet:
    return packet.Packet(packet.MESSAGE, data=text)


def test_what_was_queued_before_and_while_writing_is_written_in_order():
    websocket = StandInWebSocket(send_seconds=0.01)
    writes = WriteQueue(websocket, [packet.Packet(packet.OPEN, {"sid": "s"})])
    eventlet.sleep(0.005)
    # The OPEN packet's write is waiting now: these come from another greenthread meanwhile.
    assert websocket.writers
    assert websocket.sent == []
    eventlet.spawn(lambda: [writes.put(message(text)) for text in ("a", "b", "c")]).wait()
    writes.join()
    # What waited behind the first write went in one write after it, by the same greenthread.
    assert websocket.writes == [
        [packet.Packet(packet.OPEN, {"sid": "s"}).encode()],
        ["4a", "4b", "4c"],
    ]
    assert len(websocket.writers) == 1


def test_nothing_is_written_until_the_writer_gets_its_turn_and_nothing_waits_after():
    websocket = StandInWebSocket()
    writes = WriteQueue(websocket, [])
    writes.put(message("a"))
    # `put` neither writes nor switches: the caller keeps running.
    assert websocket.sent == []
    eventlet.sleep(0.01)
    assert websocket.sent == ["4a"]
    writes.put(message("b"))
    eventlet.sleep(0.01)
    assert websocket.sent == ["4a", "4b"]
    # Each burst had a greenthread of its own, which ended with it.
    assert len(websocket.writers) == 2


def test_none_shuts_the_reading_down_after_what_came_before_it():
    # Reading only: eventlet's closing frame still goes out once the handler returns.
    websocket = StandInWebSocket()
    writes = WriteQueue(websocket, [])
    writes.put(message("last"))
    writes.put(None)
    writes.put(message("too late"))
    writes.join()
    assert websocket.sent == ["4last"]
    assert websocket.socket.shutdowns == [socket.SHUT_RD]
    writes.put(message("later still"))
    eventlet.sleep(0.01)
    assert websocket.sent == ["4last"]


def test_join_waits_for_every_queued_write():
    websocket = StandInWebSocket(send_seconds=0.01)
    writes = WriteQueue(websocket, [])
    for text in ("a", "b", "c"):
        writes.put(message(text))
    writes.join()
    assert websocket.sent == ["4a", "4b", "4c"]


def test_join_returns_at_once_with_nothing_queued():
    writes = WriteQueue(StandInWebSocket(), [])
    with eventlet.Timeout(1):
        writes.join()


@pytest.mark.parametrize("waiters", [1, 3])
def test_a_failed_write_shuts_both_ways_drops_the_rest_and_frees_every_joiner(waiters):
    websocket = StandInWebSocket(fail_after=1)
    writes = WriteQueue(websocket, [message("a")])
    eventlet.sleep(0.01)
    for text in ("b", "c"):
        writes.put(message(text))
    joiners = [eventlet.spawn(writes.join) for _ in range(waiters)]
    with eventlet.Timeout(1):
        for joiner in joiners:
            joiner.wait()
    assert websocket.sent == ["4a"]
    assert websocket.socket.shutdowns == [socket.SHUT_RDWR]
    writes.put(message("d"))
    eventlet.sleep(0.01)
    assert websocket.sent == ["4a"]


def test_a_hub_timer_may_queue_a_packet():
    # pings.py queues each PING from a timer that runs in the hub, where nothing may switch.
    websocket = StandInWebSocket()
    writes = WriteQueue(websocket, [])
    get_hub().schedule_call_global(0, writes.put, packet.Packet(packet.PING))
    eventlet.sleep(0.01)
    assert websocket.sent == [packet.Packet(packet.PING).encode()]


def test_a_write_failing_otherwise_shuts_both_ways_too(caplog):
    websocket = StandInWebSocket(fail_after=1, failure=TypeError("not a frame"))
    writes = WriteQueue(websocket, [message("a")])
    eventlet.sleep(0.01)
    for text in ("b", "c"):
        writes.put(message(text))
    with eventlet.Timeout(1):
        writes.join()
    assert websocket.sent == ["4a"]
    assert websocket.socket.shutdowns == [socket.SHUT_RDWR]
    assert "could not write a packet" in caplog.text


def test_an_ended_queue_lets_go_of_its_websocket():
    # Engine.IO's socket, which holds the queue, outlives the connection by up to a ping
    # interval: the WebSocket (with its environ and buffers) must not live as long.
    websocket = StandInWebSocket()
    writes = WriteQueue(websocket, [message("last")])
    writes.put(None)
    writes.join()
    gone = weakref.ref(websocket)
    del websocket
    gc.collect()
    assert gone() is None
    writes.put(message("after the end"))
    writes.join()
