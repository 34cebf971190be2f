"""The Redis bus between processes, able to carry many emits in one message.

python-socketio's RedisManager publishes one message per emit: a send to 10,000 recipients
was 20,000 publishes from the request, and as many messages for every web process to decode.
`emit_many` publishes them in chunks instead; the listener of every other process unpacks a
chunk into the ordinary emits, so everything else about the bus is unchanged.

In a web process `emit_many` only queues: one background task publishes, in the order emits
were queued, and hands each message on to another that emits to this process's own sockets.
So a request never waits on Redis or on a socket write per recipient, the other processes
work on their sockets while this one works on its own, and emits queued in some order (a
send group's events, in commit order) leave in that order.

Each process hands on only the emits for rooms one of its own sockets is in: python-socketio
builds and encodes an emit's packet before it finds the room empty, some 11 µs, and with two
web processes half of a send's emits are for the other one's sockets. And an emit to one room
with no callback (every emit this server makes on the bus) takes a shorter path to its sockets
than python-socketio's general one (`_handle_emit`).
"""

import logging
import threading
from collections.abc import Iterator
from typing import Any

from engineio import packet as eio_packet
from socketio import RedisManager, packet

from app.realtime import wire_json
from app.realtime.rooms import IndexedRooms

EMITS_PER_MESSAGE = 500
"""Emits carried by one published message (a few hundred bytes each)."""
EMIT_MANY = "emit_many"
log = logging.getLogger(__name__)


class BatchingRedisManager(IndexedRooms, RedisManager):
    """A RedisManager with `emit_many` (and rooms indexed by socket), speaking orjson."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel, json=wire_json)
        # How this process's own messages start (the host id is dumped first).
        self._own_prefix = wire_json.dumps({"host_id": self.host_id})[:-1].encode() + b","
        # Made by `start_publishing`. Until then (and in a worker process, for good) there is
        # no background task: emits are published at once.
        self._outgoing: Any = None
        self._local_emits: Any = None
        # Batches queued, and published (or given up on), so far: see `wait_until_published`.
        self._queued = self._published = 0
        self._publishing = threading.Condition()
        # The listener and the publisher may both make the client first (threading mode).
        self._connecting = threading.Lock()

    def initialize(self) -> None:
        super().initialize()
        self.start_publishing()

    def _redis_connect(self) -> None:
        """The client and the listener's subscription, made once.

        python-socketio calls this when its listener must subscribe again and when a
        publish fails, and its own version made a new client and subscription each time:
        the client dropped then closed, once collected, its pool's connections, the
        listener's subscription among them, and the listener subscribed again a second
        later, so what the other processes published meanwhile never reached this process's
        sockets. redis-py's pool reconnects on its own, and a subscription subscribes again
        to its channels when its connection comes back."""
        with self._connecting:
            if self.redis is None:
                super()._redis_connect()
        self.connected = True

    def start_publishing(self) -> None:
        """From now on `emit_many` only queues, for background tasks to publish and emit.
        A web process calls this as it starts serving, so that no request waits on Redis to
        announce; a worker process never does: its emits are published before its jobs end.
        Called again, it does nothing."""
        if self._outgoing is not None:
            return
        self._outgoing = self.server.eio.create_queue()
        self._local_emits = self.server.eio.create_queue()
        self.server.start_background_task(self._publish_forever)
        self.server.start_background_task(self._emit_locally_forever)

    def emit_many(self, emits: list[tuple[str, Any, str]], namespace: str = "/") -> None:
        """Emit each (event, data, room): to the other processes in a message per
        EMITS_PER_MESSAGE, then to this process's sockets. Once publishing has started this
        never waits: it queues, and emits leave in the order they were queued."""
        messages = [
            {"event": event, "data": [data], "room": room, "namespace": namespace}
            for event, data, room in emits
        ]
        if self._outgoing is None:
            for chunk in _chunks(messages):
                self._publish_chunk(chunk)
        else:
            with self._publishing:
                self._queued += 1
                self._outgoing.put((self._queued, messages))

    def wait_until_published(self) -> None:
        """Wait until what `emit_many` queued so far is out to the other processes (or was
        given up on, Redis being down): a request that waits answers only once its events
        are on their way, so a process that stops after answering has not lost them."""
        with self._publishing:
            queued = self._queued
            self._publishing.wait_for(lambda: self._published >= queued)

    def _publish_chunk(self, chunk: list[dict[str, Any]]) -> bool:
        """Whether the chunk went out. python-socketio's `_publish` tries twice, then logs
        what it cannot send (Redis down or hanging, or data that does not serialize) and
        gives up on it: the tabs catch up when they reconnect."""
        message = {"host_id": self.host_id, "method": EMIT_MANY, "emits": chunk}
        return self._publish(message) is not None

    def _publish_forever(self) -> None:
        while True:
            batch, queued = self._outgoing.get()
            messages = list(queued)
            # What was queued meanwhile goes in the same messages: fewer for every process.
            while not self._outgoing.empty():
                batch, queued = self._outgoing.get_nowait()
                messages.extend(queued)
            chunks = list(_chunks(messages))
            redis_answers = True
            for chunk in chunks:
                # Once one chunk failed, the rest of this backlog is given up at once: on a
                # Redis that hangs, each would wait out redis-py's timeout (5 s) twice again,
                # and the requests waiting on the backlog with it.
                redis_answers = redis_answers and self._publish_chunk(chunk)
                if not redis_answers:
                    log.error("gave up publishing %d emits: Redis did not answer", len(chunk))
            # The requests waiting on the backlog are woken before this process's sockets get
            # it: handed over chunk by chunk between publishes, the local emits took the CPU
            # whenever a publish waited on Redis, and a 10,000-recipient send answered only
            # once nearly all of them were done.
            with self._publishing:
                self._published = batch
                self._publishing.notify_all()
            for chunk in chunks:
                self._local_emits.put(chunk)

    def _emit_locally_forever(self) -> None:
        while True:
            for message in self._local_emits.get():
                if not self._reaches_a_socket_here(message):
                    continue
                try:
                    self._handle_emit(message)
                except Exception:
                    # One socket's failure must not stop the others' events, nor this task.
                    log.exception("could not emit %s to %s", message["event"], message["room"])

    def _handle_emit(self, message: dict[str, Any]) -> None:
        """Emit what came off the bus (or `emit_many` queued) to this process's sockets.

        python-socketio's own, for an emit to one room with no callback, nothing skipped and
        nothing binary, went through four layers that each unpacked and repacked the emit,
        and copied the room into a generator, for what is a packet encoded once and queued
        on each of the room's sockets (a fan-out spent 7 to 8 % less CPU per notification
        without them). Those emits take that short path; any other takes python-socketio's,
        and so does every emit when packets may carry binary attachments."""
        room = message.get("room")
        data = message.get("data")
        if (
            not isinstance(room, str)
            or not isinstance(data, list)
            or message.get("callback") is not None
            or message.get("skip_sid") is not None
            or message.get("binary")
            or self.server.packet_class.uses_binary_events
        ):
            super()._handle_emit(message)
            return
        namespace = message.get("namespace")
        members = self.rooms.get(namespace, {}).get(room)
        if not members:
            return
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[message["event"], *_arguments(data)]
        ).encode()
        message_packet = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        # A copy: a socket whose client stopped answering pings leaves the room as it is
        # sent to.
        for eio_sid in list(members._fwdm.values()):
            self.server._send_eio_packet(eio_sid, message_packet)

    def _listen(self) -> Iterator[Any]:
        for message in super()._listen():
            if isinstance(message, bytes) and message.startswith(self._own_prefix):
                # Emitted here already: skipped undecoded, rather than each of its emits
                # decoded and then skipped by the listener loop for its host id.
                continue
            try:
                data = wire_json.loads(message)
            except ValueError:
                continue  # not ours: someone else publishing on the channel's name
            if not isinstance(data, dict) or data.get("method") != EMIT_MANY:
                yield data
                continue
            # Each with the host id, as python-socketio's own emits carry theirs.
            for emit in data.get("emits", []):
                if self._reaches_a_socket_here(emit):
                    yield emit | {"method": "emit", "host_id": data.get("host_id")}

    def _reaches_a_socket_here(self, emit: dict[str, Any]) -> bool:
        """Whether an emit of `emit_many` may reach a socket of this process (see the module's
        docstring). Checked just before the emit, with no switch between, as python-socketio
        itself looks for the room's sockets."""
        room = emit.get("room")
        return not isinstance(room, str) or room in self.rooms.get(emit.get("namespace"), ())


def _arguments(data: list[Any]) -> list[Any]:
    """An emit's arguments, as python-socketio unpacks its `data`: a lone None is none, a
    lone tuple (queued here, not yet through JSON) is several."""
    if len(data) != 1:
        return data
    if data[0] is None:
        return []
    return list(data[0]) if isinstance(data[0], tuple) else data


def _chunks(messages: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(messages), EMITS_PER_MESSAGE):
        yield messages[start : start + EMITS_PER_MESSAGE]
