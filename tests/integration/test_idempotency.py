"""Idempotency-Key on POST /notifications: replay, conflict, key spaces, expiry, races."""

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.db import utcnow
from app.extensions import db
from app.models import IdempotencyRecord, Notification, User
from app.services.credentials import create_api_key
from tests.conftest import ApiClient, assert_error

BODY = {"to": ["u1", "u2"], "title": "Hello", "body": "World", "data": {"a": 1, "b": [1, 2]}}


def count_rows(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def post_raw(client, raw: str, key: str | None) -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/notifications", data=raw, content_type="application/json", headers=headers)


def post(client, body: dict[str, Any], key: str | None) -> Any:
    return post_raw(client, json.dumps(body), key)


def new_api_key(app, name: str) -> str:
    with app.app_context():
        secret = create_api_key(db.session, name).secret
        db.session.commit()
        return secret


def test_same_key_and_body_replays_the_first_response(app, producer):
    first = post(producer, BODY, "key-1")
    assert first.status_code == 201, first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    assert count_rows(app, Notification) == 2

    for _ in range(2):
        replay = post(producer, BODY, "key-1")
        assert replay.status_code == 201, replay.get_json()
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.get_json() == first.get_json()
    assert count_rows(app, Notification) == 2
    assert count_rows(app, User) == 2


def test_replay_ignores_key_order_and_whitespace(app, producer):
    first = post_raw(producer, json.dumps(BODY), "key-1")
    assert first.status_code == 201
    reordered = {key: BODY[key] for key in reversed(list(BODY))}
    reordered["data"] = {"b": [1, 2], "a": 1}
    spaced = json.dumps(reordered, indent=4).replace(":", " :\t")
    assert spaced != json.dumps(BODY)
    replay = post_raw(producer, "\n  " + spaced + "\n", "key-1")
    assert replay.status_code == 201, replay.get_json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert count_rows(app, Notification) == 2


def test_replay_does_not_reapply_recipient_fields(app, producer):
    body = {"to": [{"user_id": "u1", "name": "First"}], "title": "Hi"}
    assert post(producer, body, "key-1").status_code == 201
    producer.put("/users/u1", json={"name": "Changed since"})
    replay = post(producer, body, "key-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert producer.get("/users/u1").get_json()["name"] == "Changed since"


def test_without_a_key_every_request_sends(app, producer):
    first = post(producer, BODY, None)
    second = post(producer, BODY, None)
    assert first.status_code == second.status_code == 201
    assert first.get_json() != second.get_json()
    assert count_rows(app, Notification) == 4


def test_different_keys_send_separately(app, producer):
    first = post(producer, BODY, "key-1")
    second = post(producer, BODY, "key-2")
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert first.get_json() != second.get_json()
    assert count_rows(app, Notification) == 4


@pytest.mark.parametrize(
    "changed",
    [
        {**BODY, "title": "Other"},
        {**BODY, "to": ["u2", "u1"]},
        {**BODY, "data": {"a": 1, "b": [2, 1]}},
        {**BODY, "priority": "normal"},  # the default spelled out is still another body
    ],
    ids=["title", "recipient-order", "data", "explicit-default"],
)
def test_same_key_with_a_different_body_is_409(app, producer, changed):
    first = post(producer, BODY, "key-1")
    assert first.status_code == 201
    conflict = post(producer, changed, "key-1")
    assert_error(conflict, 409, "idempotency_conflict")
    assert "Idempotent-Replayed" not in conflict.headers
    assert count_rows(app, Notification) == 2
    # The first response is still the one replayed.
    replay = post(producer, BODY, "key-1")
    assert replay.get_json() == first.get_json()
    assert count_rows(app, Notification) == 2


def test_key_length_limit(app, producer):
    error = assert_error(post(producer, BODY, "k" * 256), 422, "validation_error")
    assert "Idempotency-Key" in error["details"], error
    assert count_rows(app, Notification) == 0
    assert count_rows(app, IdempotencyRecord) == 0

    longest = post(producer, BODY, "k" * 255)
    assert longest.status_code == 201, longest.get_json()
    replay = post(producer, BODY, "k" * 255)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == longest.get_json()
    assert count_rows(app, Notification) == 2


def test_invalid_request_does_not_claim_the_key(app, producer):
    assert_error(post(producer, {**BODY, "title": ""}, "key-1"), 422)
    assert count_rows(app, IdempotencyRecord) == 0
    response = post(producer, BODY, "key-1")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert count_rows(app, Notification) == 2


def test_api_keys_have_separate_key_spaces(app, client, producer):
    other = ApiClient(client, new_api_key(app, "other"))
    first = post(producer, BODY, "shared-key")
    second = post(other, {**BODY, "title": "Different body"}, "shared-key")
    assert first.status_code == 201
    assert second.status_code == 201, second.get_json()
    assert "Idempotent-Replayed" not in second.headers
    assert first.get_json() != second.get_json()

    same_body = post(other, BODY, "fresh-for-other")
    assert "Idempotent-Replayed" not in same_body.headers
    assert count_rows(app, Notification) == 6

    # Each key still replays its own first response.
    assert post(producer, BODY, "shared-key").get_json() == first.get_json()
    replay = post(other, {**BODY, "title": "Different body"}, "shared-key")
    assert replay.get_json() == second.get_json()
    assert count_rows(app, Notification) == 6


def test_expired_record_is_treated_as_new(app, producer):
    first = post(producer, BODY, "key-1")
    assert first.status_code == 201
    with app.app_context():
        db.session.execute(
            update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=24, minutes=1))
        )
        db.session.commit()

    again = post(producer, {**BODY, "title": "Different is fine now"}, "key-1")
    assert again.status_code == 201, again.get_json()
    assert "Idempotent-Replayed" not in again.headers
    assert again.get_json() != first.get_json()
    assert count_rows(app, Notification) == 4

    # The fresh record now guards the key.
    replay = post(producer, {**BODY, "title": "Different is fine now"}, "key-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == again.get_json()
    assert_error(post(producer, BODY, "key-1"), 409, "idempotency_conflict")
    assert count_rows(app, Notification) == 4


def test_record_younger_than_24_hours_still_replays(app, producer):
    first = post(producer, BODY, "key-1")
    with app.app_context():
        db.session.execute(
            update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=23, minutes=59))
        )
        db.session.commit()
    replay = post(producer, BODY, "key-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert count_rows(app, Notification) == 2


def _race(app, api_key: str, count: int) -> list[tuple[int, Any, str | None]]:
    """`count` threads POST the same body with the same key at once."""
    barrier = threading.Barrier(count)
    results: list[tuple[int, Any, str | None] | None] = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            client = app.test_client()
            barrier.wait(timeout=30)
            response = client.post(
                "/notifications",
                json={"to": "racer", "title": "Once", "channels": ["in_app", "email"]},
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "race"},
            )
            results[index] = (
                response.status_code,
                response.get_json(),
                response.headers.get("Idempotent-Replayed"),
            )
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert errors == []
    assert None not in results
    return results  # type: ignore[return-value]


@pytest.mark.postgres_only
@pytest.mark.parametrize("count", [2, 8])
def test_concurrent_duplicates_send_exactly_once(app, api_key, count):
    results = _race(app, api_key, count)
    statuses = [status for status, _, _ in results]
    bodies = [body for _, body, _ in results]
    assert statuses == [201] * count, results
    assert all(body == bodies[0] for body in bodies), results
    [sent] = bodies[0]["notifications"]
    assert sent["user_id"] == "racer"
    replayed = [flag for _, _, flag in results]
    assert replayed.count("true") == count - 1, results
    assert replayed.count(None) == 1, results

    assert count_rows(app, Notification) == 1
    assert count_rows(app, User) == 1
    assert count_rows(app, IdempotencyRecord) == 1
    with app.app_context():
        stored_id = db.session.scalar(select(Notification.id))
    assert str(stored_id) == sent["id"]
