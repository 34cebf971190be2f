"""What a send announces (app/realtime/events.py), in the order the bus carries it."""

from datetime import UTC, datetime

from app.realtime import events
from app.realtime.bus import EMITS_PER_MESSAGE
from app.services.send import StoredNotification


def stored(notification_id: int, user_id: str, in_app: bool = True) -> StoredNotification:
    return StoredNotification(
        id=notification_id,
        user_id=user_id,
        category="general",
        title=f"n{notification_id}",
        body=None,
        data={},
        action_url=None,
        priority="normal",
        in_app=in_app,
        created_at=datetime(2026, 12, 7, tzinfo=UTC),
    )


def announced(monkeypatch, notifications, counts) -> list[tuple[str, object, str]]:
    emitted: list[tuple[str, object, str]] = []
    monkeypatch.setattr(events, "_emit_all", emitted.extend)
    events.announce_created(notifications, counts)
    return emitted


def test_a_recipients_unread_count_comes_right_after_their_last_notification(monkeypatch):
    # As the sends' coalescer hands them over: ana is in two sends, ben's second
    # notification is email only, and counts are the last send's.
    notifications = [stored(1, "ana"), stored(2, "ben"), stored(3, "ana"), stored(4, "ben", False)]
    emitted = announced(monkeypatch, notifications, {"ana": 5, "ben": 1})
    assert [(name, room) for name, _, room in emitted] == [
        ("notification", "user:ana"),
        ("notification", "user:ben"),
        ("unread_count", "user:ben"),
        ("notification", "user:ana"),
        ("unread_count", "user:ana"),
    ]
    assert [data["id"] for name, data, _ in emitted if name == "notification"] == ["1", "2", "3"]
    assert [data for name, data, _ in emitted if name == "unread_count"] == [
        {"unread_count": 1},
        {"unread_count": 5},
    ]


def test_a_large_sends_two_events_per_recipient_travel_in_the_same_bus_message(monkeypatch):
    users = [f"u{n}" for n in range(3 * EMITS_PER_MESSAGE // 2 + 7)]
    notifications = [stored(n, user) for n, user in enumerate(users, start=1)]
    emitted = announced(monkeypatch, notifications, dict.fromkeys(users, 1))
    assert len(emitted) == 2 * len(users)
    for start in range(0, len(emitted), EMITS_PER_MESSAGE):
        message = emitted[start : start + EMITS_PER_MESSAGE]
        rooms = [room for _, _, room in message]
        assert rooms[0::2] == rooms[1::2]
        assert {name for name, _, _ in message[0::2]} == {"notification"}
        assert {name for name, _, _ in message[1::2]} == {"unread_count"}
