"""Settings read from the environment."""

import re

import pytest
from flask import Flask

from app.config import CONNECT_READS, PROJECT_ROOT, load_config


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("*", "*"),
        ("https://a.example", ["https://a.example"]),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
    ],
)
def test_socket_origins_default_to_same_origin_and_never_to_an_empty_list(
    monkeypatch, tmp_path, value, expected
):
    if value is None:
        monkeypatch.delenv("CORS_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("CORS_ORIGINS", value)
    app = Flask(__name__, instance_path=str(tmp_path))
    load_config(app, {"SECRET_KEY": "x" * 40})
    assert app.config["CORS_ORIGINS"] == expected


def test_a_server_database_requires_a_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://db.internal/notify")
    app = Flask(__name__, instance_path=str(tmp_path))
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        load_config(app)


def test_the_embedded_mode_makes_and_keeps_its_own_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    first = Flask(__name__, instance_path=str(tmp_path))
    load_config(first)
    second = Flask(__name__, instance_path=str(tmp_path))
    load_config(second)
    assert len(first.config["SECRET_KEY"]) >= 32
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert first.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_postgres_urls_use_psycopg2(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    app = Flask(__name__, instance_path=str(tmp_path))
    load_config(app, {"SECRET_KEY": "x" * 40})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@h/db"


def _settings_read_from_the_environment() -> set[str]:
    source = (PROJECT_ROOT / "app" / "config.py").read_text()
    named = set(re.findall(r'(?:environ\.get|_env_bool)\(\s*"([A-Z_]+)"', source))
    for block in re.finditer(r"_numbers\(([^)]*)\)", source):
        named |= set(re.findall(r'"([A-Z_]+)"', block.group(1)))
    return named


def test_every_setting_is_documented_in_the_readme_and_the_env_example():
    settings = _settings_read_from_the_environment()
    assert {"DATABASE_URL", "RATE_LIMIT_API_KEY", "RETENTION_DAYS", "RELAY_BATCH"} <= settings
    readme = (PROJECT_ROOT / "README.md").read_text()
    example = (PROJECT_ROOT / ".env.example").read_text()
    missing_from_readme = {name for name in settings if f"`{name}`" not in readme}
    missing_from_example = {name for name in settings if f"{name}=" not in example}
    assert not missing_from_readme
    assert not missing_from_example


def test_socket_connects_read_through_a_bind_of_their_own_on_the_overridden_database(tmp_path):
    url = "postgresql+psycopg2://u@h/db"
    app = Flask(__name__, instance_path=str(tmp_path))
    load_config(
        app,
        {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "s" * 40, "SOCKET_CONNECTS_IN_FLIGHT": 7},
    )
    reads = app.config["SQLALCHEMY_BINDS"][CONNECT_READS]
    assert reads["url"] == url
    assert (reads["pool_size"], reads["max_overflow"]) == (7, 0)
    assert reads["isolation_level"] == "AUTOCOMMIT"
    assert not reads["pool_pre_ping"]
    # The API's engine is configured for the overridden database too (its pool settings).
    assert "pool_size" in app.config["SQLALCHEMY_ENGINE_OPTIONS"]


def test_binds_given_in_the_settings_keep_the_connects_bind(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    binds = {"reports": {"url": "postgresql+psycopg2://u@h/reports"}}
    load_config(app, {"SQLALCHEMY_BINDS": binds, "SECRET_KEY": "s" * 40})
    assert set(app.config["SQLALCHEMY_BINDS"]) == {"reports", CONNECT_READS}


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
def test_an_in_memory_sqlite_database_is_refused_with_the_reason(tmp_path, url):
    app = Flask(__name__, instance_path=str(tmp_path))
    with pytest.raises(RuntimeError, match="in-memory SQLite"):
        load_config(app, {"SQLALCHEMY_DATABASE_URI": url})
