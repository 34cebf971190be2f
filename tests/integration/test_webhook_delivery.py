"""Producer webhooks end to end: a real worker POSTs signed events to a local receiver."""

import hashlib
import hmac
import json
from collections.abc import Iterator

import psycopg2
import pytest

from tests.providers import Endpoint
from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Endpoint]:
    endpoint = Endpoint().start()
    endpoint.default_status = 200
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("webhooks"), "notify_webhooks").start()
    running.start_worker()
    yield running
    running.close()


@pytest.fixture(scope="module")
def webhook(stack, receiver) -> dict:
    return stack.call(
        "POST",
        "/webhooks",
        {
            "url": f"{receiver.url}/hooks/notify",
            "events": ["notification.read", "delivery.sent", "delivery.failed"],
        },
    )


@pytest.fixture(autouse=True)
def _reset(receiver, stack):
    receiver.answers.clear()
    receiver.received.clear()
    stack.smtp.mailbox.refuse_next = 0


def verified_events(receiver: Endpoint, secret: str) -> list[dict]:
    """Every event the receiver got, after checking its signature."""
    events = []
    for request in receiver.requests():
        assert request.path == "/hooks/notify"
        assert request.headers["Content-Type"] == "application/json"
        fields = dict(part.split("=", 1) for part in request.headers["Notify-Signature"].split(","))
        expected = hmac.new(
            secret.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(fields["v1"], expected), "bad signature"
        events.append(json.loads(request.body))
    return events


def _wait_for_event(stack, receiver, secret, event_type, count=1) -> list[dict]:
    return stack.wait_for(
        lambda: (
            (found := [e for e in verified_events(receiver, secret) if e["type"] == event_type])
            and len(found) >= count
            and found
        ),
        what=f"{count} {event_type} event(s)",
    )


def test_delivery_sent_and_notification_read_are_signed_events(stack, receiver, webhook):
    secret = webhook["secret"]
    stack.call("PUT", "/users/ana", {"email": "ana@example.com"})
    [notification_id] = stack.send(to="ana", title="hello", channels=["in_app", "email"])
    [sent] = _wait_for_event(stack, receiver, secret, "delivery.sent")
    assert sent["id"].startswith("evt_")
    assert sent["created_at"].endswith("Z")
    assert sent["data"] == {
        "delivery_id": sent["data"]["delivery_id"],
        "notification_id": notification_id,
        "user_id": "ana",
        "channel": "email",
        "status": "sent",
        "attempts": 1,
        "last_error": None,
    }

    token = stack.call("POST", "/users/ana/tokens", {})["token"]
    read = stack.call("POST", f"/me/notifications/{notification_id}/read", None, token)
    [event] = _wait_for_event(stack, receiver, secret, "notification.read")
    assert event["data"] == {
        "notification_id": notification_id,
        "user_id": "ana",
        "read_at": read["read_at"],
    }
    # Reading it again is no new read.
    stack.call("POST", f"/me/notifications/{notification_id}/read", None, token)
    stack.call("POST", "/me/notifications/read-all", None, token)
    assert (
        len([e for e in verified_events(receiver, secret) if e["type"] == "notification.read"]) == 1
    )


def test_delivery_failed_is_reported(stack, receiver, webhook):
    stack.call("PUT", "/users/bounce", {"email": "bounce@example.com"})
    stack.smtp.mailbox.refuse_next = 1
    stack.smtp.mailbox.refusal = "550 5.1.1 no such mailbox"
    [notification_id] = stack.send(to="bounce", title="x", channels=["email"])
    [failed] = _wait_for_event(stack, receiver, webhook["secret"], "delivery.failed")
    assert failed["data"]["notification_id"] == notification_id
    assert failed["data"]["status"] == "failed"
    assert "550" in failed["data"]["last_error"]
    stack.smtp.mailbox.refusal = "451 4.3.0 try again later"


def test_a_failing_receiver_gets_the_same_event_again(stack, receiver, webhook):
    receiver.answers.extend([500, 503])
    stack.call("PUT", "/users/retry", {"email": "retry@example.com"})
    stack.send(to="retry", title="x", channels=["email"])
    events = _wait_for_event(stack, receiver, webhook["secret"], "delivery.sent", count=3)
    assert len({event["id"] for event in events}) == 1


def test_a_redirect_is_not_followed_and_fails_the_event(stack, receiver, webhook):
    receiver.answers.append(301)
    stack.call("PUT", "/users/moved", {"email": "moved@example.com"})
    [notification_id] = stack.send(to="moved", title="x", channels=["email"])

    def failed_event():
        connection = psycopg2.connect(stack.env["DATABASE_URL"])
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT status, attempts, last_error FROM webhook_events"
                " WHERE payload->'data'->>'notification_id' = %s",
                (notification_id,),
            )
            rows = cursor.fetchall()
        connection.close()
        return rows and rows[0][0] == "failed" and rows[0]

    _, attempts, last_error = stack.wait_for(failed_event, what="the event to fail")
    assert attempts == 1
    assert "HTTP 301" in last_error
    assert len(receiver.requests()) == 1
