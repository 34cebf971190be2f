"""The README's curl walkthrough, run verbatim against a real `python wsgi.py` server."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    PROJECT_ROOT,
    REDIS_URL,
    TEST_SECRET,
    drop_postgres_database,
    recreate_postgres_database,
)

STARTUP_SECONDS = 30


def readme_walkthrough() -> str:
    """The first shell block under the README's `## Walkthrough` heading."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Walkthrough", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server did not answer at {url} within {STARTUP_SECONDS}s")


@pytest.fixture(params=["embedded", "postgres-redis"])
def server_env(request, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment of a real server: embedded SQLite, or PostgreSQL with Redis."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"SECRET_KEY": TEST_SECRET, "PYTHONUNBUFFERED": "1", "ASYNC_MODE": "eventlet"}
    if request.param == "embedded":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'notify.db'}"
        yield env
        return
    name = f"notify_walkthrough_{os.getpid()}"
    env["DATABASE_URL"] = recreate_postgres_database(name)
    env["REDIS_URL"] = REDIS_URL
    yield env
    drop_postgres_database(name)


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A migrated database and `python wsgi.py` serving it; the base URL."""
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [bin_dir / "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=PROJECT_ROOT,
        env=server_env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "wsgi.py"],
        cwd=PROJECT_ROOT,
        env=server_env | {"HOST": "127.0.0.1", "PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


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
