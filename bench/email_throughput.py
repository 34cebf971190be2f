"""Email jobs per second per worker: one real `python worker.py` sending to a local SMTP
server (aiosmtpd), PostgreSQL and Redis on 127.0.0.1.

    .venv/bin/python -m bench.email_throughput [--emails 1000]

Sends one notification to N recipients with the email channel, starts one worker, and times
from the worker's first sent email to the last. Prints a table and writes
bench/results/<date>-<host>-email-throughput.json.
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DATABASE = "notify_bench_email"


class Counter:
    """An SMTP handler that only counts and timestamps what it accepts."""

    def __init__(self) -> None:
        self.times: list[float] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        self.times.append(time.perf_counter())
        return "250 OK"


def _admin(statement: str) -> None:
    connection = psycopg2.connect(POSTGRES_ADMIN_URL)
    connection.autocommit = True
    connection.cursor().execute(statement)
    connection.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(emails: int) -> dict[str, Any]:
    """Start the stack, deliver `emails` emails with one worker; the results."""
    counter = Counter()
    smtp = Controller(counter, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DATABASE}")
    subprocess.run(
        ["redis-cli", "-n", REDIS_URL.rsplit("/", 1)[1], "flushdb"], check=True, capture_output=True
    )
    env = os.environ | {
        "DATABASE_URL": POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}",
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "bench-secret-0123456789-0123456789-0123456789",
        "EMAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "LOG_LEVEL": "WARNING",
    }
    flask = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    key = subprocess.run(
        [*flask, "keys", "create", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = _free_port()
    web = subprocess.Popen(
        [sys.executable, "wsgi.py"],
        cwd=ROOT,
        env=env | {"PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        body = {
            "to": [{"user_id": f"b{i}", "email": f"b{i}@example.com"} for i in range(emails)],
            "title": "throughput",
            "body": "one of many",
            "channels": ["email"],
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/notifications",
            data=json.dumps(body).encode(),
            method="POST",
        )
        request.add_header("Authorization", f"Bearer {key}")
        request.add_header("Content-Type", "application/json")
        urllib.request.urlopen(request, timeout=120).close()
        worker = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 600
        while len(counter.times) < emails and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for process in (worker, web):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        smtp.stop()
        _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    delivered = len(counter.times)
    elapsed = counter.times[-1] - counter.times[0] if delivered > 1 else 0.0
    return {
        "emails": emails,
        "delivered": delivered,
        "seconds": round(elapsed, 2),
        "emails_per_second_per_worker": round((delivered - 1) / elapsed, 1) if elapsed else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=1000)
    args = parser.parse_args()
    results = run(args.emails)
    print(f"{'emails':>8}{'delivered':>11}{'seconds':>9}{'per second, one worker':>25}")
    print(
        f"{results['emails']:>8}{results['delivered']:>11}{results['seconds']:>9}"
        f"{results['emails_per_second_per_worker']:>25}"
    )
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    record = {
        "benchmark": "email_throughput",
        "date": datetime.now(UTC).isoformat(),
        "host": platform.node(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "git_sha": commit,
        "results": results,
    }
    out = (
        ROOT
        / "bench"
        / "results"
        / (f"{datetime.now(UTC):%Y-%m-%d}-{platform.node()}-email-throughput.json")
    )
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
