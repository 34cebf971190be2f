"""The Redis bus's listener (app/realtime/bus.py), fed what Redis would carry."""

from socketio import RedisManager

from app.realtime import wire_json
from app.realtime.bus import EMITS_PER_MESSAGE, BatchingRedisManager

CHANNEL = "notify-test-bus"


def published_by(manager: BatchingRedisManager, emits: list[tuple[str, object, str]]) -> list:
    """What `emit_many` publishes (the process holds no socket yet, so it publishes at
    once), as the bytes a subscriber receives."""
    sent: list[bytes] = []
    manager._publish = lambda data: sent.append(wire_json.dumps(data).encode())
    manager.emit_many(emits)
    return sent


def test_the_listener_skips_its_own_messages_and_unpacks_the_others(monkeypatch):
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
    ]
    assert heard[-1] == {"method": "disconnect", "sid": "s", "host_id": "h"}
