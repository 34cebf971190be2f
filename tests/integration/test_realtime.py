"""Socket.IO in one process: who may connect, which room, which events, and catch-up.

Uses Flask-SocketIO's test client on an app without REDIS_URL (emits are delivered at once);
tests/integration/test_realtime_processes.py covers real servers sharing Redis.
"""

import pytest
from flask import Flask
from sqlalchemy import insert

from app import defaults
from app.db import utcnow
from app.extensions import db, socketio
from app.models import Notification
from app.services.credentials import create_api_key, mint_user_token
from tests.conftest import NOTIFICATION_FIELDS, TEST_SECRET, ApiClient, send


@pytest.fixture
def rt_app(app_with) -> Flask:
    """An app on the migrated test database that emits in-process (no Redis)."""
    return app_with(REDIS_URL=None)


@pytest.fixture
def rt_producer(rt_app: Flask) -> ApiClient:
    with rt_app.app_context():
        key = create_api_key(db.session, "realtime").secret
        db.session.commit()
    return ApiClient(rt_app.test_client(), key)


def token_for(rt_app: Flask, producer: ApiClient, user_id: str) -> str:
    assert producer.put(f"/users/{user_id}", json={}).status_code in {200, 201}
    return producer.post(f"/users/{user_id}/tokens", json={}).get_json()["token"]


def connect(rt_app: Flask, **auth):
    return socketio.test_client(rt_app, auth=auth or None)


def events(client, name: str | None = None) -> list:
    received = client.get_received()
    return [(e["name"], e["args"][0]) for e in received if name is None or e["name"] == name]


def test_refuses_connections_without_a_valid_user_token(rt_app, rt_producer):
    token_for(rt_app, rt_producer, "ana")
    expired = mint_user_token(TEST_SECRET, "ana", -5).token
    forged = mint_user_token("another-secret-0123456789-0123456789", "ana", 60).token
    ghost = mint_user_token(TEST_SECRET, "nobody", 60).token
    for auth in [
        {},
        {"token": ""},
        {"token": rt_producer.credential},
        {"token": expired},
        {"token": forged},
        {"token": ghost},
        {"token": 5},
    ]:
        client = socketio.test_client(rt_app, auth=auth)
        assert not client.is_connected(), auth
    no_auth = socketio.test_client(rt_app)
    assert not no_auth.is_connected()


def test_refuses_a_token_minted_before_its_user_was_created_again(rt_app, rt_producer):
    old_token = token_for(rt_app, rt_producer, "ana")
    assert rt_producer.delete("/users/ana").status_code == 204
    new_token = token_for(rt_app, rt_producer, "ana")
    assert not connect(rt_app, token=old_token).is_connected()
    assert connect(rt_app, token=new_token).is_connected()


def test_refuses_a_bad_last_id(rt_app, rt_producer):
    token = token_for(rt_app, rt_producer, "ana")
    for last_id in ["abc", "0", -1, "99999999999999999999", [1]]:
        assert not connect(rt_app, token=token, last_id=last_id).is_connected(), last_id


def test_connect_sends_the_unread_count(rt_app, rt_producer):
    token = token_for(rt_app, rt_producer, "ana")
    send(rt_producer, to="ana", title="one")
    client = connect(rt_app, token=token)
    assert client.is_connected()
    assert events(client) == [("unread_count", {"unread_count": 1})]


def test_a_send_reaches_only_its_recipients(rt_app, rt_producer):
    ana = connect(rt_app, token=token_for(rt_app, rt_producer, "ana"))
    ana_second_tab = connect(rt_app, token=token_for(rt_app, rt_producer, "ana"))
    ben = connect(rt_app, token=token_for(rt_app, rt_producer, "ben"))
    for client in (ana, ana_second_tab, ben):
        client.get_received()
    [notification_id] = send(rt_producer, to="ana", title="Hi <b>", data={"k": 1})
    for client in (ana, ana_second_tab):
        received = events(client)
        assert [name for name, _ in received] == ["notification", "unread_count"]
        notification = received[0][1]
        assert set(notification) == NOTIFICATION_FIELDS
        assert notification["id"] == notification_id
        assert notification["title"] == "Hi <b>"
        assert notification["data"] == {"k": 1}
        assert received[1][1] == {"unread_count": 1}
    assert events(ben) == []


def test_email_only_notifications_are_not_pushed(rt_app, rt_producer):
    ana = connect(rt_app, token=token_for(rt_app, rt_producer, "ana"))
    ana.get_received()
    send(rt_producer, to="ana", title="mail", channels=["email"])
    assert events(ana, "notification") == []


def test_bulk_send_pushes_each_recipient_its_own(rt_app, rt_producer):
    users = [f"bulk{i}" for i in range(30)]
    clients = {user: connect(rt_app, token=token_for(rt_app, rt_producer, user)) for user in users}
    for client in clients.values():
        client.get_received()
    ids = send(rt_producer, to=users, title="all")
    for user, notification_id in zip(users, ids, strict=True):
        received = events(clients[user])
        assert received == [
            ("notification", received[0][1]),
            ("unread_count", {"unread_count": 1}),
        ]
        assert received[0][1]["id"] == notification_id
        assert received[0][1]["user_id"] == user


def test_state_changes_reach_every_tab(rt_app, rt_producer):
    token = token_for(rt_app, rt_producer, "ana")
    tab = connect(rt_app, token=token)
    [notification_id] = send(rt_producer, to="ana", title="x")
    tab.get_received()
    me = ApiClient(rt_app.test_client(), token)

    read = me.post(f"/me/notifications/{notification_id}/read").get_json()
    assert events(tab) == [
        (
            "notification_updated",
            {
                "id": notification_id,
                "seen_at": read["seen_at"],
                "read_at": read["read_at"],
                "archived_at": None,
            },
        ),
        ("unread_count", {"unread_count": 0}),
    ]
    me.post(f"/me/notifications/{notification_id}/unread")
    assert events(tab)[1] == ("unread_count", {"unread_count": 1})
    archived = me.post(f"/me/notifications/{notification_id}/archive").get_json()
    updated = events(tab)
    assert updated[0][1]["archived_at"] == archived["archived_at"]
    assert updated[1] == ("unread_count", {"unread_count": 0})
    me.post(f"/me/notifications/{notification_id}/unarchive")
    assert events(tab)[0][1]["archived_at"] is None


def test_read_all_and_seen_push_their_ids(rt_app, rt_producer):
    token = token_for(rt_app, rt_producer, "ana")
    tab = connect(rt_app, token=token)
    ids = [send(rt_producer, to="ana", title=f"n{i}")[0] for i in range(3)]
    me = ApiClient(rt_app.test_client(), token)
    tab.get_received()

    me.post("/me/notifications/seen", json={"ids": ids[:2]})
    [(name, seen)] = events(tab)
    assert name == "notification_updated"
    assert seen["ids"] == ids[:2]
    assert seen["seen_at"].endswith("Z")

    me.post("/me/notifications/read-all")
    received = events(tab)
    assert received[0][0] == "notification_updated"
    assert sorted(received[0][1]["ids"], key=int) == ids
    assert received[0][1]["read_at"].endswith("Z")
    assert received[1] == ("unread_count", {"unread_count": 0})

    me.post("/me/notifications/read-all")
    assert events(tab) == []


def test_no_client_event_joins_another_room(rt_app, rt_producer):
    ana = connect(rt_app, token=token_for(rt_app, rt_producer, "ana"))
    token_for(rt_app, rt_producer, "ben")
    for event in ("join", "join_room", "subscribe"):
        ana.emit(event, {"room": "user:ben"})
    ana.get_received()
    send(rt_producer, to="ben", title="private")
    assert events(ana) == []


def test_reconnect_with_last_id_replays_exactly_what_was_missed(rt_app, rt_producer):
    token = token_for(rt_app, rt_producer, "ana")
    [seen_id] = send(rt_producer, to="ana", title="before")
    tab = connect(rt_app, token=token)
    tab.disconnect()
    missed = [send(rt_producer, to="ana", title=f"missed {i}")[0] for i in range(3)]
    send(rt_producer, to="ben", title="not ana's")

    again = connect(rt_app, token=token, last_id=seen_id)
    received = events(again)
    assert [name for name, _ in received] == ["notification"] * 3 + ["unread_count"]
    assert [payload["id"] for _, payload in received[:3]] == missed
    assert received[3][1] == {"unread_count": 4}


def test_reconnect_with_nothing_shown_missed_gets_only_the_count(rt_app, rt_producer):
    """Archived, email-only and other users' notifications are not replayed; the count
    still comes, as of the reconnect."""
    token = token_for(rt_app, rt_producer, "ana")
    [seen_id] = send(rt_producer, to="ana", title="seen")
    archived = [send(rt_producer, to="ana", title=f"archived {i}")[0] for i in range(2)]
    user = ApiClient(rt_app.test_client(), token)
    for notification_id in archived:
        assert user.post(f"/me/notifications/{notification_id}/archive").status_code == 200
    send(rt_producer, to="ana", title="mail", channels=["email"])
    send(rt_producer, to="ben", title="not ana's")

    again = connect(rt_app, token=token, last_id=archived[-1])
    assert events(again) == [("unread_count", {"unread_count": 1})]
    again.disconnect()
    replay = connect(rt_app, token=token, last_id=seen_id)
    assert events(replay) == [("unread_count", {"unread_count": 1})]


def test_catch_up_past_the_bound_asks_the_client_to_page(rt_app, rt_producer):
    token = token_for(rt_app, rt_producer, "ana")
    [last_seen] = send(rt_producer, to="ana", title="seen")
    now = utcnow()
    total = defaults.CATCH_UP_MAX + 5
    with rt_app.app_context():
        db.session.execute(
            insert(Notification),
            [
                {
                    "user_id": "ana",
                    "category": "general",
                    "title": f"n{i}",
                    "data": {},
                    "priority": "normal",
                    "in_app": True,
                    "created_at": now,
                }
                for i in range(total)
            ],
        )
        db.session.commit()
    first_id = int(last_seen) + 1
    client = connect(rt_app, token=token, last_id=last_seen)
    received = events(client)
    replayed = [payload["id"] for name, payload in received if name == "notification"]
    assert len(replayed) == defaults.CATCH_UP_MAX
    assert replayed == [str(first_id + i) for i in range(defaults.CATCH_UP_MAX)]
    assert ("resync", {"after": replayed[-1]}) in received
    rest = (
        ApiClient(rt_app.test_client(), token)
        .get(f"/me/notifications?after={replayed[-1]}&limit=100")
        .get_json()
    )
    assert len(rest["items"]) == total - defaults.CATCH_UP_MAX


@pytest.mark.postgres_only
def test_connects_get_in_while_the_apis_pool_is_exhausted(app_with):
    """Connects read through a pool of their own, so a storm of them and the API never wait
    for each other's connections."""
    busy = app_with(
        REDIS_URL=None,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2},
    )
    with busy.app_context():
        key = create_api_key(db.session, "busy").secret
        db.session.commit()
    token = token_for(busy, ApiClient(busy.test_client(), key), "ana")
    with busy.app_context(), db.engine.connect():
        client = connect(busy, token=token)
        assert client.is_connected()
        assert events(client) == [("unread_count", {"unread_count": 0})]
