"""Probes, request ids and structured logs."""

import json
import logging

from app import create_app
from tests.conftest import app_config


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_names_what_is_down(database_url):
    broken = create_app(app_config(database_url, REDIS_URL="redis://127.0.0.1:1/0"))
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "not_ready"
    assert set(error["details"]) == {"redis"}
    assert "redis" in error["message"]


def test_readyz_reports_an_unreachable_database():
    broken = create_app(
        app_config("postgresql+psycopg2://postgres@127.0.0.1:1/none", REDIS_URL=None)
    )
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert set(response.get_json()["error"]["details"]) == {"database"}


def test_request_id_is_echoed_or_made(client):
    supplied = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert supplied.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"] != "bad id with spaces"
    assert len(made.headers["X-Request-ID"]) == 32


def test_json_access_log_line(database_url, capsys):
    app = create_app(app_config(database_url, LOG_FORMAT="json"))
    try:
        app.test_client().get("/healthz", headers={"X-Request-ID": "rid-1"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        logging.getLogger().handlers.clear()
    [entry] = [line for line in lines if line.get("request_id") == "rid-1"]
    assert entry["logger"] == "notify.access"
    assert entry["route"] == "/healthz"
    assert entry["status"] == 200
    assert entry["method"] == "GET"
    assert isinstance(entry["duration_ms"], float)
    assert entry["time"].endswith("Z")


def test_security_headers(client):
    api = client.get("/healthz")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers
    for path in ("/", "/docs", "/embed"):
        page = client.get(path)
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy
        assert page.headers["X-Content-Type-Options"] == "nosniff"
