"""Rate limits: per API key on producer routes, per user on `/me` routes, per user on socket
connects and per socket on client events; 429 in the contract's shape with the headers a
client paces itself by, shared through Redis, and never a failure when Redis is down."""

import time

import pytest
import socketio as socketio_client
from flask import Flask

from app.extensions import db, socketio
from app.services.credentials import create_api_key
from tests.conftest import ApiClient, assert_error
from tests.servers import free_port, server_environment, web_server


def test_an_api_key_gets_429_past_its_limit_with_retry_after(app, producer, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_API_KEY", "3 per minute")
    remaining = []
    for _ in range(3):
        response = producer.get("/templates")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    # Any producer route draws on the same budget, a send included.
    refused = producer.post("/notifications", json={"to": "ana", "title": "Hi"})
    error = assert_error(refused, 429, "rate_limited")
    assert error["details"]["limit"] == "3 per 1 minute"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["details"]["retry_after_seconds"] == retry_after
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Nothing was written by the refused send.
    assert producer.get("/users/ana").status_code == 429
    monkeypatch.setitem(app.config, "RATE_LIMIT_API_KEY", "100 per minute")
    assert producer.get("/users/ana").status_code == 404


def test_each_api_key_has_its_own_budget(app, client, producer, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_API_KEY", "2 per minute")
    with app.app_context():
        other = ApiClient(client, create_api_key(db.session, "other").secret)
        db.session.commit()
    assert [producer.get("/templates").status_code for _ in range(3)] == [200, 200, 429]
    assert other.get("/templates").status_code == 200


def test_requests_without_a_valid_credential_are_not_counted_against_a_key(
    app, client, producer, monkeypatch
):
    monkeypatch.setitem(app.config, "RATE_LIMIT_API_KEY", "2 per minute")
    prefix = producer.credential[:12]
    for _ in range(5):
        forged = client.get("/templates", headers={"Authorization": f"Bearer {prefix}forged"})
        assert_error(forged, 401, "invalid_credential")
        assert "RateLimit-Limit" not in forged.headers
    assert [producer.get("/templates").status_code for _ in range(3)] == [200, 200, 429]


def test_a_user_has_one_budget_across_me_routes_and_tabs(app, user_client, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_USER", "4 per minute")
    first_tab = user_client("ana")
    second_tab = user_client("ana")
    bob = user_client("bob")
    assert first_tab.get("/me/notifications").status_code == 200
    assert first_tab.get("/me/unread-count").status_code == 200
    assert second_tab.get("/me/preferences").status_code == 200
    assert second_tab.post("/me/notifications/read-all").status_code == 200
    error = assert_error(first_tab.get("/me/notifications"), 429, "rate_limited")
    assert error["details"]["limit"] == "4 per 1 minute"
    assert bob.get("/me/notifications").status_code == 200


def test_cors_lets_other_origins_read_the_pacing_headers(app_with, user_client):
    token = user_client("ana").credential
    other_origin = app_with(CORS_ORIGINS=["https://shop.example"])
    response = other_origin.test_client().get(
        "/me/unread-count",
        headers={"Origin": "https://shop.example", "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    exposed = response.headers["Access-Control-Expose-Headers"].split(", ")
    assert set(exposed) == {
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "Retry-After",
    }


def test_web_processes_share_the_budget_through_redis(app, app_with, api_key):
    if app.config["REDIS_URL"] is None:
        pytest.fail("the test app must use Redis")
    limits = {"RATE_LIMIT_API_KEY": "5 per minute"}
    first = ApiClient(app_with(**limits).test_client(), api_key)
    second = ApiClient(app_with(**limits).test_client(), api_key)
    statuses = [client.get("/templates").status_code for client in (first, second) * 3]
    assert statuses == [200, 200, 200, 200, 200, 429]
    # Point the shared Socket.IO instance back at the session's app.


def test_sends_go_on_when_the_rate_limit_storage_is_down(app_with, api_key):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    broken = app_with(RATELIMIT_STORAGE_URI=dead_redis, RATE_LIMIT_API_KEY="3/minute")
    producer = ApiClient(broken.test_client(), api_key)
    response = producer.post("/notifications", json={"to": "ana", "title": "Still sent"})
    assert response.status_code == 201, response.get_json()
    # It counts in memory meanwhile, so the limit still holds.
    statuses = [producer.get("/templates").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_limit_that_does_not_parse_stops_the_app_at_start(app_with):
    with pytest.raises(RuntimeError, match="RATE_LIMIT_USER='lots' is not a rate limit"):
        app_with(RATE_LIMIT_USER="lots")


def test_limits_can_be_switched_off(app_with, api_key):
    unlimited = app_with(RATELIMIT_ENABLED=False, RATE_LIMIT_API_KEY="1/minute")
    producer = ApiClient(unlimited.test_client(), api_key)
    assert [producer.get("/templates").status_code for _ in range(3)] == [200] * 3


@pytest.fixture
def socket_app(app_with) -> Flask:
    """An app whose Socket.IO limits are low enough to reach in a test."""
    return app_with(
        REDIS_URL=None,
        RATE_LIMIT_SOCKET_CONNECTS="2 per minute",
        RATE_LIMIT_SOCKET_EVENTS="3 per minute",
    )


def _token(socket_app: Flask, api_key: str, user_id: str) -> str:
    producer = ApiClient(socket_app.test_client(), api_key)
    assert producer.put(f"/users/{user_id}", json={}).status_code in {200, 201}
    return producer.post(f"/users/{user_id}/tokens", json={}).get_json()["token"]


def test_a_user_may_open_only_so_many_sockets_a_minute(socket_app, api_key):
    ana = _token(socket_app, api_key, "ana")
    bob = _token(socket_app, api_key, "bob")
    tabs = [socketio.test_client(socket_app, auth={"token": ana}) for _ in range(2)]
    assert all(tab.is_connected() for tab in tabs)
    assert not socketio.test_client(socket_app, auth={"token": ana}).is_connected()
    assert socketio.test_client(socket_app, auth={"token": bob}).is_connected()


# A client's binary event (its bytes in an attachment) is read and counted like any other,
# though the server never sends one.
@pytest.mark.parametrize("payload", [{"n": 1}, {"file": b"\x00\x01"}], ids=["json", "binary"])
def test_a_socket_that_floods_the_server_with_events_is_dropped(socket_app, api_key, payload):
    ana = _token(socket_app, api_key, "ana")
    flooding = socketio.test_client(socket_app, auth={"token": ana})
    quiet = socketio.test_client(socket_app, auth={"token": ana})
    for _ in range(3):
        flooding.emit("anything", payload)
    assert flooding.is_connected()
    flooding.emit("anything", payload)
    assert not flooding.is_connected()
    assert quiet.is_connected()


def _connect(url: str, token: str) -> socketio_client.Client:
    client = socketio_client.Client(reconnection=False)
    client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


def test_a_real_server_caps_message_size_and_says_why_it_refuses(
    app, database_url, api_key, tmp_path
):
    env = server_environment(
        database_url,
        app.config["REDIS_URL"],
        SOCKET_MAX_MESSAGE_BYTES="4096",
        RATE_LIMIT_SOCKET_CONNECTS="2 per minute",
    )
    token = _token(app, api_key, "ana")
    with web_server(env, tmp_path / "web.log") as url:
        client = _connect(url, token)
        client.emit("small", "x" * 1000)
        time.sleep(0.5)
        assert client.connected
        client.emit("large", "x" * 8192)
        deadline = time.monotonic() + 10
        while client.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.connected
        # python-engineio leaves the socket the server closed open.
        client.eio.ws.shutdown()
        _connect(url, token).disconnect()
        refusals = []
        refused = socketio_client.Client(reconnection=False)
        refused.on("connect_error", refusals.append)
        with pytest.raises(socketio_client.exceptions.ConnectionError):
            refused.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        refused.shutdown()
        assert refusals[0]["message"].startswith("rate_limited:")
