"""A whole production-shaped stack for end-to-end tests: PostgreSQL (a fresh database), a
private Redis, a real SMTP server, `python wsgi.py` and any number of `python worker.py`."""

import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg2
from redis import Redis

from tests.conftest import PROJECT_ROOT, drop_postgres_database, recreate_postgres_database
from tests.servers import (
    RedisServer,
    call,
    migrate,
    server_environment,
    stop,
    web_server,
)
from tests.smtp import SmtpServer

FAST_RETRIES = {
    "DELIVERY_RETRY_BASE_SECONDS": "0.2",
    "DELIVERY_RETRY_MAX_SECONDS": "1",
    "DELIVERY_MAX_ATTEMPTS": "4",
    "DELIVERY_JOB_TIMEOUT_SECONDS": "10",
    "DELIVERY_LEASE_SECONDS": "12",
    "RELAY_INTERVAL_SECONDS": "0.5",
    "RELAY_GRACE_SECONDS": "1",
}


class Stack:
    """Started with `start()`, stopped with `close()`; `workdir` keeps every process's log."""

    def __init__(self, workdir: Path, name: str, **settings: str) -> None:
        self.workdir = workdir
        self.name = f"{name}_{os.getpid()}"
        self.redis = RedisServer(workdir)
        # Made in start(): an aiosmtpd controller owns an event loop from its first moment.
        self.smtp: SmtpServer
        self.exits = ExitStack()
        self.workers: list[subprocess.Popen] = []
        self.settings = FAST_RETRIES | settings
        self.env: dict[str, str] = {}
        self.url = ""
        self.api_key = ""

    def start(self) -> "Stack":
        self.redis.start()
        self.smtp = SmtpServer()
        self.smtp.start()
        self.env = server_environment(
            recreate_postgres_database(self.name),
            self.redis.url,
            EMAIL_BACKEND="smtp",
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(self.smtp.port),
            MAIL_DEFAULT_SENDER="notify@example.com",
            PREFERENCES_URL="https://app.example/settings/notifications",
            **self.settings,
        )
        migrate(self.env)
        self.api_key = subprocess.run(
            [Path(sys.executable).parent / "flask", "--app", "wsgi", "keys", "create", "e2e"],
            cwd=PROJECT_ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.url = self.exits.enter_context(web_server(self.env, self.workdir / "web.log"))
        return self

    def start_worker(self) -> subprocess.Popen:
        log = (self.workdir / f"worker{len(self.workers) + 1}.log").open("w")
        self.exits.callback(log.close)
        process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        self.exits.callback(stop, process)
        return process

    def close(self) -> None:
        self.exits.close()
        self.smtp.stop()
        self.redis.stop()
        drop_postgres_database(self.name)

    def call(self, method: str, path: str, body: Any = None, credential: str = "") -> Any:
        """One JSON request with the API key (or another credential); the decoded answer."""
        return call(self.url, method, path, credential or self.api_key, body)

    def send(self, **body: Any) -> list[str]:
        return [n["id"] for n in self.call("POST", "/notifications", body)["notifications"]]

    def deliveries(self, notification_id: str) -> dict[str, dict[str, Any]]:
        detail = self.call("GET", f"/notifications/{notification_id}")
        return {d["channel"]: d for d in detail["deliveries"]}

    def settled(self, notification_id: str, channel: str) -> dict[str, Any]:
        """That channel's delivery once it is no longer `queued` (sent, failed or skipped)."""
        return self.wait_for(
            lambda: (d := self.deliveries(notification_id)[channel])["status"] != "queued" and d,
            what=f"the {channel} delivery of notification {notification_id} to settle",
        )

    def wait_for(self, check, timeout: float = 60, what: str = "the condition") -> Any:
        """Poll `check()` until it returns something truthy; fail with the logs otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.1)
        logs = "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}" for path in self.workdir.glob("*.log")
        )
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def scheduler_locks(self) -> list[bytes]:
        """The queues' locks that RQ's scheduler holds in this stack's Redis."""
        connection = Redis.from_url(self.redis.url)
        try:
            return connection.keys("rq:scheduler-lock:*")
        finally:
            connection.close()

    def statuses(self) -> dict[str, int]:
        """How many deliveries are in each status, straight from the database."""
        with psycopg2.connect(self.env["DATABASE_URL"]) as connection, connection.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
            counts = dict(cur.fetchall())
        connection.close()
        return counts

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [Path(sys.executable).parent / "flask", "--app", "wsgi", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
