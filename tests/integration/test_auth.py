"""Credentials: API keys on producer routes, user tokens on `/me` routes, and isolation."""

import base64
import json
import re
import time
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select, update

from app import defaults
from app.extensions import db
from app.models import ApiKey, Notification, User
from app.services.credentials import create_api_key, mint_user_token, revoke_api_key
from tests.conftest import ApiClient, assert_error, send

OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256-0123456789"
PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def count_rows(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def routes(app, auth: str) -> list[tuple[str, str]]:
    """(method, rule) of every route declared with `auth`."""
    found = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "operation", None)
        if spec is None or spec.auth != auth:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return sorted(found)


def fill(rule: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no test value for <{name}> in {rule}"
        return values[name]

    return PARAMETER.sub(replace, rule)


def call(client, method: str, path: str, credential: str | None = None, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", {})
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    if method in {"POST", "PUT", "DELETE", "PATCH"} and "json" not in kwargs:
        kwargs["json"] = {}
    return client.open(path, method=method, headers=headers, **kwargs)


def token_for(app, user_id: str, ttl: int = 3600) -> str:
    return mint_user_token(app.config["USER_TOKEN_SECRET"], user_id, ttl).token


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": user_id,
        "aud": defaults.USER_TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        **overrides,
    }


def assert_unauthorized(response, code: str | None = None) -> dict[str, Any]:
    error = assert_error(response, 401, code)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers
    return error


# No or malformed credentials


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/notifications"), ("GET", "/users/u1"), ("GET", "/me/notifications")],
)
def test_no_authorization_is_401_with_challenge(client, method, path):
    error = assert_unauthorized(call(client, method, path))
    assert error["code"] == "missing_credential"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Basic x", "Bearer", "Bearer ", "Bearer    ", "Token abc", "bearer"],
)
@pytest.mark.parametrize("path", ["/users/u1", "/me/unread-count"])
def test_malformed_authorization_is_401(client, header, path):
    response = client.get(path, headers={"Authorization": header})
    assert_unauthorized(response)


def test_bearer_scheme_is_case_insensitive(client, producer):
    producer.put("/users/u1", json={})
    response = client.get("/users/u1", headers={"Authorization": f"bearer {producer.credential}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "credential",
    [
        "garbage",
        "nk_000000000000_notarealkey",
        "nk_",
        "nk_abc",
        "a.b.c",
    ],
)
@pytest.mark.parametrize("path", ["/users/u1", "/me/unread-count"])
def test_unknown_credential_is_401(client, credential, path):
    assert_unauthorized(client.get(path, headers={"Authorization": f"Bearer {credential}"}))


def test_tampered_api_key_is_401(client, producer, api_key):
    producer.put("/users/u1", json={})
    last = api_key[-1]
    tampered = api_key[:-1] + ("A" if last != "A" else "B")
    response = client.get("/users/u1", headers={"Authorization": f"Bearer {tampered}"})
    assert_unauthorized(response, "invalid_credential")


def test_revoked_api_key_is_401(app, client, producer, api_key):
    assert producer.put("/users/u1", json={}).status_code == 201
    with app.app_context():
        other = create_api_key(db.session, "other").secret
        revoked = revoke_api_key(db.session, "tests")
        assert len(revoked) == 1
        db.session.commit()
    assert_unauthorized(producer.get("/users/u1"), "invalid_credential")
    assert_unauthorized(producer.post("/notifications", json={"to": "u1", "title": "x"}))
    assert count_rows(app, Notification) == 0
    # Only the revoked key stops working.
    assert ApiClient(client, other).get("/users/u1").status_code == 200


def revoke_behind_the_app(app, name: str) -> None:
    """Revoke a key as another process would: in the database, unseen by this one."""
    with app.app_context():
        db.session.execute(update(ApiKey).where(ApiKey.name == name).values(revoked_at=func.now()))
        db.session.commit()


def producer_trusting_keys_for(app_with, seconds: float) -> tuple[Any, ApiClient]:
    """An app that trusts a verified key for `seconds`, and a client with a live key "k"
    that has just been verified once."""
    application = app_with(API_KEY_CACHE_SECONDS=seconds)
    with application.app_context():
        secret = create_api_key(db.session, "k").secret
        db.session.commit()
    producer = ApiClient(application.test_client(), secret)
    assert producer.put("/users/u1", json={}).status_code == 201
    return application, producer


def test_key_revoked_by_another_process_stops_within_the_cache_time(app_with):
    application, producer = producer_trusting_keys_for(app_with, 0.5)
    revoke_behind_the_app(application, "k")
    # Verified a moment ago: trusted without reading the key again...
    assert producer.get("/users/u1").status_code == 200
    time.sleep(0.6)
    # ...until the cache time is up.
    assert_unauthorized(producer.get("/users/u1"), "invalid_credential")
    assert_unauthorized(producer.post("/notifications", json={"to": "u1", "title": "x"}))


def test_key_cache_off_reads_the_key_on_every_request(app_with):
    application, producer = producer_trusting_keys_for(app_with, 0)
    revoke_behind_the_app(application, "k")
    assert_unauthorized(producer.get("/users/u1"), "invalid_credential")


# The wrong kind of credential


def test_route_lists_are_complete(app):
    producer_routes = routes(app, "api_key")
    user_routes = routes(app, "user")
    for expected in [
        ("PUT", "/users/<user_id>"),
        ("GET", "/users/<user_id>"),
        ("DELETE", "/users/<user_id>"),
        ("POST", "/users/<user_id>/tokens"),
        ("GET", "/users/<user_id>/notifications"),
        ("POST", "/notifications"),
        ("GET", "/notifications/<id:notification_id>"),
    ]:
        assert expected in producer_routes
    for expected in [
        ("GET", "/me/notifications"),
        ("GET", "/me/unread-count"),
        ("POST", "/me/notifications/<id:notification_id>/read"),
        ("POST", "/me/notifications/read-all"),
        ("POST", "/me/notifications/seen"),
        ("GET", "/me/preferences"),
        ("PUT", "/me/preferences"),
        ("POST", "/me/push-subscriptions"),
        ("DELETE", "/me/push-subscriptions"),
    ]:
        assert expected in user_routes


def test_user_token_on_every_producer_route_is_403(app, client, producer, user_client):
    ana = user_client("ana", email="ana@example.com")
    [notification_id] = send(producer, to="ana", title="Hi")
    values = {
        "user_id": "ana",
        "notification_id": notification_id,
        "webhook_id": "1",
        "key": "welcome",
    }
    checked = routes(app, "api_key")
    assert checked
    for method, rule in checked:
        response = call(client, method, fill(rule, values), ana.credential)
        error = assert_error(response, 403, "forbidden")
        assert error["message"], (method, rule)
    # Nothing a producer route would have done happened.
    assert producer.get("/users/ana").status_code == 200
    assert count_rows(app, Notification) == 1
    assert count_rows(app, User) == 1


def test_api_key_on_every_me_route_is_403(app, client, producer, api_key):
    [notification_id] = send(producer, to="ana", title="Hi")
    values = {"notification_id": notification_id}
    checked = routes(app, "user")
    assert checked
    for method, rule in checked:
        response = call(client, method, fill(rule, values), api_key)
        assert_error(response, 403, "forbidden")
    assert producer.get(f"/notifications/{notification_id}").get_json()["read_at"] is None


# User tokens


@pytest.mark.parametrize("ttl", [0, -1, -3600])
@pytest.mark.parametrize("path", ["/me/unread-count", "/users/u1"])
def test_expired_user_token_is_401_token_expired(app, client, producer, ttl, path):
    producer.put("/users/u1", json={})
    token = token_for(app, "u1", ttl)
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert_unauthorized(response, "token_expired")


def test_token_expiring_later_works_until_then(app, client, producer):
    producer.put("/users/u1", json={})
    token = token_for(app, "u1", 60)
    response = client.get("/me/unread-count", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def _forged_tokens(app) -> dict[str, str]:
    secret = app.config["USER_TOKEN_SECRET"]
    valid_for_bob = jwt.encode(claims("bob"), secret, algorithm="HS256")
    header, _, signature = valid_for_bob.split(".")
    unsigned = jwt.encode(claims("ana"), key=None, algorithm="none")
    return {
        "other-secret": jwt.encode(claims("ana"), OTHER_SECRET, algorithm="HS256"),
        "tampered-payload": f"{header}.{b64(claims('ana'))}.{signature}",
        "tampered-signature": f"{header}.{valid_for_bob.split('.')[1]}.{signature[::-1]}",
        "alg-none": unsigned,
        "alg-none-no-dot": unsigned.rstrip("."),
        "alg-none-header-with-valid-sig": f"{b64({'alg': 'none', 'typ': 'JWT'})}"
        f".{valid_for_bob.split('.')[1]}.{signature}",
        "hs512": jwt.encode(claims("ana"), secret + secret, algorithm="HS512"),
        "wrong-audience": jwt.encode(claims("ana", aud="someone-else"), secret, algorithm="HS256"),
        "no-audience": jwt.encode(
            {k: v for k, v in claims("ana").items() if k != "aud"}, secret, algorithm="HS256"
        ),
        "no-expiry": jwt.encode(
            {k: v for k, v in claims("ana").items() if k != "exp"}, secret, algorithm="HS256"
        ),
        "no-subject": jwt.encode(
            {k: v for k, v in claims("ana").items() if k != "sub"}, secret, algorithm="HS256"
        ),
        "empty-subject": jwt.encode(claims(""), secret, algorithm="HS256"),
        "numeric-subject": jwt.encode(claims("ana", sub=42), secret, algorithm="HS256"),
        "garbage-parts": "abc.def.ghi",
    }


FORGERIES = [
    "other-secret",
    "tampered-payload",
    "tampered-signature",
    "alg-none",
    "alg-none-no-dot",
    "alg-none-header-with-valid-sig",
    "hs512",
    "wrong-audience",
    "no-audience",
    "no-expiry",
    "no-subject",
    "empty-subject",
    "numeric-subject",
    "garbage-parts",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_user_token_is_401(app, client, producer, user_client, forgery):
    user_client("ana")
    user_client("bob")
    [notification_id] = send(producer, to="ana", title="Private")
    token = _forged_tokens(app)[forgery]
    headers = {"Authorization": f"Bearer {token}"}
    assert_unauthorized(client.get("/me/notifications", headers=headers))
    assert_unauthorized(client.post(f"/me/notifications/{notification_id}/read", headers=headers))
    assert producer.get(f"/notifications/{notification_id}").get_json()["read_at"] is None


def test_token_of_erased_user_is_401(app, client, producer, user_client):
    ana = user_client("ana")
    assert ana.get("/me/unread-count").status_code == 200
    assert producer.delete("/users/ana").status_code == 204
    assert_unauthorized(ana.get("/me/unread-count"), "invalid_credential")
    assert_unauthorized(ana.get("/me/notifications"))
    assert_unauthorized(ana.put("/me/preferences", json={"channels": {"email": False}}))
    # Nothing was recreated for the erased user.
    assert count_rows(app, User, User.id == "ana") == 0


# Isolation between users


@pytest.fixture
def two_users(producer, user_client):
    """ana owns a fresh notification and a read+archived one; bob has his own."""
    ana = user_client("ana")
    bob = user_client("bob")
    [fresh] = send(producer, to="ana", title="Fresh")
    [handled] = send(producer, to="ana", title="Handled")
    assert ana.post(f"/me/notifications/{handled}/read").status_code == 200
    assert ana.post(f"/me/notifications/{handled}/archive").status_code == 200
    [own] = send(producer, to="bob", title="Bob's")
    return {"ana": ana, "bob": bob, "fresh": fresh, "handled": handled, "own": own}


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", "/read"),
        ("POST", "/unread"),
        ("POST", "/archive"),
        ("POST", "/unarchive"),
    ],
)
@pytest.mark.parametrize("target", ["fresh", "handled"])
def test_another_users_notification_is_404_and_unchanged(
    producer, two_users, method, suffix, target
):
    notification_id = two_users[target]
    before = producer.get(f"/notifications/{notification_id}").get_json()
    bob = two_users["bob"]
    response = call(
        bob.client, method, f"/me/notifications/{notification_id}{suffix}", bob.credential
    )
    error = assert_error(response, 404, "not_found")
    # Indistinguishable from an id that does not exist.
    missing = call(bob.client, method, f"/me/notifications/987654{suffix}", bob.credential)
    assert error == assert_error(missing, 404, "not_found")
    assert producer.get(f"/notifications/{notification_id}").get_json() == before
    ana_view = two_users["ana"].get(f"/me/notifications/{notification_id}")
    assert ana_view.status_code == 200


def test_own_notification_still_works_for_the_other_user(two_users):
    bob = two_users["bob"]
    response = bob.post(f"/me/notifications/{two_users['own']}/read")
    assert response.status_code == 200
    assert response.get_json()["read_at"] is not None


def test_seen_with_another_users_ids_updates_nothing(producer, two_users):
    bob = two_users["bob"]
    fresh = two_users["fresh"]
    response = bob.post("/me/notifications/seen", json={"ids": [fresh]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["updated"] == 0
    assert producer.get(f"/notifications/{fresh}").get_json()["seen_at"] is None

    mixed = bob.post("/me/notifications/seen", json={"ids": [fresh, two_users["own"]]})
    assert mixed.get_json()["updated"] == 1
    assert producer.get(f"/notifications/{fresh}").get_json()["seen_at"] is None
    assert producer.get(f"/notifications/{two_users['own']}").get_json()["seen_at"] is not None


def test_read_all_touches_only_the_callers_notifications(producer, two_users):
    bob = two_users["bob"]
    response = bob.post("/me/notifications/read-all", json={})
    assert response.get_json() == {"updated": 1, "unread_count": 0}
    assert producer.get(f"/notifications/{two_users['fresh']}").get_json()["read_at"] is None
    assert two_users["ana"].get("/me/unread-count").get_json() == {"unread_count": 1}


def test_listing_shows_only_the_callers_notifications(two_users):
    items = two_users["bob"].get("/me/notifications?status=all").get_json()["items"]
    assert [item["id"] for item in items] == [two_users["own"]]
    archived = two_users["bob"].get("/me/notifications?archived=true").get_json()["items"]
    assert archived == []
