"""The Redis bus (app/realtime/bus.py): its listener, fed what Redis would carry, and its
publishing in the background, against stand-ins for Redis and the server."""

import queue
import threading
import time
from types import SimpleNamespace

from engineio.packet import MESSAGE
from socketio import Manager, RedisManager

from app.realtime import wire_json
from app.realtime.bus import EMITS_PER_MESSAGE, BatchingRedisManager
from app.realtime.packets import Packet
from tests.waiting import wait_until

CHANNEL = "notify-test-bus"
TIMEOUT = 5


def published_by(manager: BatchingRedisManager, emits: list[tuple[str, object, str]]) -> list:
    """What `emit_many` publishes (the process holds no socket yet, so it publishes at
    once), as the bytes a subscriber receives."""
    sent: list[bytes] = []

    def publish(data):
        sent.append(wire_json.dumps(data).encode())
        return 1  # as Redis answers: the subscribers it reached

    manager._publish = publish
    manager.emit_many(emits)
    return sent


def with_sockets_in(manager: BatchingRedisManager, rooms: list[str]) -> None:
    """A socket of this process in each of `rooms`, as a connect's `join_room` leaves it."""
    for n, room in enumerate(rooms):
        manager.basic_enter_room(f"sid-{n}", "/", room, eio_sid=f"eio-{n}")


def test_the_listener_skips_its_own_messages_and_unpacks_the_others_for_its_rooms(monkeypatch):
    here = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    there = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    theirs = [("notification", {"id": str(n)}, f"user:{n}") for n in range(EMITS_PER_MESSAGE + 1)]
    carried = [
        *published_by(here, [("unread_count", {"unread_count": 1}, "user:me")]),
        *published_by(there, theirs),
        b"not json",
        wire_json.dumps({"method": "disconnect", "sid": "s", "host_id": "h"}).encode(),
    ]
    assert len(carried) == 5  # ours, theirs in two messages, and two more
    monkeypatch.setattr(RedisManager, "_listen", lambda self: iter(carried))
    # Only some of the rooms have a socket here: the others' emits are for other processes.
    here_too = [room for n, (_, _, room) in enumerate(theirs) if n % 3 == 0]
    with_sockets_in(here, here_too)

    heard = list(here._listen())

    assert heard[:-1] == [
        {
            "method": "emit",
            "event": event,
            "data": [data],
            "room": room,
            "namespace": "/",
            "host_id": there.host_id,
        }
        for event, data, room in theirs
        if room in here_too
    ]
    assert len(heard) - 1 == len(here_too) == EMITS_PER_MESSAGE // 3 + 1
    assert heard[-1] == {"method": "disconnect", "sid": "s", "host_id": "h"}


class StandInServer:
    """What the manager asks of python-socketio's server to publish in the background:
    plain threads and queues, as in the threading mode."""

    def __init__(self) -> None:
        self.eio = SimpleNamespace(create_queue=queue.Queue)

    def start_background_task(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread


def test_once_publishing_has_started_emits_are_published_then_emitted_in_order():
    manager = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    manager.server = StandInServer()
    order: list[tuple[str, str]] = []
    may_publish = threading.Event()

    def publish(data):
        may_publish.wait(5)
        order.append(("published", data["emits"][0]["room"]))
        return 1

    manager._publish = publish
    manager._handle_emit = lambda message: order.append(("emitted", message["room"]))
    manager.start_publishing()
    manager.start_publishing()  # a second call starts nothing more

    big = [("notification", {}, f"big:{n}") for n in range(EMITS_PER_MESSAGE + 1)]
    with_sockets_in(manager, [*(room for _, _, room in big), "after"])
    manager.emit_many(big)
    manager.emit_many([("unread_count", {}, "after")])
    # Both were queued without waiting for the publisher, which is held back.
    assert order == []
    # A request waits until its events are out to the other processes.
    waiter = threading.Thread(target=manager.wait_until_published, daemon=True)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()
    may_publish.set()
    waiter.join(5)
    assert not waiter.is_alive()
    assert ("published", "big:0") in order
    wait_until(
        lambda: sum(step == "emitted" for step, _ in order) >= len(big) + 1,
        "everything to be emitted",
        TIMEOUT,
    )

    # The first room of each published message: the second emit_many went out after the
    # first's messages (alone, or in the last of them if it was queued meanwhile).
    published = [room for step, room in order if step == "published"]
    last = f"big:{EMITS_PER_MESSAGE}"
    assert published in (["big:0", last], ["big:0", last, "after"])
    assert [room for step, room in order if step == "emitted"] == [
        *(room for _, _, room in big),
        "after",
    ]
    # This process's sockets got each message only once it was out to the others.
    assert order.index(("published", "big:0")) < order.index(("emitted", "big:0"))
    assert order.index(("published", last)) < order.index(("emitted", last))


def test_a_backlog_is_given_up_after_its_first_chunk_fails_and_still_emitted_here():
    manager = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    manager.server = StandInServer()
    tried: list[str] = []
    emitted: list[str] = []

    def publish(data):
        tried.append(data["emits"][0]["room"])
        return None  # python-socketio's `_publish` giving up after its two tries

    manager._publish = publish
    manager._handle_emit = lambda message: emitted.append(message["room"])
    manager.start_publishing()
    backlog = [("notification", {}, f"user:{n}") for n in range(3 * EMITS_PER_MESSAGE)]
    with_sockets_in(manager, [room for _, _, room in backlog])
    manager.emit_many(backlog)
    manager.wait_until_published()
    # Only the first chunk waited on Redis; this process's sockets got all three.
    assert tried == ["user:0"]
    wait_until(lambda: len(emitted) >= len(backlog), "everything to be emitted here", TIMEOUT)
    assert emitted == [room for _, _, room in backlog]


def test_emits_for_rooms_without_a_socket_here_are_published_but_not_emitted_here():
    manager = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    manager.server = StandInServer()
    published: list[str] = []
    emitted: list[str] = []

    def publish(data):
        published.extend(emit["room"] for emit in data["emits"])
        return 1

    manager._publish = publish
    manager._handle_emit = lambda message: emitted.append(message["room"])
    manager.start_publishing()
    with_sockets_in(manager, ["user:here", "user:both"])
    rooms = ["user:elsewhere", "user:here", "user:gone", "user:both"]
    manager.emit_many([("notification", {}, room) for room in rooms])
    manager.emit_many([("unread_count", {}, "user:here")])
    manager.wait_until_published()

    wait_until(lambda: len(emitted) >= 3, "the emits for this process's rooms", TIMEOUT)
    time.sleep(0.1)  # nothing more comes
    assert published == [*rooms, "user:here"]
    assert emitted == ["user:here", "user:both", "user:here"]


class RecordingServer:
    """What an emit asks of python-socketio's server, recording each packet sent."""

    def __init__(self) -> None:
        self.packet_class = Packet
        self.sent: list[tuple[str, int, str]] = []

    def _send_eio_packet(self, eio_sid, eio_packet):
        self.sent.append((eio_sid, eio_packet.packet_type, eio_packet.encode()))


def test_the_short_path_sends_the_packets_python_socketios_own_path_sends(monkeypatch):
    manager = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    manager.server = RecordingServer()
    manager.basic_enter_room("a", "/", "user:1", eio_sid="eio-a")
    manager.basic_enter_room("b", "/", "user:1", eio_sid="eio-b")
    manager.basic_enter_room("c", "/", "user:2", eio_sid="eio-c")
    manager.basic_enter_room("d", "/admin", "user:1", eio_sid="eio-d")
    # Each shape, whether the short path takes it, and how many sockets it reaches.
    shapes = [
        ({"room": "user:1", "data": [{"id": "7", "title": "é"}]}, True, 2),
        ({"room": "user:1", "data": [None]}, True, 2),
        ({"room": "user:1", "data": []}, True, 2),
        ({"room": "user:1", "data": [1, "two", [3]]}, True, 2),
        # Queued by this process, not yet through JSON: a tuple is several arguments.
        ({"room": "user:1", "data": [(1, "two")]}, True, 2),
        ({"room": "user:1", "data": [(1, "two"), 3]}, True, 2),
        ({"room": "user:1", "data": [{"n": 1}], "namespace": "/admin"}, True, 1),
        ({"room": "user:nobody", "data": [{}]}, True, 0),
        ({"room": "user:1", "data": [{}], "namespace": "/nowhere"}, True, 0),
        ({"room": "user:1", "data": [{}], "skip_sid": "a"}, False, 1),
        ({"room": ["user:1", "user:2"], "data": [{}]}, False, 3),
        ({"room": None, "data": [{}]}, False, 0),
    ]
    for shape, short, reaches in shapes:
        message = {"method": "emit", "event": "notification", "namespace": "/"} | shape
        manager.server.sent = []
        with monkeypatch.context() as patch:
            if short:
                patch.setattr(Manager, "emit", python_socketios_path_taken)
            manager._handle_emit(dict(message))
        taken = manager.server.sent
        manager.server.sent = []
        RedisManager._handle_emit(manager, dict(message))
        assert taken == manager.server.sent, shape
        assert len(taken) == reaches, shape
    # And what reaches a socket is what a Socket.IO client reads as an event.
    manager.server.sent = []
    manager._handle_emit(
        {"event": "unread_count", "data": [{"unread_count": 2}], "room": "user:1", "namespace": "/"}
    )
    assert manager.server.sent == [
        ("eio-a", MESSAGE, '42["unread_count",{"unread_count":2}]'),
        ("eio-b", MESSAGE, '42["unread_count",{"unread_count":2}]'),
    ]


def python_socketios_path_taken(*_args, **_kwargs):
    raise AssertionError("python-socketio's emit ran for a shape the short path takes")


def test_a_socket_leaving_the_room_as_it_is_sent_to_does_not_stop_the_others():
    manager = BatchingRedisManager("redis://127.0.0.1:6379/0", channel=CHANNEL)
    manager.server = RecordingServer()
    with_sockets_in(manager, ["user:1", "user:1", "user:1"])
    send = manager.server._send_eio_packet

    def send_then_leave(eio_sid, eio_packet):
        # As engine.io closes a socket whose client stopped answering pings, when sent to.
        send(eio_sid, eio_packet)
        manager.basic_disconnect(eio_sid.replace("eio", "sid"), "/")

    manager.server._send_eio_packet = send_then_leave
    manager._handle_emit(
        {"event": "notification", "data": [{}], "room": "user:1", "namespace": "/"}
    )
    assert [eio_sid for eio_sid, _, _ in manager.server.sent] == ["eio-0", "eio-1", "eio-2"]
    assert "user:1" not in manager.rooms.get("/", {})
