"""Races, hostile input outside the body, a database that is down, tokens of erased users,
CORS, and announcements that fail after the commit."""

import functools
import threading

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import PushSubscription
from app.realtime import events
from tests.conftest import ApiClient, app_config, assert_error, send


def _parallel(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres_only
def test_concurrent_sends_creating_the_same_users_in_opposite_orders_both_succeed(app, api_key):
    for round_number in range(3):
        users = [f"r{round_number}-{i}" for i in range(400)]

        def send_in(order):
            client = ApiClient(app.test_client(), api_key)
            return client.post("/notifications", json={"to": order, "title": "race"}).status_code

        calls = [functools.partial(send_in, users), functools.partial(send_in, users[::-1])]
        assert _parallel(*calls) == [201, 201]


@pytest.mark.postgres_only
def test_concurrent_first_subscriptions_of_one_endpoint_store_one_row(app, user_client):
    token = user_client("ana").credential
    body = {"endpoint": "https://push.example/e/1", "keys": {"p256dh": "k", "auth": "a"}}

    def subscribe():
        client = ApiClient(app.test_client(), token)
        return client.post("/me/push-subscriptions", json=body).status_code

    statuses = _parallel(*[subscribe] * 6)
    assert sorted(statuses) == [200] * 5 + [201]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 1


@pytest.mark.parametrize(
    "path", ["/users/a%00b", "/users/a%00b/notifications", "/notifications/1%00"]
)
def test_nul_in_a_path_is_404(producer, path):
    assert_error(producer.get(path), 404, "not_found")


def test_nul_in_a_path_of_a_put_is_422(producer):
    assert_error(producer.put("/users/a%00b", json={}), 422, "validation_error")


def test_control_characters_in_a_credential_are_401(client, api_key):
    response = client.get("/users/x", headers={"Authorization": f"Bearer {api_key}\x01"})
    assert_error(response, 401, "invalid_credential")


def test_control_characters_in_an_idempotency_key_are_422(producer):
    response = producer.post(
        "/notifications", json={"to": "u", "title": "t"}, headers={"Idempotency-Key": "k\x01"}
    )
    error = assert_error(response, 422, "validation_error")
    assert "Idempotency-Key" in error["details"]


def test_control_characters_in_the_user_agent_are_dropped(app, user_client):
    ana = user_client("ana")
    body = {"endpoint": "https://push.example/e/2", "keys": {"p256dh": "k", "auth": "a"}}
    response = ana.post("/me/push-subscriptions", json=body, headers={"User-Agent": "b\x01x"})
    assert response.status_code == 201
    with app.app_context():
        assert db.session.scalars(select(PushSubscription.user_agent)).one() == "bx"


def test_a_database_that_is_down_is_503_in_the_contract_shape():
    down = create_app(app_config("postgresql+psycopg2://postgres@127.0.0.1:1/none"))
    response = down.test_client().get("/users/u1", headers={"Authorization": "Bearer nk_x_y"})
    error = assert_error(response, 503, "service_unavailable")
    assert error["details"]["dependency"] == "database"


@pytest.mark.postgres_only
def test_a_connection_pool_that_stays_exhausted_is_503_in_the_contract_shape(database_url):
    busy = create_app(
        app_config(
            database_url,
            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2},
        )
    )
    with busy.app_context(), db.engine.connect():
        response = busy.test_client().get("/users/u1", headers={"Authorization": "Bearer nk_x_y"})
    error = assert_error(response, 503, "service_unavailable")
    assert error["details"]["dependency"] == "database"


def test_a_token_of_an_erased_user_does_not_open_a_new_namesake(producer, user_client):
    old = user_client("ana")
    assert producer.delete("/users/ana").status_code == 204
    send(producer, to="ana", title="for the new ana")
    assert_error(old.get("/me/notifications"), 401, "invalid_credential")
    new = user_client("ana")
    assert [item["title"] for item in new.get("/me/notifications").get_json()["items"]] == [
        "for the new ana"
    ]


@pytest.fixture
def cors_client(database_url):
    return create_app(app_config(database_url, CORS_ORIGINS=["https://app.example"])).test_client()


def test_cors_preflight_for_browser_routes_from_an_allowed_origin(cors_client):
    response = cors_client.options(
        "/me/notifications",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_no_cors_for_other_origins_or_producer_routes(cors_client):
    other = cors_client.options("/me/notifications", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    producer_route = cors_client.options(
        "/notifications", headers={"Origin": "https://app.example"}
    )
    assert "Access-Control-Allow-Origin" not in producer_route.headers


def test_no_cors_by_default(client):
    response = client.options("/me/notifications", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_failed_announcement_does_not_undo_the_send(app, producer, monkeypatch, caplog):
    def broken_emit(*args, **kwargs):
        raise ConnectionError("message queue down")

    monkeypatch.setattr(events, "_emit_all", broken_emit)
    response = producer.post("/notifications", json={"to": "ana", "title": "still stored"})
    assert response.status_code == 201
    notification_id = response.get_json()["notifications"][0]["id"]
    assert producer.get(f"/notifications/{notification_id}").status_code == 200
    assert "could not announce announce_created" in caplog.text
