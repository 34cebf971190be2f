"""The README's curl walkthrough, run verbatim against a real `python wsgi.py` server."""

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    PROJECT_ROOT,
    REDIS_URL,
    drop_postgres_database,
    recreate_postgres_database,
)
from tests.servers import migrate, server_environment, web_server


def readme_walkthrough() -> str:
    """The first shell block under the README's `## Walkthrough` heading."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Walkthrough", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


@pytest.fixture(params=["embedded", "postgres-redis"])
def server_env(request, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment of a real server: embedded SQLite, or PostgreSQL with Redis."""
    if request.param == "embedded":
        yield server_environment(f"sqlite:///{tmp_path / 'notify.db'}", None)
        return
    name = f"notify_walkthrough_{os.getpid()}"
    yield server_environment(recreate_postgres_database(name), REDIS_URL)
    drop_postgres_database(name)


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A migrated database and `python wsgi.py` serving it; the base URL."""
    migrate(server_env)
    with web_server(server_env, tmp_path / "server.log") as url:
        yield url


def test_readme_walkthrough_works_verbatim(server, server_env):
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_walkthrough()],
        cwd=PROJECT_ROOT,
        env=server_env | {"NOTIFY": server},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    user, sent, inbox, read, receipt = outputs[0], outputs[1], outputs[2], outputs[3], outputs[4]
    assert user["user_id"] == "ana"
    assert user["email"] == "ana@example.com"
    [notification] = sent["notifications"]
    assert inbox["unread_count"] == 1
    assert inbox["items"][0]["id"] == notification["id"]
    assert read["read_at"] is not None
    assert receipt["id"] == notification["id"]
    assert receipt["read_at"] == read["read_at"]
    assert receipt["seen_at"] is not None
    assert receipt["deliveries"] == [
        {
            "channel": "in_app",
            "status": "sent",
            "attempts": 1,
            "last_error": None,
            "updated_at": receipt["created_at"],
        }
    ]
