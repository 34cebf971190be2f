"""Webhook URLs come from producers and push endpoints from browsers: neither may point a
worker into the server's own network unless ALLOW_PRIVATE_DESTINATIONS says so."""

import pytest
from sqlalchemy import select

from app.channels.destinations import check_public
from app.channels.errors import PermanentDeliveryError
from app.extensions import db
from app.jobs.deliveries import deliver
from app.jobs.outbox import GaveUp
from app.jobs.webhooks import send_webhook_event
from app.models import Delivery, WebhookEvent
from tests.conftest import send
from tests.providers import Browser, Endpoint, vapid_keys


@pytest.fixture
def guarded(app, monkeypatch):
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_DESTINATIONS", False)
    return app


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_addresses_inside_the_network_are_refused(guarded, url):
    with guarded.app_context(), pytest.raises(PermanentDeliveryError, match="not a public"):
        check_public(url)


def test_a_public_address_is_allowed(guarded):
    with guarded.app_context():
        check_public("https://93.184.215.14/hook")


def test_allowing_private_destinations_lets_them_through(app):
    with app.app_context():
        check_public("http://127.0.0.1:8080/hook")


def test_a_webhook_into_the_network_fails_for_good_and_sends_nothing(
    guarded, producer, user_client
):
    receiver = Endpoint().start()
    try:
        created = producer.post(
            "/webhooks", json={"url": f"{receiver.url}/in", "events": ["notification.read"]}
        )
        assert created.status_code == 201
        ana = user_client("ana")
        [notification_id] = send(producer, to="ana", title="x")
        assert ana.post(f"/me/notifications/{notification_id}/read").status_code == 200
        with guarded.app_context():
            event_id = db.session.scalars(select(WebhookEvent.id)).one()
            with pytest.raises(GaveUp):
                send_webhook_event(event_id)
            event = db.session.get(WebhookEvent, event_id)
            assert event.status == "failed"
            assert "127.0.0.1 resolves to 127.0.0.1, which is not a public address" in (
                event.last_error
            )
        assert receiver.received == []
    finally:
        receiver.stop()


def test_a_push_endpoint_into_the_network_fails_and_gets_nothing(
    guarded, producer, user_client, monkeypatch
):
    for name, value in vapid_keys().items():
        monkeypatch.setitem(guarded.config, name, value)
    monkeypatch.setitem(guarded.config, "PUSH_BACKEND", "webpush")
    push_service = Endpoint().start()
    try:
        ana = user_client("ana")
        browser = Browser(f"{push_service.url}/push/ana")
        assert ana.post("/me/push-subscriptions", json=browser.subscription()).status_code == 201
        sent = producer.post(
            "/notifications", json={"to": "ana", "title": "x", "channels": ["push"]}
        )
        assert sent.status_code == 201
        with guarded.app_context():
            delivery_id = db.session.scalars(select(Delivery.id)).one()
            with pytest.raises(GaveUp):
                deliver(delivery_id)
            delivery = db.session.get(Delivery, delivery_id)
            assert delivery.status == "failed"
            assert "which is not a public address" in delivery.last_error
        assert push_service.received == []
    finally:
        push_service.stop()
