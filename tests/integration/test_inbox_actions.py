"""Inbox state changes: read, unread, archive, unarchive, read-all and seen, and the read
receipt the producer sees."""

import re
import time
from datetime import datetime

import pytest

from tests.conftest import NOTIFICATION_FIELDS, assert_error, send

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def assert_utc_timestamp(value):
    assert isinstance(value, str), value
    assert RFC3339_UTC.match(value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset().total_seconds() == 0
    return parsed


def tick():
    """Let the clock move on, so a timestamp set again would differ from the first one."""
    time.sleep(0.005)


def unread_count(api):
    response = api.get("/me/unread-count")
    assert response.status_code == 200
    return response.get_json()["unread_count"]


def act(api, notification_id, action):
    """POST /me/notifications/{id}/{action}; the returned notification (asserting 200)."""
    response = api.post(f"/me/notifications/{notification_id}/{action}")
    assert response.status_code == 200, response.get_data(as_text=True)
    notification = response.get_json()
    assert set(notification) == NOTIFICATION_FIELDS
    assert notification["id"] == notification_id
    return notification


def own(api, notification_id):
    response = api.get(f"/me/notifications/{notification_id}")
    assert response.status_code == 200
    return response.get_json()


def receipt(producer, notification_id):
    response = producer.get(f"/notifications/{notification_id}")
    assert response.status_code == 200
    return response.get_json()


def send_to(producer, user_id, count=1, **fields):
    ids = []
    for number in range(count):
        ids += send(producer, **{"to": user_id, "title": f"n{number}", **fields})
    return ids


# Read and unread


def test_read_sets_read_at_and_seen_at(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(
        producer, to="ana", title="Hi", body="there", category="comment", data={"a": [1, 2]}
    )
    before = own(ana, notification_id)
    read = act(ana, notification_id, "read")
    read_at = assert_utc_timestamp(read["read_at"])
    seen_at = assert_utc_timestamp(read["seen_at"])
    assert read["archived_at"] is None
    assert seen_at <= read_at
    # Everything else is unchanged.
    for field in NOTIFICATION_FIELDS - {"read_at", "seen_at"}:
        assert read[field] == before[field], field
    assert own(ana, notification_id) == read


def test_read_again_keeps_the_first_read_at(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    first = act(ana, notification_id, "read")
    tick()
    second = act(ana, notification_id, "read")
    assert second["read_at"] == first["read_at"]
    assert second["seen_at"] == first["seen_at"]
    assert own(ana, notification_id)["read_at"] == first["read_at"]


def test_read_keeps_an_earlier_seen_at(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    assert ana.post("/me/notifications/seen", json={"ids": [notification_id]}).status_code == 200
    seen_at = own(ana, notification_id)["seen_at"]
    assert seen_at is not None
    tick()
    read = act(ana, notification_id, "read")
    assert read["seen_at"] == seen_at
    assert read["read_at"] is not None


def test_unread_clears_read_at(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    read = act(ana, notification_id, "read")
    unread = act(ana, notification_id, "unread")
    assert unread["read_at"] is None
    # It was still shown to the user.
    assert unread["seen_at"] == read["seen_at"]
    assert own(ana, notification_id)["read_at"] is None
    # Unread again is harmless.
    assert act(ana, notification_id, "unread")["read_at"] is None
    # Reading after unread records a new read time.
    tick()
    again = act(ana, notification_id, "read")
    assert again["read_at"] is not None
    assert datetime.fromisoformat(again["read_at"]) > datetime.fromisoformat(read["read_at"])


def test_unread_count_follows_read_and_unread(producer, user_client):
    ana = user_client("ana")
    first, second = send_to(producer, "ana", 2)
    assert unread_count(ana) == 2
    act(ana, first, "read")
    assert unread_count(ana) == 1
    act(ana, first, "read")
    assert unread_count(ana) == 1
    act(ana, second, "read")
    assert unread_count(ana) == 0
    act(ana, first, "unread")
    assert unread_count(ana) == 1


# Archive and unarchive


def test_archive_and_unarchive(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    assert unread_count(ana) == 1
    archived = act(ana, notification_id, "archive")
    assert_utc_timestamp(archived["archived_at"])
    assert archived["read_at"] is None
    assert unread_count(ana) == 0
    tick()
    again = act(ana, notification_id, "archive")
    assert again["archived_at"] == archived["archived_at"]
    assert unread_count(ana) == 0
    restored = act(ana, notification_id, "unarchive")
    assert restored["archived_at"] is None
    assert restored["read_at"] is None
    assert unread_count(ana) == 1
    assert act(ana, notification_id, "unarchive")["archived_at"] is None
    assert unread_count(ana) == 1


def test_archived_notifications_do_not_count_as_unread(producer, user_client):
    ana = user_client("ana")
    first, second, third = send_to(producer, "ana", 3)
    act(ana, first, "archive")
    act(ana, second, "archive")
    assert unread_count(ana) == 1
    # Unread while archived: still not counted.
    act(ana, first, "read")
    act(ana, first, "unread")
    assert unread_count(ana) == 1
    page = ana.get("/me/notifications").get_json()
    assert page["unread_count"] == 1
    assert [item["id"] for item in page["items"]] == [third]
    act(ana, first, "unarchive")
    assert unread_count(ana) == 2


def test_read_and_archive_are_independent(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    read = act(ana, notification_id, "read")
    archived = act(ana, notification_id, "archive")
    assert archived["read_at"] == read["read_at"]
    unarchived = act(ana, notification_id, "unarchive")
    assert unarchived["read_at"] == read["read_at"]
    assert unread_count(ana) == 0


@pytest.mark.parametrize("action", ["read", "unread", "archive", "unarchive"])
def test_actions_on_others_or_unknown_notifications_are_404(producer, user_client, action):
    ana = user_client("ana")
    bob = user_client("bob")
    [bobs] = send(producer, to="bob", title="Bob's")
    [email_only] = send(producer, to="ana", title="Mail", channels=["email"])
    for notification_id in (bobs, "987654321", "abc", "0", email_only):
        response = ana.post(f"/me/notifications/{notification_id}/{action}")
        assert_error(response, 404, "not_found")
    # Bob's notification was not touched.
    untouched = own(bob, bobs)
    assert untouched["read_at"] is None
    assert untouched["seen_at"] is None
    assert untouched["archived_at"] is None
    assert unread_count(bob) == 1


@pytest.mark.parametrize("action", ["read", "unread", "archive", "unarchive"])
def test_actions_need_a_user_token(producer, client, action):
    [notification_id] = send(producer, to="ana", title="Hi")
    assert_error(client.post(f"/me/notifications/{notification_id}/{action}"), 401)
    assert_error(producer.post(f"/me/notifications/{notification_id}/{action}"), 403, "forbidden")


# Read all


def test_read_all_with_no_body(producer, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    ids = send_to(producer, "ana", 3)
    act(ana, ids[0], "read")
    first_read_at = own(ana, ids[0])["read_at"]
    tick()
    send_to(producer, "bob", 2)
    response = ana.post("/me/notifications/read-all")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"updated": 2, "unread_count": 0}
    for notification_id in ids:
        notification = own(ana, notification_id)
        assert notification["read_at"] is not None
        assert notification["seen_at"] is not None
    # The one already read keeps its first read time.
    assert own(ana, ids[0])["read_at"] == first_read_at
    assert unread_count(ana) == 0
    assert unread_count(bob) == 2
    assert all(item["read_at"] is None for item in bob.get("/me/notifications").get_json()["items"])


def test_read_all_with_empty_object(producer, user_client):
    ana = user_client("ana")
    send_to(producer, "ana", 2, category="comment")
    send_to(producer, "ana", 1, category="like")
    response = ana.post("/me/notifications/read-all", json={})
    assert response.status_code == 200
    assert response.get_json() == {"updated": 3, "unread_count": 0}
    again = ana.post("/me/notifications/read-all", json={})
    assert again.get_json() == {"updated": 0, "unread_count": 0}


def test_read_all_of_one_category(producer, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    comments = send_to(producer, "ana", 3, category="comment")
    likes = send_to(producer, "ana", 2, category="like")
    bobs = send_to(producer, "bob", 2, category="comment")
    act(ana, comments[0], "read")
    response = ana.post("/me/notifications/read-all", json={"category": "comment"})
    assert response.status_code == 200
    assert response.get_json() == {"updated": 2, "unread_count": 2}
    assert unread_count(ana) == 2
    for notification_id in comments:
        assert own(ana, notification_id)["read_at"] is not None
    for notification_id in likes:
        assert own(ana, notification_id)["read_at"] is None
    for notification_id in bobs:
        assert own(bob, notification_id)["read_at"] is None
    assert unread_count(bob) == 2
    # A category with nothing unread.
    none = ana.post("/me/notifications/read-all", json={"category": "mention"})
    assert none.get_json() == {"updated": 0, "unread_count": 2}
    rest = ana.post("/me/notifications/read-all")
    assert rest.get_json() == {"updated": 2, "unread_count": 0}


def test_read_all_sets_read_time_as_rfc3339(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    assert ana.post("/me/notifications/read-all").status_code == 200
    notification = own(ana, notification_id)
    assert_utc_timestamp(notification["read_at"])
    assert_utc_timestamp(notification["seen_at"])
    detail = receipt(producer, notification_id)
    assert detail["read_at"] == notification["read_at"]
    assert detail["seen_at"] == notification["seen_at"]


@pytest.mark.parametrize(
    "body",
    [{"category": "Not Valid"}, {"category": 5}, {"categories": "comment"}, {"category": ""}],
)
def test_read_all_validation(producer, user_client, body):
    ana = user_client("ana")
    send_to(producer, "ana", 1)
    assert_error(ana.post("/me/notifications/read-all", json=body), 422, "validation_error")
    assert unread_count(ana) == 1


# Seen


def test_seen_marks_only_the_callers(producer, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    first, second, third = send_to(producer, "ana", 3)
    [bobs] = send_to(producer, "bob", 1)
    response = ana.post("/me/notifications/seen", json={"ids": [first, second, bobs, "987654321"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["updated"] == 2
    assert body["unread_count"] == 3
    for notification_id in (first, second):
        notification = own(ana, notification_id)
        assert_utc_timestamp(notification["seen_at"])
        # Seen is not read.
        assert notification["read_at"] is None
    assert own(ana, third)["seen_at"] is None
    assert own(bob, bobs)["seen_at"] is None
    assert receipt(producer, bobs)["seen_at"] is None
    assert unread_count(ana) == 3


def test_seen_again_keeps_the_first_time(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send_to(producer, "ana", 1)
    assert ana.post("/me/notifications/seen", json={"ids": [notification_id]}).status_code == 200
    seen_at = own(ana, notification_id)["seen_at"]
    tick()
    again = ana.post("/me/notifications/seen", json={"ids": [notification_id, notification_id]})
    assert again.status_code == 200
    assert again.get_json()["updated"] == 0
    assert own(ana, notification_id)["seen_at"] == seen_at


def test_seen_with_only_unknown_ids(producer, user_client):
    ana = user_client("ana")
    [bobs] = send(producer, to="bob", title="Bob's")
    response = ana.post("/me/notifications/seen", json={"ids": [bobs, "987654321"]})
    assert response.status_code == 200
    assert response.get_json()["updated"] == 0
    assert receipt(producer, bobs)["seen_at"] is None


def test_seen_accepts_1000_ids(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send_to(producer, "ana", 1)
    ids = [notification_id] + [str(n) for n in range(100_000, 100_999)]
    assert len(ids) == 1000
    response = ana.post("/me/notifications/seen", json={"ids": ids})
    assert response.status_code == 200
    assert response.get_json()["updated"] == 1
    assert own(ana, notification_id)["seen_at"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"ids": []},
        {"ids": [str(n) for n in range(1, 1002)]},
        {"ids": ["abc"]},
        {"ids": ["1", "x1"]},
        {"ids": ["0"]},
        {"ids": ["-1"]},
        {"ids": ["99999999999999999999"]},
        {"ids": [""]},
        {"ids": "1"},
        {"ids": None},
        {},
        {"ids": ["1"], "extra": True},
    ],
)
def test_seen_validation(producer, user_client, body):
    ana = user_client("ana")
    [notification_id] = send_to(producer, "ana", 1)
    assert_error(ana.post("/me/notifications/seen", json=body), 422, "validation_error")
    assert own(ana, notification_id)["seen_at"] is None


def test_seen_needs_a_json_body(user_client):
    ana = user_client("ana")
    assert_error(ana.post("/me/notifications/seen"), 415)
    response = ana.post(
        "/me/notifications/seen", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "malformed_json")


# Timestamps and the read receipt


def test_timestamps_are_rfc3339_utc(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    notification = act(ana, notification_id, "read")
    notification = act(ana, notification_id, "archive")
    created = assert_utc_timestamp(notification["created_at"])
    for field in ("seen_at", "read_at", "archived_at"):
        assert assert_utc_timestamp(notification[field]) >= created
    listed = ana.get("/me/notifications", query_string={"archived": "true"}).get_json()
    for field in ("created_at", "seen_at", "read_at", "archived_at"):
        assert_utc_timestamp(listed["items"][0][field])


def test_producer_sees_the_read_receipt(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(producer, to="ana", title="Hi")
    before = receipt(producer, notification_id)
    assert before["read_at"] is None
    assert before["seen_at"] is None
    assert ana.post("/me/notifications/seen", json={"ids": [notification_id]}).status_code == 200
    seen = receipt(producer, notification_id)
    assert_utc_timestamp(seen["seen_at"])
    assert seen["read_at"] is None
    tick()
    read = act(ana, notification_id, "read")
    after = receipt(producer, notification_id)
    assert after["read_at"] == read["read_at"]
    assert after["seen_at"] == read["seen_at"] == seen["seen_at"]
    assert_utc_timestamp(after["read_at"])
    act(ana, notification_id, "unread")
    assert receipt(producer, notification_id)["read_at"] is None
