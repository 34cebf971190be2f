"""What every benchmark needs: a fresh database, the migrated app with an API key, real
`python wsgi.py` and `python worker.py` processes, and a results file."""

import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRET = "bench-secret-0123456789-0123456789-0123456789"  # noqa: S105 - a throwaway stack
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
"""The Redis database the suite's stacks use (flushed before each stack starts)."""


def _admin(statement: str) -> None:
    connection = psycopg2.connect(POSTGRES_ADMIN_URL)
    connection.autocommit = True
    connection.cursor().execute(statement)
    connection.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, method: str, credential: str, body: Any = None, timeout: float = 30) -> Any:
    """One JSON request; the decoded answer."""
    data = json.dumps(body).encode() if body is not None else None
    outgoing = urllib.request.Request(url, data=data, method=method)
    outgoing.add_header("Authorization", f"Bearer {credential}")
    if data is not None:
        outgoing.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(outgoing, timeout=timeout) as response:
        return json.loads(response.read())


def postgres_url(database: str) -> str:
    """The URL of a database on the benchmarks' Postgres."""
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


def existing_databases(like: str) -> list[str]:
    """Names of the databases whose name matches the SQL LIKE pattern `like`."""
    connection = psycopg2.connect(POSTGRES_ADMIN_URL)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
        names = [name for (name,) in cursor.fetchall()]
    connection.close()
    return names


def create_database(database: str, template: str | None = None) -> None:
    """A new database `database` (dropped first if it exists): empty, or a copy of
    `template`."""
    drop_database(database)
    # A file copy: the default strategy writes a large template's every page to the WAL.
    copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
    _admin(f"CREATE DATABASE {database}{copy}")


def drop_database(database: str) -> None:
    """Drop `database` if it exists, closing its connections."""
    _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def rename_database(database: str, new_name: str) -> None:
    """Rename `database`; nothing may be connected to it."""
    _admin(f"ALTER DATABASE {database} RENAME TO {new_name}")


def migrate(env: dict[str, str]) -> None:
    """`flask db upgrade` on the environment's DATABASE_URL."""
    subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@contextmanager
def prepared(
    database: str, template: str | None = None, **settings: str
) -> Iterator[tuple[dict[str, str], str]]:
    """A fresh, migrated database (a copy of `template` when given) and an API key; yields
    (environment, key), then drops it."""
    create_database(database, template)
    env = os.environ | {
        "DATABASE_URL": postgres_url(database),
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        # The load is one API key at full speed: a limit would measure itself.
        "RATE_LIMIT_ENABLED": "false",
        "WORKER_METRICS_ADDRESS": "",
        "ALLOW_PRIVATE_DESTINATIONS": "true",
        **settings,
    }
    try:
        migrate(env)
        key = subprocess.run(
            [
                str(Path(sys.executable).parent / "flask"),
                "--app",
                "wsgi",
                "keys",
                "create",
                "bench",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        yield env, key
    finally:
        drop_database(database)


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A process of the project (its output discarded), stopped on exit."""
    running = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield running
    finally:
        running.terminate()
        running.wait(timeout=30)


@contextmanager
def web_process(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python wsgi.py` on a free port, answering; yields its base URL and process."""
    port = free_port()
    with process([sys.executable, "wsgi.py"], env | {"PORT": str(port)}) as running:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url, running


@contextmanager
def web_server(env: dict[str, str]) -> Iterator[str]:
    """`python wsgi.py` on a free port, answering; yields its base URL."""
    with web_process(env) as (url, _):
        yield url


def write_results(name: str, results: dict[str, Any]) -> Path:
    """bench/results/<date>-<host>-<name>.json with the machine, the commit and `results`."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    record = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(),
        "host": platform.node(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "git_sha": commit,
        "results": results,
    }
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-{platform.node()}-{name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    return out


@dataclass
class Stack:
    """A running stack: its environment, API key and web process URLs."""

    env: dict[str, str]
    key: str
    urls: list[str]
    web_processes: list[subprocess.Popen]
    exits: ExitStack

    @property
    def url(self) -> str:
        return self.urls[0]

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        """One JSON request to the first web process with the API key."""
        return request(f"{self.url}{path}", method, self.key, body, timeout)

    def start_worker(self, *queues: str) -> subprocess.Popen:
        """Another `python worker.py`, stopped with the stack."""
        return self.exits.enter_context(process([sys.executable, "worker.py", *queues], self.env))


@dataclass
class Bench:
    """What a scenario is given: the size it runs at (`tiny`, `quick`, `full`), that size's
    settings from the scenario's SIZES, and the async mode of the web processes."""

    size: str
    settings: dict[str, Any]
    async_mode: str = "eventlet"

    @contextmanager
    def stack(
        self, name: str, web: int = 1, template: str | None = None, **settings: str
    ) -> Iterator[Stack]:
        """A fresh database `notify_bench_<name>` (a copy of the database `template` when
        given), a flushed Redis, and `web` web processes started as the Procfile starts them;
        stopped and dropped on exit."""
        redis.Redis.from_url(REDIS_URL).flushdb()
        base = {"REDIS_URL": REDIS_URL, "ASYNC_MODE": self.async_mode}
        with ExitStack() as exits:
            database = f"notify_bench_{name}"
            env, key = exits.enter_context(prepared(database, template, **base, **settings))
            webs = [exits.enter_context(web_process(env)) for _ in range(web)]
            yield Stack(env, key, [url for url, _ in webs], [p for _, p in webs], exits)
