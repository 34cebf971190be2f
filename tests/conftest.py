"""Fixtures: an app per database engine (real Postgres and SQLite, migrated with Alembic),
a clean database per test, and clients acting as a producer or as one user.

Postgres and Redis must answer; a missing service stops the run with a clear message.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from psycopg2 import sql
from sqlalchemy import text

from app import create_app
from app.extensions import db, socketio
from app.services.credentials import create_api_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# One database per pytest process, so parallel runs on one machine never collide.
TEST_DATABASE = os.environ.get("TEST_DATABASE_NAME", f"notify_test_{os.getpid()}")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-0123456789-0123456789-0123456789"
NOTIFICATION_FIELDS = {
    "id",
    "user_id",
    "category",
    "title",
    "body",
    "data",
    "action_url",
    "priority",
    "created_at",
    "seen_at",
    "read_at",
    "archived_at",
}
"""The fields of the contract's notification object."""
TABLES = (
    "idempotency_records",
    "webhook_events",
    "templates",
    "deliveries",
    "notifications",
    "push_subscriptions",
    "preferences",
    "webhooks",
    "api_keys",
    "users",
)


def postgres_url(database: str) -> str:
    """The admin URL pointed at another database."""
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def _postgres_version() -> str:
    try:
        connection = psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3)
        with connection, connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]
    except psycopg2.OperationalError as error:
        raise pytest.UsageError(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error}. "
            "Run the tests with scripts/test, which starts or installs it."
        ) from error


def _redis_version() -> str:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=3).info("server")["redis_version"]
    except redis.RedisError as error:
        raise pytest.UsageError(
            f"Redis is not reachable at {REDIS_URL}: {error}. "
            "Run the tests with scripts/test, which starts or installs it."
        ) from error


SERVICES: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Fail the whole run at once, with a message, when Postgres or Redis does not answer."""
    SERVICES["postgres"] = _postgres_version()
    SERVICES["redis"] = _redis_version()


def pytest_report_header() -> list[str]:
    """Say which real services this run uses."""
    return [
        f"services: PostgreSQL {SERVICES['postgres']} at {POSTGRES_ADMIN_URL}, "
        f"Redis {SERVICES['redis']} at {REDIS_URL}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs an app on both engines, unless it is marked postgres_only."""
    if "engine" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("postgres_only")
        engines = ["postgresql"] if marker else ["postgresql", "sqlite"]
        metafunc.parametrize("engine", engines, indirect=True, scope="session")


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine under test: `postgresql` or `sqlite`."""
    return request.param


def _admin(*statements: sql.Composable) -> None:
    connection = psycopg2.connect(POSTGRES_ADMIN_URL)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.close()


def recreate_postgres_database(name: str) -> str:
    """Drop and create a Postgres database; its URL."""
    _admin(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)),
    )
    return postgres_url(name)


def drop_postgres_database(name: str) -> None:
    """Drop a Postgres database, closing its connections."""
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def app_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """The settings of an app under test."""
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": REDIS_URL,
        "ASYNC_MODE": "threading",
        "DEMO_ENABLED": True,
        # Every provider and webhook receiver under test listens on 127.0.0.1.
        "ALLOW_PRIVATE_DESTINATIONS": True,
        **overrides,
    }


@pytest.fixture(scope="session")
def database_url(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database of the engine under test, dropped after the run."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'notify.db'}"
        return
    url = recreate_postgres_database(TEST_DATABASE)
    yield url.replace("postgresql://", "postgresql+psycopg2://")
    drop_postgres_database(TEST_DATABASE)


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    """The app on a database migrated with the project's Alembic migrations."""
    application = create_app(app_config(database_url))
    with application.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
    yield application
    with application.app_context():
        db.engine.dispose()


def clean_database(application: Flask) -> None:
    """Empty every table and restart the ids."""
    with application.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                db.session.execute(text(f"DELETE FROM {table}"))
            db.session.execute(text("DELETE FROM sqlite_sequence"))
        db.session.commit()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" in request.fixturenames:
        clean_database(request.getfixturevalue("app"))
        # Jobs queued by this test name delivery ids the next test will use again.
        redis.Redis.from_url(REDIS_URL).flushdb()
        # Each test starts with the full rate-limit budgets (the SQLite app counts in memory).
        request.getfixturevalue("app").extensions["rate_limiter"].reset()


@pytest.fixture
def app_with(app: Flask, database_url: str) -> Iterator[Any]:
    """Build more apps on the test database with other settings (`app_with(KEY=value)`);
    afterwards the shared Socket.IO instance points at the session's app again."""
    yield lambda **overrides: create_app(app_config(database_url, **overrides))
    socketio.init_app(app, async_mode="threading", client_manager=None)


@pytest.fixture
def smtp() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on a free port, recording what it accepts."""
    from tests.smtp import SmtpServer  # it needs this module's helpers: imported late

    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An HTTP client with no credential."""
    return app.test_client()


class ApiClient:
    """A test client that sends one bearer credential with every request."""

    def __init__(self, client: FlaskClient, credential: str) -> None:
        self.client = client
        self.credential = credential

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}", **(headers or {})}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.client.put(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(
            path, headers=self._headers(kwargs.pop("headers", None)), **kwargs
        )


@pytest.fixture
def api_key(app: Flask) -> str:
    """A live producer API key."""
    with app.app_context():
        new_key = create_api_key(db.session, "tests")
        db.session.commit()
        return new_key.secret


@pytest.fixture
def producer(client: FlaskClient, api_key: str) -> ApiClient:
    """A client authenticated with an API key."""
    return ApiClient(client, api_key)


@pytest.fixture
def user_client(client: FlaskClient, producer: ApiClient):
    """Make a client acting as a user (created if needed) with a fresh user token."""

    def make(user_id: str, **user_fields: Any) -> ApiClient:
        assert producer.put(f"/users/{user_id}", json=user_fields).status_code in {200, 201}
        response = producer.post(f"/users/{user_id}/tokens", json={})
        assert response.status_code == 201, response.get_json()
        return ApiClient(client, response.get_json()["token"])

    return make


def send(producer: ApiClient, **body: Any) -> list[str]:
    """POST /notifications and return the new ids (asserting 201)."""
    response = producer.post("/notifications", json=body)
    assert response.status_code == 201, response.get_json()
    return [item["id"] for item in response.get_json()["notifications"]]


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the contract's error shape and status (and code); the error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error
