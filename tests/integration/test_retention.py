"""Retention: what is past its time is deleted (notifications with their deliveries, expired
idempotency records, settled webhook events), in batches, and nothing else; tabs hear the
new unread count; a real worker does it on its own."""

from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app.db import utcnow
from app.extensions import db, socketio
from app.jobs.retention import Purged, purge
from app.models import Delivery, IdempotencyRecord, Notification, WebhookEvent
from tests.conftest import ApiClient, send
from tests.stack import Stack


def _age(app: Flask, model, ids: list, days: float, column: str = "created_at") -> None:
    """Move rows back in time by `days`."""
    with app.app_context():
        then = utcnow() - timedelta(days=days)
        db.session.execute(update(model).where(model.id.in_(ids)).values({column: then}))
        db.session.commit()


def _count(app: Flask, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def _purge(app: Flask) -> Purged:
    with app.app_context():
        return purge(utcnow())


def test_old_notifications_go_with_their_deliveries_in_batches(app, producer, monkeypatch):
    monkeypatch.setitem(app.config, "RETENTION_DAYS", 30)
    monkeypatch.setitem(app.config, "RETENTION_BATCH", 2)
    assert producer.put("/users/ana", json={"email": "ana@example.com"}).status_code == 201
    old = [
        int(i)
        for _ in range(5)
        for i in send(producer, to="ana", title="old", channels=["in_app", "email"])
    ]
    kept = [int(i) for i in send(producer, to="ana", title="recent", channels=["in_app", "email"])]
    _age(app, Notification, old, days=31)
    _age(app, Notification, kept, days=29)

    assert _purge(app) == Purged(notifications=5, idempotency_records=0, webhook_events=0)
    assert _count(app, Notification) == 1
    assert _count(app, Notification, Notification.id.in_(kept)) == 1
    assert _count(app, Delivery) == 1
    assert _count(app, Delivery, Delivery.notification_id.in_(kept)) == 1
    # A second pass finds nothing more.
    assert _purge(app).notifications == 0


def test_retention_days_zero_keeps_notifications_for_ever(app, producer, monkeypatch):
    monkeypatch.setitem(app.config, "RETENTION_DAYS", 0)
    ids = [int(i) for i in send(producer, to="ana", title="ancient")]
    _age(app, Notification, ids, days=10_000)
    assert _purge(app).notifications == 0
    assert _count(app, Notification) == 1


def test_expired_idempotency_records_go_and_live_ones_still_replay(app, producer):
    body = {"to": "ana", "title": "once"}
    first = producer.post("/notifications", json=body, headers={"Idempotency-Key": "old"})
    second = producer.post("/notifications", json=body, headers={"Idempotency-Key": "fresh"})
    assert first.status_code == second.status_code == 201
    with app.app_context():
        db.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )
        db.session.commit()
    assert _purge(app).idempotency_records == 1
    assert _count(app, IdempotencyRecord) == 1
    replay = producer.post("/notifications", json=body, headers={"Idempotency-Key": "fresh"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == second.get_json()


def test_settled_webhook_events_go_after_their_retention_and_queued_ones_stay(
    app, producer, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_EVENT_RETENTION_DAYS", 7)
    hook = producer.post(
        "/webhooks", json={"url": "https://hooks.example/in", "events": ["notification.read"]}
    )
    assert hook.status_code == 201
    ana = _reader(producer)
    for notification_id in (
        send(producer, to="ana", title="a")
        + send(producer, to="ana", title="b")
        + send(producer, to="ana", title="c")
    ):
        assert ana.post(f"/me/notifications/{notification_id}/read").status_code == 200
    with app.app_context():
        sent_old, failed_old, queued_old = db.session.scalars(
            select(WebhookEvent.id).order_by(WebhookEvent.id)
        ).all()
        db.session.execute(
            update(WebhookEvent).where(WebhookEvent.id == sent_old).values(status="sent")
        )
        db.session.execute(
            update(WebhookEvent).where(WebhookEvent.id == failed_old).values(status="failed")
        )
        db.session.commit()
    _age(app, WebhookEvent, [sent_old, failed_old, queued_old], days=8, column="updated_at")

    assert _purge(app).webhook_events == 2
    with app.app_context():
        assert db.session.scalars(select(WebhookEvent.id)).all() == [queued_old]


def _reader(producer: ApiClient) -> ApiClient:
    assert producer.put("/users/ana", json={}).status_code in {200, 201}
    token = producer.post("/users/ana/tokens", json={}).get_json()["token"]
    return ApiClient(producer.client, token)


@pytest.fixture
def rt_app(app_with) -> Flask:
    """An app on the test database that emits in-process (no Redis)."""
    return app_with(REDIS_URL=None, RETENTION_DAYS=30)


def test_tabs_hear_the_unread_count_drop_when_unread_notifications_expire(rt_app, api_key):
    producer = ApiClient(rt_app.test_client(), api_key)
    token = _reader(producer).credential
    old = [
        int(i)
        for i in send(producer, to="ana", title="old") + send(producer, to="ana", title="older")
    ]
    send(producer, to="ana", title="new")
    _age(rt_app, Notification, old, days=31)
    tab = socketio.test_client(rt_app, auth={"token": token})
    assert tab.get_received() == [
        {"name": "unread_count", "args": [{"unread_count": 3}], "namespace": "/"}
    ]
    assert _purge(rt_app).notifications == 2
    assert tab.get_received() == [
        {"name": "unread_count", "args": [{"unread_count": 1}], "namespace": "/"}
    ]


def test_a_real_worker_runs_retention_on_its_own(tmp_path: Path):
    stack = Stack(tmp_path, "retention", RETENTION_DAYS="30", RETENTION_INTERVAL_SECONDS="0.5")
    try:
        stack.start()
        old = stack.send(to="ana", title="old")
        recent = stack.send(to="ana", title="recent")
        with psycopg2.connect(stack.env["DATABASE_URL"]) as connection, connection.cursor() as cur:
            cur.execute(
                "UPDATE notifications SET created_at = now() - interval '31 days' WHERE id = %s",
                (int(old[0]),),
            )
        connection.close()
        stack.start_worker()

        def only_the_recent_one_left() -> bool:
            listed = stack.call("GET", "/users/ana/notifications")["items"]
            return [notification["id"] for notification in listed] == recent

        stack.wait_for(only_the_recent_one_left, what="the worker to delete the old one")
    finally:
        stack.close()


def test_the_retention_command_deletes_now_and_says_how_much(app, producer, monkeypatch):
    monkeypatch.setitem(app.config, "RETENTION_DAYS", 30)
    old = [int(i) for i in send(producer, to=["ana", "bob"], title="old")]
    _age(app, Notification, old, days=40)
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert result.output == ("deleted 2 notifications, 0 idempotency records, 0 webhook events\n")
    assert _count(app, Notification) == 0
