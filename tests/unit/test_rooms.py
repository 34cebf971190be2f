"""The indexed room bookkeeping behaves exactly as python-socketio's own, operation for
operation, while a disconnect no longer scans every room."""

import random

import socketio
from socketio import Manager

from app.realtime.rooms import LocalManager

NAMESPACE = "/"


def managed(manager: Manager) -> Manager:
    socketio.Server(client_manager=manager, async_mode="threading")
    return manager


def snapshot(manager: Manager, canonical: dict[str, str]) -> dict[object, frozenset[str]]:
    """Every room and its members, with each sid named by when it connected (the two managers
    generate different sids for the same connection)."""
    rooms = manager.rooms.get(NAMESPACE, {})
    return {
        canonical.get(name, name): frozenset(canonical[sid] for sid in members)
        for name, members in rooms.items()
    }


def test_same_rooms_as_python_socketio_after_random_operations():
    plain, indexed = managed(Manager()), managed(LocalManager())
    chooser = random.Random(7)
    names: dict[str, str] = {}
    connected: list[tuple[str, str]] = []
    for step in range(2000):
        action = chooser.choice(["connect", "enter", "enter", "leave", "close", "disconnect"])
        if action == "connect" or not connected:
            pair = (plain.connect(f"e{step}", NAMESPACE), indexed.connect(f"e{step}", NAMESPACE))
            names |= {pair[0]: f"c{step}", pair[1]: f"c{step}"}
            connected.append(pair)
            continue
        pair = chooser.choice(connected)
        room = f"user:{chooser.randrange(20)}"
        for manager, sid in zip((plain, indexed), pair, strict=True):
            if action == "enter":
                manager.enter_room(sid, NAMESPACE, room)
            elif action == "leave":
                manager.leave_room(sid, NAMESPACE, room)
            elif action == "close":
                manager.close_room(room, NAMESPACE)
            else:
                manager.disconnect(sid, NAMESPACE)
        if action == "disconnect":
            connected.remove(pair)
        assert snapshot(plain, names) == snapshot(indexed, names), (step, action)
        assert {names.get(r, r) for r in plain.get_rooms(pair[0], NAMESPACE)} == {
            names.get(r, r) for r in indexed.get_rooms(pair[1], NAMESPACE)
        }


def test_a_disconnect_leaves_only_its_own_rooms():
    manager = managed(LocalManager())
    sids = [manager.connect(f"eio{n}", NAMESPACE) for n in range(3)]
    for sid in sids:
        manager.enter_room(sid, NAMESPACE, "user:shared")
    manager.disconnect(sids[0], NAMESPACE)
    assert manager.get_rooms(sids[0], NAMESPACE) == []
    shared = sorted(sid for sid, _ in manager.get_participants(NAMESPACE, "user:shared"))
    assert shared == sorted(sids[1:])
    assert sids[0] not in manager.rooms[NAMESPACE]
