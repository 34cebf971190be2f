"""Settings: defaults, then the environment (and `.env`), then an explicit mapping."""

import os
import secrets
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask
from limits import parse_many
from sqlalchemy import make_url

from app import defaults

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _numbers(*names: str) -> dict[str, float | int]:
    """Each named setting from the environment, else its default in `app.defaults`."""
    values: dict[str, float | int] = {}
    for name in names:
        default = getattr(defaults, name)
        raw = os.environ.get(name)
        values[name] = default if raw is None else type(default)(raw)
    return values


def _origins(value: str | None) -> list[str] | str | None:
    """Browser origins allowed to open a socket: None (the server's own origin only), a list,
    or "*" when set explicitly. Never an empty list, which would switch the check off."""
    origins = [origin.strip() for origin in (value or "").split(",") if origin.strip()]
    if origins == ["*"]:
        return "*"
    return origins or None


def _rate_limit_settings() -> dict[str, Any]:
    return {
        "RATELIMIT_ENABLED": _env_bool("RATE_LIMIT_ENABLED", True),
        # None: REDIS_URL, or memory in the embedded mode (decided once overrides are in).
        "RATELIMIT_STORAGE_URI": os.environ.get("RATE_LIMIT_STORAGE_URI") or None,
        "RATE_LIMIT_API_KEY": os.environ.get("RATE_LIMIT_API_KEY", defaults.RATE_LIMIT_API_KEY),
        "RATE_LIMIT_USER": os.environ.get("RATE_LIMIT_USER", defaults.RATE_LIMIT_USER),
        "RATE_LIMIT_SOCKET_CONNECTS": os.environ.get(
            "RATE_LIMIT_SOCKET_CONNECTS", defaults.RATE_LIMIT_SOCKET_CONNECTS
        ),
        "RATE_LIMIT_SOCKET_EVENTS": os.environ.get(
            "RATE_LIMIT_SOCKET_EVENTS", defaults.RATE_LIMIT_SOCKET_EVENTS
        ),
        **_numbers("SOCKET_MAX_MESSAGE_BYTES"),
    }


def _settings_from_environment(instance_path: str) -> dict[str, Any]:
    sqlite_path = Path(instance_path) / "notify.db"
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{sqlite_path}"
    # Plain postgres(ql):// means psycopg2, the driver we ship (SQLAlchemy 2.1 would pick
    # psycopg 3, and no longer reads Heroku's postgres:// at all).
    for scheme in ("postgres://", "postgresql://"):
        if database_url.startswith(scheme):
            database_url = "postgresql+psycopg2://" + database_url.removeprefix(scheme)
    redis_url = os.environ.get("REDIS_URL") or None
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "USER_TOKEN_SECRET": os.environ.get("USER_TOKEN_SECRET") or None,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "ASYNC_MODE": os.environ.get("ASYNC_MODE", "threading"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "MAX_CONTENT_LENGTH": int(
            os.environ.get("MAX_CONTENT_LENGTH", defaults.MAX_CONTENT_LENGTH)
        ),
        "DEMO_ENABLED": _env_bool("DEMO_ENABLED", database_url.startswith("sqlite")),
        "MAX_CONNECTIONS": int(os.environ.get("MAX_CONNECTIONS", defaults.MAX_CONNECTIONS)),
        **_numbers(
            "API_KEY_CACHE_SECONDS",
            "DELIVERY_MAX_ATTEMPTS",
            "DELIVERY_RETRY_BASE_SECONDS",
            "DELIVERY_RETRY_MAX_SECONDS",
            "DELIVERY_LEASE_SECONDS",
            "DELIVERY_JOB_TIMEOUT_SECONDS",
            "DELIVERY_BATCH",
            "RELAY_INTERVAL_SECONDS",
            "RELAY_GRACE_SECONDS",
            "RELAY_BATCH",
            "CHANNEL_TIMEOUT_SECONDS",
            "PUSH_TTL_SECONDS",
            "SOCKET_EXPIRY_SWEEP_SECONDS",
            "SOCKET_PING_INTERVAL_SECONDS",
            "SOCKET_PING_TIMEOUT_SECONDS",
            "SOCKET_CONNECTS_IN_FLIGHT",
            "RETENTION_DAYS",
            "WEBHOOK_EVENT_RETENTION_DAYS",
            "RETENTION_INTERVAL_SECONDS",
            "RETENTION_BATCH",
        ),
        "PREFERENCES_URL": os.environ.get("PREFERENCES_URL") or None,
        "SMS_BACKEND": os.environ.get("SMS_BACKEND")
        or ("twilio" if os.environ.get("TWILIO_ACCOUNT_SID") else "console"),
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID") or None,
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN") or None,
        "TWILIO_FROM_NUMBER": os.environ.get("TWILIO_FROM_NUMBER") or None,
        "TWILIO_API_BASE": os.environ.get("TWILIO_API_BASE", "https://api.twilio.com"),
        "EMAIL_BACKEND": os.environ.get("EMAIL_BACKEND")
        or ("smtp" if os.environ.get("MAIL_SERVER") else "console"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _env_bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "notify@localhost"),
        # Flask-Mail would otherwise drop every message when TESTING is on.
        "MAIL_SUPPRESS_SEND": False,
        "VAPID_PUBLIC_KEY": os.environ.get("VAPID_PUBLIC_KEY") or None,
        "VAPID_PRIVATE_KEY": os.environ.get("VAPID_PRIVATE_KEY") or None,
        "VAPID_SUBJECT": os.environ.get("VAPID_SUBJECT", "mailto:notify@localhost"),
        "PUSH_BACKEND": os.environ.get("PUSH_BACKEND")
        or ("webpush" if os.environ.get("VAPID_PRIVATE_KEY") else "console"),
        "CORS_ORIGINS": _origins(os.environ.get("CORS_ORIGINS")),
        # Embedded (development) sends anywhere, a local webhook receiver included.
        "ALLOW_PRIVATE_DESTINATIONS": _env_bool(
            "ALLOW_PRIVATE_DESTINATIONS", database_url.startswith("sqlite")
        ),
        "SESSION_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", False),
        "SOCKET_COMPRESSION": _env_bool("SOCKET_COMPRESSION", False),
        "PROXY_FIX_HOPS": int(os.environ.get("PROXY_FIX_HOPS", "0")),
        **_rate_limit_settings(),
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        "WORKER_METRICS_ADDRESS": os.environ.get(
            "WORKER_METRICS_ADDRESS", defaults.WORKER_METRICS_ADDRESS
        ),
        "MIGRATIONS_DIRECTORY": PROJECT_ROOT / "migrations",
    }


def _engine_options(database_url: str) -> dict[str, Any]:
    # Logged errors must not carry emails or phone numbers from the SQL parameters.
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if database_url.startswith("postgresql"):
        # A database host that does not answer fails the request (503) instead of hanging it.
        options["connect_args"] = {"connect_timeout": defaults.DATABASE_CONNECT_TIMEOUT_SECONDS}
        pool = _numbers("DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW")
        options["pool_size"] = pool["DATABASE_POOL_SIZE"]
        options["max_overflow"] = pool["DATABASE_MAX_OVERFLOW"]
    return options


CONNECT_READS = "connect_reads"
"""The bind socket connects read through: its own pool of SOCKET_CONNECTS_IN_FLIGHT
connections, one for each connect the gate lets in, so a connect never waits for one."""


def _connect_reads_options(database_url: str, in_flight: int) -> dict[str, Any]:
    """The engine options of the CONNECT_READS bind."""
    return {
        **_engine_options(database_url),
        "url": database_url,
        # Connects only read, so their connections stay in autocommit: no isolation level to
        # set and reset at each checkout, no BEGIN and no ROLLBACK.
        "isolation_level": "AUTOCOMMIT",
        "pool_reset_on_return": None,
        # Pinged only after sitting idle (app.db.ping_after_idle), not at every checkout.
        "pool_pre_ping": False,
        "pool_size": in_flight,
        "max_overflow": 0,
    }


def _in_memory_sqlite(database_url: str) -> bool:
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


def load_config(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Fill `app.config` from the environment (after reading `.env`), then `overrides`."""
    load_dotenv()
    app.config.from_mapping(_settings_from_environment(app.instance_path))
    app.json.sort_keys = False
    if overrides:
        app.config.from_mapping(overrides)
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    if _in_memory_sqlite(database_url):
        raise RuntimeError(
            "DATABASE_URL names an in-memory SQLite database, which each connection would see "
            "empty: name a file instead (sqlite:///path/to/notify.db)"
        )
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(database_url))
    app.config.setdefault("SQLALCHEMY_BINDS", {}).setdefault(
        CONNECT_READS,
        _connect_reads_options(database_url, app.config["SOCKET_CONNECTS_IN_FLIGHT"]),
    )
    embedded = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    if embedded:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["SECRET_KEY"] is None:
        if not embedded:
            raise RuntimeError(
                "SECRET_KEY is not set: every web process and worker must share one secret "
                "(for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    if app.config["USER_TOKEN_SECRET"] is None:
        app.config["USER_TOKEN_SECRET"] = app.config["SECRET_KEY"]
    _settle_rate_limits(app)
    if app.config["DELIVERY_LEASE_SECONDS"] <= app.config["DELIVERY_JOB_TIMEOUT_SECONDS"]:
        raise RuntimeError(
            "DELIVERY_LEASE_SECONDS must be longer than DELIVERY_JOB_TIMEOUT_SECONDS, or a job "
            "still sending could see its delivery handed to another worker"
        )
    if app.config["DELIVERY_BATCH"] < 1:
        raise RuntimeError("DELIVERY_BATCH must be at least 1: it is how many rows a job sends")
    if app.config["SOCKET_CONNECTS_IN_FLIGHT"] < 1:
        raise RuntimeError(
            "SOCKET_CONNECTS_IN_FLIGHT must be at least 1: it is how many socket connects a "
            "process works on at once"
        )


RATE_LIMIT_SETTINGS = (
    "RATE_LIMIT_API_KEY",
    "RATE_LIMIT_USER",
    "RATE_LIMIT_SOCKET_CONNECTS",
    "RATE_LIMIT_SOCKET_EVENTS",
)


def _settle_rate_limits(app: Flask) -> None:
    """Pick the limits' storage, and refuse to start on a limit that does not parse instead
    of failing every request."""
    storage = app.config["RATELIMIT_STORAGE_URI"] or app.config["REDIS_URL"] or "memory://"
    app.config["RATELIMIT_STORAGE_URI"] = storage
    if storage.startswith("redis"):
        # A Redis that does not answer must not hold requests up (the limiter then counts in
        # memory until it is back).
        timeout = defaults.RATE_LIMIT_STORAGE_TIMEOUT_SECONDS
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
    for name in RATE_LIMIT_SETTINGS:
        try:
            parse_many(app.config[name])
        except ValueError as error:
            raise RuntimeError(
                f"{name}={app.config[name]!r} is not a rate limit such as '100 per second' "
                "or '10/second; 500/minute'"
            ) from error


def _instance_secret(instance_path: Path) -> str:
    """The embedded default's secret: made once, kept in the instance folder, so tokens
    survive restarts without anyone setting SECRET_KEY."""
    path = instance_path / "secret_key"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as secret_file:
        secret_file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
