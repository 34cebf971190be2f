"""The Redis bus between processes, able to carry many emits in one message.

python-socketio's RedisManager publishes one message per emit: a send to 10,000 recipients
was 20,000 publishes from the request, and as many messages for every web process to decode.
`emit_many` publishes them in chunks instead; the listener of every other process unpacks a
chunk into the ordinary emits, so everything else about the bus is unchanged.

Once the process holds sockets, `emit_many` only queues: one background task publishes, in
the order emits were queued, and hands each batch on to another that emits to this process's
own sockets. So a request never waits on Redis or on a socket write per recipient, the other
processes work on their sockets while this one works on its own, and emits queued in some
order (a send group's events, in commit order) leave in that order.
"""

import logging
from collections.abc import Iterator
from typing import Any

from socketio import RedisManager

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
        # Made when the server takes its first socket. Before that, and in a worker process,
        # which never takes one, there is no background task: emits are published at once.
        self._outgoing: Any = None
        self._local_emits: Any = None

    def initialize(self) -> None:
        super().initialize()
        self._outgoing = self.server.eio.create_queue()
        self._local_emits = self.server.eio.create_queue()
        self.server.start_background_task(self._publish_forever)
        self.server.start_background_task(self._emit_locally_forever)

    def emit_many(self, emits: list[tuple[str, Any, str]], namespace: str = "/") -> None:
        """Emit each (event, data, room): to the other processes in a message per
        EMITS_PER_MESSAGE, then to this process's sockets. Once the process holds sockets
        this never waits: it queues, and emits leave in the order they were queued."""
        messages = [
            {"event": event, "data": [data], "room": room, "namespace": namespace}
            for event, data, room in emits
        ]
        if self._outgoing is None:
            self._publish_all(messages)
        else:
            self._outgoing.put(messages)

    def _publish_all(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), EMITS_PER_MESSAGE):
            chunk = messages[start : start + EMITS_PER_MESSAGE]
            self._publish({"host_id": self.host_id, "method": EMIT_MANY, "emits": chunk})

    def _publish_forever(self) -> None:
        while True:
            messages = list(self._outgoing.get())
            # What was queued meanwhile goes in the same messages: fewer for every process.
            while not self._outgoing.empty():
                messages.extend(self._outgoing.get_nowait())
            try:
                self._publish_all(messages)
            except Exception:
                # Redis errors are logged and given up on inside `_publish`; this is anything
                # else (data that does not serialize): this process's sockets still get theirs.
                log.exception("could not publish %s emits", len(messages))
            self._local_emits.put(messages)

    def _emit_locally_forever(self) -> None:
        while True:
            for message in self._local_emits.get():
                try:
                    self._handle_emit(message)
                except Exception:
                    # One socket's failure must not stop the others' events, nor this task.
                    log.exception("could not emit %s to %s", message["event"], message["room"])

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
                yield emit | {"method": "emit", "host_id": data.get("host_id")}
