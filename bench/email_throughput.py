"""Email jobs per second per worker: one real `python worker.py` sending to a local SMTP
server (aiosmtpd), PostgreSQL and Redis on 127.0.0.1.

    .venv/bin/python -m bench.email_throughput [--emails 1000]

Sends one notification to N recipients with the email channel, starts one worker, and times
from the worker's first sent email to the last. Prints a table and writes
bench/results/<date>-<host>-email-throughput.json.
"""

import argparse
import os
import sys
import time
from typing import Any

import redis
from aiosmtpd.controller import Controller

from bench.harness import ROOT, free_port, prepared, process, request, web_server, write_results

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


class Counter:
    """An SMTP handler that only timestamps what it accepts."""

    def __init__(self) -> None:
        self.times: list[float] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        self.times.append(time.perf_counter())
        return "250 OK"


def run(emails: int) -> dict[str, Any]:
    """Start the stack, deliver `emails` emails with one worker; the results."""
    counter = Counter()
    smtp = Controller(counter, hostname="127.0.0.1", port=free_port())
    smtp.start()
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = {
        "REDIS_URL": REDIS_URL,
        "EMAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
    }
    try:
        with prepared("notify_bench_email", **settings) as (env, key), web_server(env) as base:
            body = {
                "to": [{"user_id": f"b{i}", "email": f"b{i}@example.com"} for i in range(emails)],
                "title": "throughput",
                "body": "one of many",
                "channels": ["email"],
            }
            request(f"{base}/notifications", "POST", key, body, timeout=120)
            with process([sys.executable, "worker.py"], env):
                deadline = time.monotonic() + 600
                while len(counter.times) < emails and time.monotonic() < deadline:
                    time.sleep(0.2)
    finally:
        smtp.stop()
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
    out = write_results("email-throughput", results)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
