"""Socket.IO room bookkeeping that does not slow down as sockets are added.

python-socketio finds a disconnecting socket's rooms by scanning every room of the namespace
(a copy of the whole table, per disconnect): with 10,000 sockets in a process, each in its own
room and its user's, a disconnect cost milliseconds and a reconnect storm minutes of CPU.
`IndexedRooms` keeps each socket's rooms beside the table, so a disconnect touches only its
own.
"""

from collections import defaultdict
from typing import Any

from socketio import Manager


class IndexedRooms:
    """Mixed into a python-socketio manager, ahead of it: the rooms of each socket."""

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: defaultdict[tuple[str, str], set[Any]] = defaultdict(set)

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._rooms_of[(namespace, sid)].add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **_kwargs: Any) -> None:
        # What python-socketio's own does, but leaving only this socket's rooms.
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]


class LocalManager(IndexedRooms, Manager):
    """One process's rooms (the embedded mode)."""
