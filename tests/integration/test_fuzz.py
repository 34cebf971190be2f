"""Schemathesis against a real server's /openapi.json: no 5xx, every response as documented,
and bad input refused in the contract's error shape.

One run covers every operation, each with the credential its `security` names (an API key,
or a user token for `/me`), from a fixed seed and a bounded number of examples, so a finding
reproduces. The database is a throwaway one: destructive operations are fuzzed too, and none
can destroy the credentials (keys are revoked only from the CLI, and the token's user has an
id the fuzzer never generates).
"""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, drop_postgres_database, recreate_postgres_database
from tests.servers import (
    RedisServer,
    call,
    create_api_key,
    migrate,
    server_environment,
    web_server,
)

SEED = 20261122
MAX_EXAMPLES = 25
"""Test cases per operation and phase: enough to find the cheap bugs in under a minute."""
FUZZ_USER = "fuzz-user-4b1d9e"
SCHEMATHESIS_SECONDS = 300
"""A hang guard, not a speed check: the run took 50 s on one host of this VM and 90 s on another."""
# The server's start and the checks after the run on top of it.
pytestmark = pytest.mark.timeout(SCHEMATHESIS_SECONDS + 120)
# The limits exist to stop floods; a fuzz run is one on purpose.
UNLIMITED = {"RATE_LIMIT_API_KEY": "100000 per second", "RATE_LIMIT_USER": "100000 per second"}
CONFIG = """
[auth.openapi.apiKey]
bearer = "${NOTIFY_API_KEY}"

[auth.openapi.userToken]
bearer = "${NOTIFY_USER_TOKEN}"

# Whether these are valid depends on more than their shape, which JSON Schema cannot state: a
# template that exists and renders with the context, Jinja2 syntax, a cursor this server
# made, `cursor` and `after` together. For them a well-formed request may be a 422.
[[operations]]
include-operation-id = [
    "notifications.send",
    "templates.put",
    "templates.preview",
    "inbox.list_notifications",
    "users.list_notifications",
]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "409", "422", "429",
]
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real server on a throwaway database and a private Redis; its URL and an API key."""
    name = f"notify_fuzz_{os.getpid()}"
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        env = server_environment(recreate_postgres_database(name), redis.url, **UNLIMITED)
        migrate(env)
        api_key = create_api_key(env, "fuzz")
        with web_server(env, tmp_path / "web.log") as url:
            yield url, api_key
    finally:
        redis.stop()
        drop_postgres_database(name)


def user_token(url: str, api_key: str) -> str:
    """A token for the fuzz user, created for it."""
    call(url, "PUT", f"/users/{FUZZ_USER}", api_key, {})
    return call(url, "POST", f"/users/{FUZZ_USER}/tokens", api_key, {})["token"]


def schemathesis_environment(api_key: str, token: str) -> dict[str, str]:
    """The credentials for the config, our hooks, and no proxy between the fuzzer and
    127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return env | {
        "NOTIFY_API_KEY": api_key,
        "NOTIFY_USER_TOKEN": token,
        "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks",
        "PYTHONPATH": str(PROJECT_ROOT),
    }


def run_schemathesis(url: str, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`st run` with every check on every operation; its exit status and report."""
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    return subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", config),
            *("run", f"{url}/openapi.json", "--checks", "all"),
            *("--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)),
            # One worker: CPython 3.11.7 can fail building an AST in two threads at once
            # (gh-106905), which Hypothesis does while describing strategies.
            *("--generation-database", "none", "--workers", "1", "--no-color"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_SECONDS,
        check=False,
    )


def server_errors(workdir: Path) -> str:
    """The server's log without the access lines: startup, warnings and tracebacks."""
    lines = (workdir / "web.log").read_text().splitlines()
    return "server log:\n" + "\n".join(line for line in lines if "notify.access" not in line)


def test_api_holds_its_openapi_document_under_fuzzing(server, tmp_path):
    url, api_key = server
    token = user_token(url, api_key)
    result = run_schemathesis(url, tmp_path, schemathesis_environment(api_key, token))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{server_errors(tmp_path)}"
    selected = re.search(r"Selected: \d+/(\d+)", result.stdout).group(1)
    assert f"Tested: {selected}\n" in result.stdout, result.stdout
    # The /me routes were fuzzed with a live token, not answered 401 throughout.
    assert "unread_count" in call(url, "GET", "/me/unread-count", token)
