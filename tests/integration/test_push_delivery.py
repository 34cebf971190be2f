"""Web Push end to end: a real worker sends to a local push service endpoint, which decrypts
the payload (RFC 8291, aes128gcm) with the browser's keys and checks the VAPID header."""

from collections.abc import Iterator

import pytest

from tests.providers import Browser, Endpoint, vapid_keys
from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def push_service() -> Iterator[Endpoint]:
    endpoint = Endpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def vapid() -> dict[str, str]:
    return vapid_keys()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, vapid) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("push"),
        "notify_push",
        VAPID_SUBJECT="mailto:ops@example.com",
        **vapid,
    ).start()
    running.start_worker()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def _reset(push_service):
    push_service.answers.clear()
    push_service.received.clear()


def _subscribe(stack: Stack, user: str, browser: Browser) -> str:
    stack.call("PUT", f"/users/{user}", {})
    token = stack.call("POST", f"/users/{user}/tokens", {})["token"]
    stack.call("POST", "/me/push-subscriptions", browser.subscription(), token)
    return token


def test_the_vapid_key_is_served(stack, vapid):
    assert stack.call("GET", "/push/vapid-public-key") == {"key": vapid["VAPID_PUBLIC_KEY"]}


def test_a_push_arrives_encrypted_for_the_browser_with_vapid(stack, push_service, vapid):
    browser = Browser(f"{push_service.url}/push/abc")
    _subscribe(stack, "pia", browser)
    [notification_id] = stack.send(
        to="pia",
        title="Build done",
        body="main is green",
        action_url="https://ci.example/1",
        data={"build": 1},
        channels=["push"],
    )
    assert stack.settled(notification_id, "push")["status"] == "sent"
    [request] = push_service.requests()
    assert request.path == "/push/abc"
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert int(request.headers["TTL"]) > 0
    scheme, _, credentials = request.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in credentials.split(","))
    assert fields["k"] == vapid["VAPID_PUBLIC_KEY"]
    payload = browser.decrypt(request.body)
    assert payload["id"] == notification_id
    assert payload["title"] == "Build done"
    assert payload["body"] == "main is green"
    assert payload["action_url"] == "https://ci.example/1"
    assert payload["data"] == {"build": 1}


def test_a_gone_subscription_is_deleted(stack, push_service):
    gone = Browser(f"{push_service.url}/push/gone")
    _subscribe(stack, "gus", gone)
    push_service.answers.append(410)
    [notification_id] = stack.send(to="gus", title="x", channels=["push"])
    delivery = stack.settled(notification_id, "push")
    assert delivery["status"] == "failed"
    assert "410" in delivery["last_error"]
    [second] = stack.send(to="gus", title="y", channels=["push"])
    assert stack.deliveries(second)["push"]["status"] == "skipped"


def test_a_push_service_error_is_retried(stack, push_service):
    browser = Browser(f"{push_service.url}/push/flaky")
    _subscribe(stack, "fay", browser)
    push_service.answers.extend([503])
    [notification_id] = stack.send(to="fay", title="again", channels=["push"])
    delivery = stack.settled(notification_id, "push")
    assert (delivery["status"], delivery["attempts"]) == ("sent", 2)
    assert browser.decrypt(push_service.requests()[-1].body)["title"] == "again"
