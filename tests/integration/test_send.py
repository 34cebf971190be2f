"""POST /notifications and GET /notifications/{id}: recipients, stored fields, deliveries,
the older single-recipient form and every validation rule."""

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Delivery, Notification, User
from tests.conftest import NOTIFICATION_FIELDS, assert_error, send

DELIVERY_KEYS = {"channel", "status", "attempts", "last_error", "updated_at"}


def count_rows(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def sent(response) -> list[dict[str, str]]:
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"notifications"}
    for item in body["notifications"]:
        assert set(item) == {"id", "user_id"}
        assert isinstance(item["id"], str)
    return body["notifications"]


def detail(producer, notification_id: str) -> dict[str, Any]:
    response = producer.get(f"/notifications/{notification_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# Recipients


def test_single_recipient(producer):
    [item] = sent(producer.post("/notifications", json={"to": "u1", "title": "Hi"}))
    assert item["user_id"] == "u1"
    notification = detail(producer, item["id"])
    assert notification["id"] == item["id"]
    assert notification["user_id"] == "u1"
    listing = producer.get("/users/u1/notifications").get_json()
    assert [entry["id"] for entry in listing["items"]] == [item["id"]]
    assert listing["unread_count"] == 1


def test_list_of_ids_and_recipient_objects(app, producer):
    producer.put("/users/known", json={"email": "old@example.com", "name": "Known"})
    response = producer.post(
        "/notifications",
        json={
            "to": [
                "plain",
                {"user_id": "obj", "email": "obj@example.com", "locale": "de"},
                {"user_id": "known", "email": "new@example.com"},
            ],
            "title": "Hi",
        },
    )
    items = sent(response)
    assert [item["user_id"] for item in items] == ["plain", "obj", "known"]
    assert len({item["id"] for item in items}) == 3

    plain = producer.get("/users/plain").get_json()
    assert plain["email"] is None
    obj = producer.get("/users/obj").get_json()
    assert obj["email"] == "obj@example.com"
    assert obj["locale"] == "de"
    known = producer.get("/users/known").get_json()
    assert known["email"] == "new@example.com"
    assert known["name"] == "Known"  # not named by the object, so kept
    assert count_rows(app, User) == 3


def test_recipient_object_as_the_whole_to(producer):
    [item] = sent(
        producer.post(
            "/notifications",
            json={"to": {"user_id": "solo", "phone": "+12025550123"}, "title": "Hi"},
        )
    )
    assert item["user_id"] == "solo"
    assert producer.get("/users/solo").get_json()["phone"] == "+12025550123"


def test_recipient_object_null_clears_a_field(producer):
    producer.put("/users/u1", json={"email": "a@example.com", "name": "Ana"})
    send(producer, to=[{"user_id": "u1", "email": None}], title="Hi")
    user = producer.get("/users/u1").get_json()
    assert user["email"] is None
    assert user["name"] == "Ana"


def test_unknown_plain_ids_are_created(app, producer):
    assert count_rows(app, User) == 0
    send(producer, to=["new-1", "new-2"], title="Hi")
    assert count_rows(app, User) == 2
    for user_id in ("new-1", "new-2"):
        assert producer.get(f"/users/{user_id}").status_code == 200


def test_duplicate_recipients_are_deduplicated_in_first_seen_order(app, producer):
    response = producer.post(
        "/notifications",
        json={
            "to": [
                "b",
                {"user_id": "a", "name": "A"},
                "b",
                "c",
                "a",
                {"user_id": "a", "email": "a@example.com"},
            ],
            "title": "Hi",
        },
    )
    items = sent(response)
    assert [item["user_id"] for item in items] == ["b", "a", "c"]
    assert count_rows(app, Notification) == 3
    for user_id in ("a", "b", "c"):
        assert count_rows(app, Notification, Notification.user_id == user_id) == 1
    user_a = producer.get("/users/a").get_json()
    assert user_a["name"] == "A"
    assert user_a["email"] == "a@example.com"


# Stored fields and deliveries


def test_every_field_is_stored_and_returned(producer):
    data = {
        "post_id": 42,
        "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
        "text": "Grüße 🎉 <b>not html</b>",
    }
    before = datetime.now(UTC)
    [notification_id] = send(
        producer,
        to="u1",
        category="comment.reply",
        title="New comment",
        body="Ana replied to you",
        data=data,
        action_url="https://example.com/posts/42?c=1#reply",
        channels=["in_app", "email"],
        priority="high",
    )
    notification = detail(producer, notification_id)
    assert set(notification) == NOTIFICATION_FIELDS | {"channels", "deliveries"}
    assert notification["id"] == notification_id
    assert notification["user_id"] == "u1"
    assert notification["category"] == "comment.reply"
    assert notification["title"] == "New comment"
    assert notification["body"] == "Ana replied to you"
    assert notification["data"] == data
    assert notification["action_url"] == "https://example.com/posts/42?c=1#reply"
    assert notification["priority"] == "high"
    assert notification["seen_at"] is None
    assert notification["read_at"] is None
    assert notification["archived_at"] is None
    created_at = datetime.fromisoformat(notification["created_at"])
    assert created_at.tzinfo is not None
    assert before.replace(microsecond=0) <= created_at <= datetime.now(UTC)

    [listed] = producer.get("/users/u1/notifications").get_json()["items"]
    assert set(listed) == NOTIFICATION_FIELDS
    assert listed == {key: notification[key] for key in NOTIFICATION_FIELDS}


def test_defaults(producer):
    [notification_id] = send(producer, to="u1", title="Plain")
    notification = detail(producer, notification_id)
    assert notification["category"] == "general"
    assert notification["priority"] == "normal"
    assert notification["body"] is None
    assert notification["data"] == {}
    assert notification["action_url"] is None
    assert notification["channels"] == ["in_app"]


@pytest.mark.parametrize("priority", ["low", "normal", "high", "critical"])
def test_every_priority_is_accepted(producer, priority):
    [notification_id] = send(producer, to="u1", title="P", priority=priority)
    assert detail(producer, notification_id)["priority"] == priority


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "https://example.com/a/b?x=1", "HTTPS://example.com/café?q=ü#à"],
)
def test_http_and_https_action_urls_are_accepted(producer, url):
    [notification_id] = send(producer, to="u1", title="P", action_url=url)
    assert detail(producer, notification_id)["action_url"] == url


def test_channels_produce_deliveries(producer, user_client):
    u1 = user_client("u1", email="u1@example.com", phone="+4915112345678")
    subscription = {"endpoint": "https://push.example/u1", "keys": {"p256dh": "k", "auth": "a"}}
    assert u1.post("/me/push-subscriptions", json=subscription).status_code == 201
    before = datetime.now(UTC)
    [notification_id] = send(
        producer, to="u1", title="All", channels=["push", "in_app", "sms", "email"]
    )
    notification = detail(producer, notification_id)
    assert sorted(notification["channels"]) == ["email", "in_app", "push", "sms"]
    deliveries = {entry["channel"]: entry for entry in notification["deliveries"]}
    assert len(notification["deliveries"]) == 4
    assert set(deliveries) == {"in_app", "email", "sms", "push"}
    for entry in notification["deliveries"]:
        assert set(entry) == DELIVERY_KEYS
        assert entry["last_error"] is None
        updated_at = datetime.fromisoformat(entry["updated_at"])
        assert before.replace(microsecond=0) <= updated_at <= datetime.now(UTC)
    assert deliveries["in_app"]["status"] == "sent"
    for channel in ("email", "sms", "push"):
        assert deliveries[channel]["status"] == "queued"
        assert deliveries[channel]["attempts"] == 0


def test_deliveries_rows_in_database(app, producer):
    recipients = [
        {"user_id": user, "email": f"{user}@example.com", "phone": "+4915112345678"}
        for user in ("u1", "u2")
    ]
    ids = send(producer, to=recipients, title="Mail", channels=["in_app", "email", "sms"])
    for notification_id in ids:
        condition = Delivery.notification_id == int(notification_id)
        assert count_rows(app, Delivery, condition) == 2
        assert count_rows(app, Delivery, condition, Delivery.status == "queued") == 2
    # in_app is derived, never stored as a delivery row.
    assert count_rows(app, Delivery, Delivery.channel == "in_app") == 0


def test_in_app_only_has_no_queued_deliveries(app, producer):
    [notification_id] = send(producer, to="u1", title="Inbox")
    notification = detail(producer, notification_id)
    assert [entry["channel"] for entry in notification["deliveries"]] == ["in_app"]
    assert notification["deliveries"][0]["status"] == "sent"
    assert count_rows(app, Delivery) == 0


def test_email_only_notification_is_tracked_but_not_in_the_inbox(producer, user_client):
    ana = user_client("u1", email="ana@example.com")
    [notification_id] = send(producer, to="u1", title="Mail only", channels=["email"])
    notification = detail(producer, notification_id)
    assert notification["channels"] == ["email"]
    assert [(d["channel"], d["status"]) for d in notification["deliveries"]] == [
        ("email", "queued")
    ]

    listing = producer.get("/users/u1/notifications").get_json()
    assert listing["items"] == []
    assert listing["unread_count"] == 0
    mine = ana.get("/me/notifications").get_json()
    assert mine["items"] == []
    assert mine["unread_count"] == 0
    assert ana.get("/me/unread-count").get_json() == {"unread_count": 0}
    assert_error(ana.get(f"/me/notifications/{notification_id}"), 404, "not_found")


# The older single-recipient form


def test_older_single_form_maps_to_current_fields(app, producer):
    assert producer.put("/users/legacy", json={"email": "legacy@example.com"}).status_code == 201
    response = producer.post(
        "/notifications",
        json={
            "user_id": "legacy",
            "type": "email",
            "title": "Old style",
            "message": "The body",
            "payload": {"k": [1, 2]},
        },
    )
    [item] = sent(response)
    assert item["user_id"] == "legacy"
    notification = detail(producer, item["id"])
    assert notification["user_id"] == "legacy"
    assert notification["title"] == "Old style"
    assert notification["body"] == "The body"
    assert notification["data"] == {"k": [1, 2]}
    assert notification["channels"] == ["email"]
    assert [(d["channel"], d["status"]) for d in notification["deliveries"]] == [
        ("email", "queued")
    ]
    assert count_rows(app, User, User.id == "legacy") == 1


def test_older_form_without_type_is_in_app(producer):
    [notification_id] = send(producer, user_id="legacy", title="Old", message="m")
    notification = detail(producer, notification_id)
    assert notification["channels"] == ["in_app"]
    assert notification["body"] == "m"
    assert producer.get("/users/legacy/notifications").get_json()["unread_count"] == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"user_id": "u1", "to": "u2", "title": "T"}, {"user_id", "to"}),
        (
            {"user_id": "u1", "type": "email", "channels": ["sms"], "title": "T"},
            {"type", "channels"},
        ),
        ({"user_id": "u1", "message": "m", "body": "b", "title": "T"}, {"message", "body"}),
        (
            {"user_id": "u1", "payload": {"a": 1}, "data": {"b": 2}, "title": "T"},
            {"payload", "data"},
        ),
        ({"to": "u1", "type": "email", "title": "T"}, {"type", "to"}),
        ({"to": "u1", "message": "m", "title": "T"}, {"message", "to"}),
        ({"to": "u1", "payload": {"a": 1}, "title": "T"}, {"payload", "to"}),
    ],
    ids=[
        "user_id+to",
        "type+channels",
        "message+body",
        "payload+data",
        "to+type",
        "to+message",
        "to+payload",
    ],
)
def test_mixing_older_and_current_fields_is_422(app, producer, body, fields):
    error = assert_error(producer.post("/notifications", json=body), 422, "validation_error")
    named = {key.split(".")[0] for key in error["details"]}
    assert named & fields, error
    assert count_rows(app, Notification) == 0
    assert count_rows(app, User) == 0


# Validation: every rule is a 422 naming the field, and nothing is written.

VALID: dict[str, Any] = {"to": "fresh", "title": "Hi"}


def _with(**changes: Any) -> dict[str, Any]:
    body = {**VALID, **changes}
    return {key: value for key, value in body.items() if value is not DROP}


DROP = object()

INVALID_BODIES = [
    ("title-missing", _with(title=DROP), "title"),
    ("title-empty", _with(title=""), "title"),
    ("title-201", _with(title="x" * 201), "title"),
    ("title-int", _with(title=5), "title"),
    ("title-null", _with(title=None), "title"),
    ("body-5001", _with(body="x" * 5001), "body"),
    ("body-int", _with(body=5), "body"),
    ("category-upper", _with(category="Comment"), "category"),
    ("category-space", _with(category="new comment"), "category"),
    ("category-empty", _with(category=""), "category"),
    ("category-65", _with(category="c" * 65), "category"),
    ("data-over-16k", _with(data={"blob": "x" * 16384}), "data"),
    ("data-list", _with(data=[1, 2]), "data"),
    ("data-string", _with(data="{}"), "data"),
    ("data-null", _with(data=None), "data"),
    ("action-url-javascript", _with(action_url="javascript:alert(1)"), "action_url"),
    ("action-url-ftp", _with(action_url="ftp://example.com/file"), "action_url"),
    ("action-url-relative", _with(action_url="/posts/42"), "action_url"),
    ("action-url-no-host", _with(action_url="https://"), "action_url"),
    ("action-url-data", _with(action_url="data:text/html,<script>"), "action_url"),
    ("action-url-int", _with(action_url=5), "action_url"),
    ("channel-unknown", _with(channels=["in_app", "fax"]), "channels"),
    ("channel-duplicate", _with(channels=["email", "in_app", "email"]), "channels"),
    ("channels-empty", _with(channels=[]), "channels"),
    ("channels-string", _with(channels="email"), "channels"),
    ("priority-unknown", _with(priority="urgent"), "priority"),
    ("priority-int", _with(priority=1), "priority"),
    ("to-missing", _with(to=DROP), "to"),
    ("to-empty-list", _with(to=[]), "to"),
    ("to-null", _with(to=None), "to"),
    ("to-int", _with(to=5), "to"),
    ("to-bad-id", _with(to="bad id"), "to"),
    ("to-too-long-id", _with(to="x" * 129), "to"),
    ("to-empty-id", _with(to=""), "to"),
    ("to-bad-id-in-list", _with(to=["fresh", "no/slash"]), "to"),
    ("to-object-bad-email", _with(to=[{"user_id": "fresh", "email": "nope"}]), "to"),
    ("to-object-unknown-field", _with(to=[{"user_id": "fresh", "nick": "x"}]), "to"),
    ("to-object-no-user-id", _with(to=[{"email": "a@example.com"}]), "to"),
    ("unknown-field", _with(subject="Hi"), "subject"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [(body, field) for _, body, field in INVALID_BODIES],
    ids=[name for name, _, _ in INVALID_BODIES],
)
def test_invalid_send_is_422_naming_the_field_and_writes_nothing(app, producer, body, field):
    producer.put("/users/existing", json={"email": "e@example.com"})
    before = {model: count_rows(app, model) for model in (User, Notification, Delivery)}
    error = assert_error(producer.post("/notifications", json=body), 422, "validation_error")
    named = {key.split(".")[0] for key in error["details"]}
    assert field in named, error
    after = {model: count_rows(app, model) for model in (User, Notification, Delivery)}
    assert after == before
    assert_error(producer.get("/users/fresh"), 404, "not_found")
    assert producer.get("/users/existing").get_json()["email"] == "e@example.com"


def test_invalid_recipient_object_does_not_update_a_user(app, producer):
    producer.put("/users/existing", json={"email": "e@example.com"})
    response = producer.post(
        "/notifications",
        json={"to": [{"user_id": "existing", "email": "new@example.com"}], "title": ""},
    )
    assert_error(response, 422, "validation_error")
    assert producer.get("/users/existing").get_json()["email"] == "e@example.com"
    assert count_rows(app, Notification) == 0


def test_limits_are_inclusive(producer):
    data = {"b": ""}
    overhead = len(json.dumps(data, separators=(",", ":")).encode())
    data["b"] = "x" * (16 * 1024 - overhead)
    [notification_id] = send(
        producer,
        to="u1",
        title="t" * 200,
        body="b" * 5000,
        category="c" * 64,
        data=data,
    )
    notification = detail(producer, notification_id)
    assert len(notification["title"]) == 200
    assert len(notification["body"]) == 5000
    assert notification["data"] == data


def test_to_with_10001_entries_is_422_and_writes_nothing(app, producer):
    recipients = [f"user-{index:05d}" for index in range(10_001)]
    error = assert_error(
        producer.post("/notifications", json={"to": recipients, "title": "Too many"}),
        422,
        "validation_error",
    )
    assert "to" in {key.split(".")[0] for key in error["details"]}, error
    assert count_rows(app, Notification) == 0
    assert count_rows(app, User) == 0


def test_10000_recipients_in_one_request(app, producer):
    recipients = [f"user-{index:05d}" for index in range(10_000)]
    recipients.reverse()  # recipient order, not id order, decides the response order
    items = sent(
        producer.post(
            "/notifications",
            json={"to": recipients, "title": "Everyone", "channels": ["in_app", "email"]},
        )
    )
    assert len(items) == 10_000
    assert [item["user_id"] for item in items] == recipients
    ids = [int(item["id"]) for item in items]
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)
    assert all(later > earlier for earlier, later in itertools.pairwise(ids))
    assert count_rows(app, Notification) == 10_000
    assert count_rows(app, User) == 10_000
    assert count_rows(app, Delivery, Delivery.channel == "email") == 10_000
    with app.app_context():
        stored = dict(db.session.execute(select(Notification.id, Notification.user_id)).all())
    assert stored == {int(item["id"]): item["user_id"] for item in items}


# GET /notifications/{id}


@pytest.mark.parametrize(
    "notification_id",
    [
        "999999",
        "abc",
        "1abc",
        "0",
        "-1",
        "1.0",
        "99999999999999999999",
        "9223372036854775808",
        "%EF%BC%91",  # a fullwidth digit one
    ],
)
def test_get_missing_or_malformed_id_is_404(producer, notification_id):
    send(producer, to="u1", title="Exists")
    assert_error(producer.get(f"/notifications/{notification_id}"), 404, "not_found")


def test_get_largest_bigint_id_is_404(producer):
    assert_error(producer.get("/notifications/9223372036854775807"), 404, "not_found")


# Input that is valid JSON text (or a common JSON extension) but cannot be stored as sent.


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_data_are_422(app, producer, number):
    raw = '{"to": "fresh", "title": "Hi", "data": {"n": ' + number + "}}"
    response = producer.post("/notifications", data=raw, content_type="application/json")
    assert response.status_code != 500, response.get_json()
    error = assert_error(response, 422, "validation_error")
    assert "data" in {key.split(".")[0] for key in error["details"]}, error
    assert count_rows(app, Notification) == 0
    assert count_rows(app, User) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "nul\u0000title"}, "title"),
        ({"body": "nul\u0000body"}, "body"),
        ({"data": {"text": "nul\u0000"}}, "data"),
        ({"data": {"nul\u0000key": 1}}, "data"),
    ],
    ids=["title", "body", "data-value", "data-key"],
)
def test_nul_characters_are_stored_or_refused_never_a_500(app, producer, changes, field):
    """Postgres cannot store U+0000 in text or JSONB: the app must refuse it with a 422 (or
    store it faithfully), the same on every engine, and never fail with a 500."""
    response = producer.post("/notifications", json={"to": "fresh", "title": "Hi", **changes})
    assert response.status_code in {201, 422}, response.get_data(as_text=True)
    if response.status_code == 422:
        error = assert_error(response, 422, "validation_error")
        assert field in {key.split(".")[0] for key in error["details"]}, error
        assert count_rows(app, Notification) == 0
    else:
        [item] = sent(response)
        stored = detail(producer, item["id"])
        for name, value in changes.items():
            assert stored[name] == value
