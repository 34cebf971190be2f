"""What a send announces (app/realtime/events.py), in the order the bus carries it."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.api.responses import dump_many
from app.api.schemas import NotificationOut
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


def test_each_pushed_notification_is_what_the_schema_makes_of_it(monkeypatch):
    # A send with content in two locales, interleaved, and one notification not in the inbox;
    # then sends whose notifications differ from the first in one field each (data: an equal
    # dict that is another object, then another value).
    first = stored(1, "ana")
    first.data = {"order": 7, "lines": [{"sku": "a"}]}
    french = {"title": "Commande", "body": "En route"}
    others = [
        {"title": "Autre"},
        {"body": "Paid"},
        {"category": "billing"},
        {"data": {"order": 7, "lines": [{"sku": "a"}]}},
        {"data": {}},
        {"action_url": "/orders/7"},
        {"priority": "high"},
        {"created_at": first.created_at + timedelta(1)},
    ]
    notifications = [
        first,
        replace(first, id=2, user_id="ben"),
        replace(first, id=3, user_id="chloe", **french),
        replace(first, id=4, user_id="dan"),
        replace(first, id=5, user_id="eve", **french),
        replace(first, id=6, user_id="fay", in_app=False),
    ] + [replace(first, id=70 + n, **fields) for n, fields in enumerate(others)]
    counts = {n.user_id: 1 for n in notifications if n.in_app}
    emitted = announced(monkeypatch, notifications, counts)
    pushed = [data for name, data, _ in emitted if name == "notification"]
    assert pushed == dump_many(NotificationOut, [n for n in notifications if n.in_app])
    assert [data["title"] for data in pushed[:5]] == ["n1", "n1", "Commande", "n1", "Commande"]
    assert [data["id"] for data in pushed[5:]] == [str(70 + n) for n in range(len(others))]
