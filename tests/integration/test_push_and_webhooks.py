"""Web Push subscriptions, the VAPID public key, and producer webhooks."""

import re

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db, socketio
from app.models import PushSubscription
from tests.conftest import app_config, assert_error

ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123:APA91bExample"
KEYS = {
    "p256dh": (
        "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    ),
    "auth": "tBHItJI5svbpez7KI4CCXg",
}


def browser_subscription(endpoint=ENDPOINT, **overrides):
    """What `PushSubscription.toJSON()` gives in a browser."""
    return {"endpoint": endpoint, "expirationTime": None, "keys": dict(KEYS), **overrides}


def stored_subscriptions(app):
    with app.app_context():
        rows = db.session.scalars(select(PushSubscription).order_by(PushSubscription.id)).all()
        return [(row.endpoint, row.user_id, row.p256dh, row.auth) for row in rows]


# Push subscriptions


def test_subscribe_with_a_browser_shaped_body(app, user_client):
    ana = user_client("ana")
    response = ana.post("/me/push-subscriptions", json=browser_subscription())
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["endpoint"] == ENDPOINT
    assert body["keys"] == KEYS
    assert stored_subscriptions(app) == [(ENDPOINT, "ana", KEYS["p256dh"], KEYS["auth"])]


def test_subscribe_with_an_expiration_time(app, user_client):
    ana = user_client("ana")
    body = browser_subscription(expirationTime=1735689600000)
    assert ana.post("/me/push-subscriptions", json=body).status_code == 201
    assert len(stored_subscriptions(app)) == 1


def test_subscribe_again_is_200_and_updates_keys(app, user_client):
    ana = user_client("ana")
    assert ana.post("/me/push-subscriptions", json=browser_subscription()).status_code == 201
    new_keys = {"p256dh": "BNewKey", "auth": "newAuth"}
    again = ana.post("/me/push-subscriptions", json=browser_subscription(keys=new_keys))
    assert again.status_code == 200
    assert again.get_json()["keys"] == new_keys
    assert stored_subscriptions(app) == [(ENDPOINT, "ana", "BNewKey", "newAuth")]


def test_subscribe_moves_an_endpoint_to_the_caller(app, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    assert ana.post("/me/push-subscriptions", json=browser_subscription()).status_code == 201
    moved = bob.post("/me/push-subscriptions", json=browser_subscription())
    assert moved.status_code == 200
    assert stored_subscriptions(app) == [(ENDPOINT, "bob", KEYS["p256dh"], KEYS["auth"])]
    # Ana no longer owns it; Bob does.
    assert_error(
        ana.delete("/me/push-subscriptions", json={"endpoint": ENDPOINT}), 404, "not_found"
    )
    assert bob.delete("/me/push-subscriptions", json={"endpoint": ENDPOINT}).status_code == 204
    assert stored_subscriptions(app) == []


def test_several_endpoints_per_user(app, user_client):
    ana = user_client("ana")
    other = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA"
    assert ana.post("/me/push-subscriptions", json=browser_subscription()).status_code == 201
    assert ana.post("/me/push-subscriptions", json=browser_subscription(other)).status_code == 201
    assert {row[0] for row in stored_subscriptions(app)} == {ENDPOINT, other}


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": ENDPOINT, "expirationTime": None},
        {"endpoint": ENDPOINT, "keys": {"p256dh": KEYS["p256dh"]}},
        {"endpoint": ENDPOINT, "keys": {"auth": KEYS["auth"]}},
        {"endpoint": ENDPOINT, "keys": {"p256dh": "", "auth": ""}},
        {"endpoint": ENDPOINT, "keys": None},
        {"keys": KEYS},
        browser_subscription("ftp://push.example.com/x"),
        browser_subscription("javascript:alert(1)"),
        browser_subscription("push.example.com/x"),
        browser_subscription(""),
        browser_subscription(expirationTime="tomorrow"),
        browser_subscription(extra=1),
    ],
)
def test_subscribe_validation(app, user_client, body):
    ana = user_client("ana")
    response = ana.post("/me/push-subscriptions", json=body)
    assert_error(response, 422, "validation_error")
    assert stored_subscriptions(app) == []


def test_unsubscribe(app, user_client):
    ana = user_client("ana")
    assert ana.post("/me/push-subscriptions", json=browser_subscription()).status_code == 201
    response = ana.delete("/me/push-subscriptions", json={"endpoint": ENDPOINT})
    assert response.status_code == 204
    assert response.get_data() == b""
    assert stored_subscriptions(app) == []
    assert_error(
        ana.delete("/me/push-subscriptions", json={"endpoint": ENDPOINT}), 404, "not_found"
    )


def test_unsubscribe_another_users_or_unknown_endpoint_is_404(app, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    assert bob.post("/me/push-subscriptions", json=browser_subscription()).status_code == 201
    assert_error(
        ana.delete("/me/push-subscriptions", json={"endpoint": ENDPOINT}), 404, "not_found"
    )
    assert_error(
        ana.delete("/me/push-subscriptions", json={"endpoint": "https://push.example.com/none"}),
        404,
        "not_found",
    )
    assert stored_subscriptions(app) == [(ENDPOINT, "bob", KEYS["p256dh"], KEYS["auth"])]


def test_unsubscribe_validation(user_client):
    ana = user_client("ana")
    assert_error(ana.delete("/me/push-subscriptions", json={}), 422, "validation_error")
    assert_error(
        ana.delete("/me/push-subscriptions", json={"endpoint": "not a url"}),
        422,
        "validation_error",
    )


def test_push_subscriptions_need_a_user_token(client, producer):
    assert_error(client.post("/me/push-subscriptions", json=browser_subscription()), 401)
    assert_error(
        producer.post("/me/push-subscriptions", json=browser_subscription()), 403, "forbidden"
    )


def test_push_subscriptions_are_erased_with_the_user(app, producer, user_client):
    ana = user_client("ana")
    assert ana.post("/me/push-subscriptions", json=browser_subscription()).status_code == 201
    assert producer.delete("/users/ana").status_code == 204
    assert stored_subscriptions(app) == []


# VAPID public key


def test_vapid_key_not_configured(client):
    assert_error(client.get("/push/vapid-public-key"), 404, "push_not_configured")


@pytest.fixture
def keep_socketio():
    """Put the shared Socket.IO extension back as it was after a test builds another app
    (`create_app` rebinds it to the newest app)."""
    state = dict(vars(socketio))
    options = dict(socketio.server_options)
    yield
    vars(socketio).clear()
    vars(socketio).update(state)
    socketio.server_options = options


@pytest.mark.usefixtures("keep_socketio")
def test_vapid_key_when_configured(app, database_url):
    key = "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U"
    configured = create_app(app_config(database_url, VAPID_PUBLIC_KEY=key))
    try:
        response = configured.test_client().get("/push/vapid-public-key")
        assert response.status_code == 200
        assert response.get_json() == {"key": key}
        # No credential is needed, and the app under test is still unconfigured.
        assert_error(app.test_client().get("/push/vapid-public-key"), 404, "push_not_configured")
    finally:
        with configured.app_context():
            db.engine.dispose()


# Webhooks


def create_webhook(producer, url="https://example.com/hooks", events=("notification.read",)):
    response = producer.post("/webhooks", json={"url": url, "events": list(events)})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_create_webhook(producer):
    created = create_webhook(
        producer, events=["notification.read", "delivery.sent", "delivery.failed"]
    )
    assert isinstance(created["id"], str)
    assert created["id"]
    assert re.fullmatch(r"[0-9a-f]{64}", created["secret"])
    assert created["url"] == "https://example.com/hooks"
    assert created["events"] == ["notification.read", "delivery.sent", "delivery.failed"]


def test_each_webhook_has_its_own_secret(producer):
    first = create_webhook(producer)
    second = create_webhook(producer)
    assert first["id"] != second["id"]
    assert first["secret"] != second["secret"]


def test_list_webhooks_without_secrets(producer):
    first = create_webhook(producer, "https://a.example.com/hook", ["delivery.sent"])
    second = create_webhook(producer, "http://b.example.com/hook", ["delivery.failed"])
    response = producer.get("/webhooks")
    assert response.status_code == 200
    webhooks = response.get_json()["webhooks"]
    assert [hook["id"] for hook in webhooks] == [first["id"], second["id"]]
    assert [hook["url"] for hook in webhooks] == [
        "https://a.example.com/hook",
        "http://b.example.com/hook",
    ]
    assert [hook["events"] for hook in webhooks] == [["delivery.sent"], ["delivery.failed"]]
    text = response.get_data(as_text=True)
    for hook in webhooks:
        assert "secret" not in hook
    assert first["secret"] not in text
    assert second["secret"] not in text


def test_list_webhooks_empty(producer):
    response = producer.get("/webhooks")
    assert response.status_code == 200
    assert response.get_json() == {"webhooks": []}


def test_delete_webhook(producer):
    kept = create_webhook(producer)
    removed = create_webhook(producer)
    response = producer.delete(f"/webhooks/{removed['id']}")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert [hook["id"] for hook in producer.get("/webhooks").get_json()["webhooks"]] == [kept["id"]]
    assert_error(producer.delete(f"/webhooks/{removed['id']}"), 404, "not_found")


@pytest.mark.parametrize("webhook_id", ["987654321", "abc", "0", "-1", "99999999999999999999"])
def test_delete_unknown_webhook_is_404(producer, webhook_id):
    assert_error(producer.delete(f"/webhooks/{webhook_id}"), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": "example.com/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": "not a url", "events": ["delivery.sent"]}, "url"),
        ({"url": "https://", "events": ["delivery.sent"]}, "url"),
        # The document's URL pattern: an ASCII host, no whitespace or control characters.
        ({"url": "http://[::1]:8080/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": "https://bücher.example/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": "https://example.com/a\u00a0b", "events": ["delivery.sent"]}, "url"),
        ({"events": ["delivery.sent"]}, "url"),
        ({"url": "https://example.com/hook", "events": ["notification.sent"]}, "events"),
        ({"url": "https://example.com/hook", "events": ["delivery.sent", "nope"]}, "events"),
        ({"url": "https://example.com/hook", "events": []}, "events"),
        ({"url": "https://example.com/hook", "events": "delivery.sent"}, "events"),
        ({"url": "https://example.com/hook"}, "events"),
        ({"url": "https://example.com/hook", "events": ["delivery.sent"], "x": 1}, "x"),
    ],
)
def test_create_webhook_validation(producer, body, field):
    error = assert_error(producer.post("/webhooks", json=body), 422, "validation_error")
    assert any(name.split(".")[0] == field for name in error["details"]), error
    assert producer.get("/webhooks").get_json() == {"webhooks": []}


def test_webhooks_refuse_user_tokens(producer, user_client):
    ana = user_client("ana")
    hook = create_webhook(producer)
    assert_error(
        ana.post("/webhooks", json={"url": "https://e.example.com", "events": ["delivery.sent"]}),
        403,
        "forbidden",
    )
    assert_error(ana.get("/webhooks"), 403, "forbidden")
    assert_error(ana.delete(f"/webhooks/{hook['id']}"), 403, "forbidden")
    assert [h["id"] for h in producer.get("/webhooks").get_json()["webhooks"]] == [hook["id"]]


def test_webhooks_need_a_credential(client):
    assert_error(client.get("/webhooks"), 401)
    body = {"url": "https://e.example.com", "events": ["delivery.sent"]}
    assert_error(client.post("/webhooks", json=body), 401)
