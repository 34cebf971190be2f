"""SMS end to end: a real worker calls a local Twilio-compatible endpoint."""

import base64
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from tests.providers import Endpoint
from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)
ACCOUNT = "AC0123456789abcdef"
TOKEN = "twilio-token-secret"
FROM = "+15005550006"


@pytest.fixture(scope="module")
def twilio() -> Iterator[Endpoint]:
    endpoint = Endpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, twilio) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("sms"),
        "notify_sms",
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER=FROM,
        TWILIO_API_BASE=twilio.url,
    ).start()
    running.start_worker()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def _reset(twilio):
    twilio.answers.clear()
    twilio.received.clear()
    twilio.body = b'{"sid": "SM0000", "status": "queued"}'


def test_an_sms_reaches_the_provider_with_auth_and_form_fields(stack, twilio):
    stack.call("PUT", "/users/sam", {"phone": "+4915112345678"})
    [notification_id] = stack.send(
        to="sam", title="Code 123456", body="Expires in 5 minutes", channels=["sms"]
    )
    delivery = stack.settled(notification_id, "sms")
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
    [request] = twilio.requests()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.body.decode())
    assert form == {
        "To": ["+4915112345678"],
        "From": [FROM],
        "Body": ["Code 123456\nExpires in 5 minutes"],
    }


def test_5xx_and_429_are_retried(stack, twilio):
    stack.call("PUT", "/users/retry", {"phone": "+4915112345679"})
    twilio.answers.extend([503, 429])
    [notification_id] = stack.send(to="retry", title="eventually", channels=["sms"])
    delivery = stack.settled(notification_id, "sms")
    assert (delivery["status"], delivery["attempts"]) == ("sent", 3)
    assert len(twilio.requests()) == 3


def test_a_4xx_fails_at_once(stack, twilio):
    stack.call("PUT", "/users/bad", {"phone": "+4915112345670"})
    twilio.answers.append(400)
    [notification_id] = stack.send(to="bad", title="never", channels=["sms"])
    delivery = stack.settled(notification_id, "sms")
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert "HTTP 400" in delivery["last_error"]
    assert len(twilio.requests()) == 1


def test_a_number_the_provider_quotes_in_its_error_is_not_kept(stack, twilio):
    stack.call("PUT", "/users/quoted", {"phone": "+15005550009"})
    twilio.answers.append(400)
    twilio.body = b'{"code": 21211, "message": "The \'To\' number +15005550009 is not valid."}'
    [notification_id] = stack.send(to="quoted", title="Hi", channels=["sms"])
    last_error = stack.settled(notification_id, "sms")["last_error"]
    assert "The 'To' number [number] is not valid" in last_error
    assert "5550009" not in last_error


def test_a_user_without_a_phone_is_skipped(stack, twilio):
    stack.call("PUT", "/users/nophone", {"email": "x@example.com"})
    [notification_id] = stack.send(to="nophone", title="x", channels=["sms"])
    sms = stack.deliveries(notification_id)["sms"]
    assert (sms["status"], sms["last_error"]) == ("skipped", "no address: the user has no phone")
    assert twilio.requests() == []
