"""Every error in the contract's shape: 400, 401, 403, 404, 405, 409, 413, 415, 422 and 500."""

import json
import logging
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import Notification, User
from tests.conftest import app_config, assert_error

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
ONE_MIB = 1024 * 1024
VALID = {"to": "u1", "title": "Hi"}


def count_rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def contract_error(response, status: int, code: str | None = None) -> dict:
    """The contract's error shape, served as JSON, with a snake_case code."""
    error = assert_error(response, status, code)
    assert response.mimetype == "application/json"
    assert SNAKE_CASE.match(error["code"]), error
    return error


def assert_nothing_written(app) -> None:
    assert count_rows(app, Notification) == 0
    assert count_rows(app, User) == 0


# 400


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"{'to': 'u1', 'title': 'Hi'}",
        b'{"to": "u1", "title": "Hi",}',
        b'{"to": "u1", "title": "Hi"} trailing',
        b"not json at all",
        b"\xff\xfe\x00",
        b'{"to": "u1", "title": "bad \xff byte"}',
    ],
    ids=[
        "unclosed",
        "single-quotes",
        "trailing-comma",
        "trailing-text",
        "text",
        "bad-bytes",
        "bad-utf8",
    ],
)
def test_malformed_json_is_400(app, producer, raw):
    response = producer.post("/notifications", data=raw, content_type="application/json")
    error = contract_error(response, 400)
    assert error["code"] == "malformed_json"
    assert_nothing_written(app)


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n\t"], ids=["empty", "spaces", "whitespace"])
def test_empty_body_with_json_content_type_is_400(app, producer, raw):
    response = producer.post("/notifications", data=raw, content_type="application/json")
    contract_error(response, 400, "malformed_json")
    assert_nothing_written(app)


def test_an_optional_body_may_be_empty_but_not_blank(app, producer):
    blank = producer.put("/users/u1", data=b" ", content_type="application/json")
    contract_error(blank, 400, "malformed_json")
    assert_nothing_written(app)
    assert producer.put("/users/u1", data=b"", content_type="application/json").status_code == 201


def test_malformed_json_on_other_routes_is_400(app, producer, user_client):
    contract_error(producer.put("/users/u1", data=b"{", content_type="application/json"), 400)
    assert_nothing_written(app)
    ana = user_client("ana")
    contract_error(ana.put("/me/preferences", data=b"[", content_type="application/json"), 400)


def test_valid_json_of_the_wrong_shape_is_422_not_400(producer):
    for raw in (b"[]", b"42", b'"text"', b"null"):
        response = producer.post("/notifications", data=raw, content_type="application/json")
        contract_error(response, 422, "validation_error")


# 401, 403, 409 (their causes are covered in test_auth and test_idempotency)


def test_401_403_and_409_are_in_the_contract_shape(client, producer, user_client):
    contract_error(client.get("/users/u1"), 401)
    ana = user_client("ana")
    contract_error(ana.get("/users/ana"), 403, "forbidden")
    contract_error(producer.get("/me/notifications"), 403, "forbidden")
    headers = {"Idempotency-Key": "k"}
    assert producer.post("/notifications", json=VALID, headers=headers).status_code == 201
    conflict = producer.post("/notifications", json={**VALID, "title": "x"}, headers=headers)
    contract_error(conflict, 409, "idempotency_conflict")


# 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/path"),
        ("GET", "/api/v2/notifications"),
        ("POST", "/users"),
        ("GET", "/users/u1/unknown"),
        ("GET", "/me/nothing-here"),
        ("DELETE", "/notifications/1/deliveries"),
    ],
)
def test_unknown_path_is_404(client, producer, method, path):
    contract_error(client.open(path, method=method), 404, "not_found")
    contract_error(producer.client.open(path, method=method), 404, "not_found")


def test_unknown_resource_is_404(producer):
    contract_error(producer.get("/users/nobody"), 404, "not_found")
    contract_error(producer.get("/notifications/123"), 404, "not_found")


# 405


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/notifications", "POST"),
        ("GET", "/notifications", "POST"),
        ("PATCH", "/users/u1", "PUT"),
        ("POST", "/users/u1", "GET"),
        ("GET", "/me/notifications/1/read", "POST"),
        ("GET", "/me/notifications/read-all", "POST"),
        ("GET", "/me/notifications/seen", "POST"),
        ("PUT", "/healthz", "GET"),
    ],
)
def test_wrong_method_is_405(client, method, path, allowed):
    response = client.open(path, method=method)
    error = contract_error(response, 405, "method_not_allowed")
    assert allowed in error["details"]["allowed"], error
    assert allowed in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/me/notifications/read-all", "/me/notifications/seen"])
def test_allow_names_only_the_methods_a_path_has(client, path):
    """`read-all` and `seen` were also taken for a notification id: GET on them was a 404
    "notification not found", and OPTIONS advertised GET (found by schemathesis)."""
    allowed = client.options(path).headers["Allow"]
    assert {method.strip() for method in allowed.split(",")} == {"OPTIONS", "POST"}


# 413


def test_body_over_one_mebibyte_is_413(app, producer):
    assert app.config["MAX_CONTENT_LENGTH"] == ONE_MIB
    padding = ONE_MIB + 1 - len(json.dumps({**VALID, "body": ""}))
    raw = json.dumps({**VALID, "body": "x" * padding})
    assert len(raw.encode()) == ONE_MIB + 1
    response = producer.post("/notifications", data=raw, content_type="application/json")
    error = contract_error(response, 413, "payload_too_large")
    assert error["details"]["limit_bytes"] == ONE_MIB
    assert_nothing_written(app)


def test_much_larger_body_is_413(app, producer):
    raw = json.dumps({**VALID, "data": {"blob": "x" * (3 * ONE_MIB)}})
    response = producer.post("/notifications", data=raw, content_type="application/json")
    contract_error(response, 413, "payload_too_large")
    assert_nothing_written(app)


def test_body_of_exactly_one_mebibyte_is_not_413(app, producer):
    padding = ONE_MIB - len(json.dumps({**VALID, "body": ""}))
    raw = json.dumps({**VALID, "body": "x" * padding})
    assert len(raw.encode()) == ONE_MIB
    response = producer.post("/notifications", data=raw, content_type="application/json")
    # Read and validated (the body is too long for the field), not refused for its size.
    error = contract_error(response, 422, "validation_error")
    assert "body" in error["details"]
    assert_nothing_written(app)


# 415


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "text/json", "application/xml"],
)
def test_non_json_content_type_is_415(app, producer, content_type):
    kwargs = {} if content_type is None else {"content_type": content_type}
    response = producer.post("/notifications", data=json.dumps(VALID), **kwargs)
    contract_error(response, 415, "unsupported_media_type")
    assert_nothing_written(app)


def test_form_post_is_415(app, producer):
    response = producer.post("/notifications", data={"to": "u1", "title": "Hi"})
    contract_error(response, 415, "unsupported_media_type")
    assert_nothing_written(app)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_json_content_types_are_accepted(producer, content_type):
    response = producer.post("/notifications", data=json.dumps(VALID), content_type=content_type)
    assert response.status_code == 201, response.get_json()


# 422


def test_validation_error_names_each_bad_field(app, producer):
    response = producer.post(
        "/notifications",
        json={"to": "u1", "title": "", "priority": "urgent", "action_url": "ftp://x", "x": 1},
    )
    error = contract_error(response, 422, "validation_error")
    assert {"title", "priority", "action_url", "x"} <= set(error["details"]), error
    assert all(isinstance(text, str) and text for text in error["details"].values())
    assert_nothing_written(app)


# 500


SECRET_DETAIL = "boom-secret-detail-7f3a"


@pytest.fixture
def failing_app(database_url: str) -> Iterator[Flask]:
    """A separate app with a route that raises, so the shared app is untouched."""
    application = create_app(app_config(database_url))

    @application.get("/test-only/boom")
    def boom() -> str:
        raise RuntimeError(SECRET_DETAIL)

    yield application
    with application.app_context():
        db.engine.dispose()


def test_unhandled_exception_is_500_internal_error(failing_app, caplog):
    caplog.set_level(logging.ERROR, logger="app.api.errors")
    response = failing_app.test_client().get("/test-only/boom")
    error = contract_error(response, 500, "internal_error")

    request_id = error["details"]["request_id"]
    assert isinstance(request_id, str)
    assert request_id
    assert request_id != "-"
    assert response.headers["X-Request-ID"] == request_id

    text = response.get_data(as_text=True)
    for leak in ("Traceback", SECRET_DETAIL, "RuntimeError", "test_errors.py", 'File "'):
        assert leak not in text, text

    records = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.exc_info is not None
    ]
    assert len(records) == 1, caplog.records
    [record] = records
    assert record.exc_info[0] is RuntimeError
    assert str(record.exc_info[1]) == SECRET_DETAIL
    assert request_id in record.getMessage()


def test_500_uses_the_callers_request_id(failing_app, caplog):
    caplog.set_level(logging.ERROR, logger="app.api.errors")
    client = failing_app.test_client()
    response = client.get("/test-only/boom", headers={"X-Request-ID": "req-abc.123"})
    error = contract_error(response, 500, "internal_error")
    assert error["details"]["request_id"] == "req-abc.123"
    assert response.headers["X-Request-ID"] == "req-abc.123"
    assert any("req-abc.123" in record.getMessage() for record in caplog.records)

    # An unsafe id is replaced, not echoed.
    unsafe = client.get("/test-only/boom", headers={"X-Request-ID": "bad id <script>"})
    error = contract_error(unsafe, 500, "internal_error")
    assert error["details"]["request_id"] != "bad id <script>"
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", error["details"]["request_id"])
    assert unsafe.headers["X-Request-ID"] == error["details"]["request_id"]


def test_each_500_gets_its_own_request_id(failing_app):
    client = failing_app.test_client()
    ids = {
        contract_error(client.get("/test-only/boom"), 500)["details"]["request_id"]
        for _ in range(3)
    }
    assert len(ids) == 3


def test_failing_app_leaves_the_shared_app_untouched(app, failing_app, producer):
    assert failing_app is not app
    assert "boom" not in app.view_functions
    contract_error(producer.get("/test-only/boom"), 404, "not_found")
    assert producer.post("/notifications", json=VALID).status_code == 201
