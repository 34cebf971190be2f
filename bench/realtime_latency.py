"""POST-to-event latency on loopback: how long from sending a notification until the
recipient's open socket receives it.

Starts a real server (`python wsgi.py`, eventlet, PostgreSQL and Redis on 127.0.0.1), connects
one python-socketio client over websocket, then sends one notification at a time and times
each from the start of its POST to the arrival of its `notification` event.

    .venv/bin/python -m bench.realtime_latency [--sends 1000] [--async-mode eventlet]

Prints a table and writes bench/results/<date>-<host>-realtime-latency.json.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import socketio

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DATABASE = "notify_bench_latency"


def _admin(statement: str) -> None:
    connection = psycopg2.connect(POSTGRES_ADMIN_URL)
    connection.autocommit = True
    connection.cursor().execute(statement)
    connection.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(url: str, method: str, credential: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {credential}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(sends: int, async_mode: str) -> dict[str, Any]:
    """Start the stack, measure `sends` sequential sends, stop the stack; the results."""
    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DATABASE}")
    env = os.environ | {
        "DATABASE_URL": POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}",
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "bench-secret-0123456789-0123456789-0123456789",
        "ASYNC_MODE": async_mode,
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
    server = subprocess.Popen(
        [sys.executable, "wsgi.py"],
        cwd=ROOT,
        env=env | {"PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        _request(f"{base}/users/bench-user", "PUT", key, {})
        token = _request(f"{base}/users/bench-user/tokens", "POST", key, {})["token"]
        return _measure(base, key, token, sends) | {"async_mode": async_mode}
    finally:
        server.terminate()
        server.wait(timeout=10)
        _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _measure(base: str, key: str, token: str, sends: int) -> dict[str, Any]:
    arrivals: dict[str, float] = {}
    arrived = threading.Condition()
    client = socketio.Client(reconnection=False)

    @client.on("notification")
    def on_notification(data: dict[str, Any]) -> None:
        with arrived:
            arrivals[data["id"]] = time.perf_counter()
            arrived.notify_all()

    client.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    to_event: list[float] = []
    to_response: list[float] = []
    lost = 0
    try:
        for i in range(sends):
            started = time.perf_counter()
            sent = _request(
                f"{base}/notifications", "POST", key, {"to": "bench-user", "title": f"bench {i}"}
            )
            to_response.append(time.perf_counter() - started)
            notification_id = sent["notifications"][0]["id"]
            with arrived:
                if not arrived.wait_for(lambda n=notification_id: n in arrivals, timeout=5):
                    lost += 1
                    continue
            to_event.append(arrivals[notification_id] - started)
    finally:
        client.disconnect()
    return {
        "sends": sends,
        "lost": lost,
        "post_to_event_ms": _summary(to_event),
        "post_to_201_ms": _summary(to_response),
    }


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = [value * 1000 for value in seconds]
    return {
        "p50": round(statistics.median(ms), 2),
        "p90": round(_percentile(ms, 0.90), 2),
        "p99": round(_percentile(ms, 0.99), 2),
        "max": round(max(ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--async-mode", choices=["eventlet", "gevent"], default="eventlet")
    args = parser.parse_args()
    results = run(args.sends, args.async_mode)
    print(f"{'measure':<16}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name in ("post_to_201_ms", "post_to_event_ms"):
        row = results[name]
        print(f"{name:<16}{row['p50']:>10}{row['p90']:>10}{row['p99']:>10}{row['max']:>10}")
    print(f"sends: {results['sends']}, lost: {results['lost']}, async mode: {args.async_mode}")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    record = {
        "benchmark": "realtime_latency",
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
        / (
            f"{datetime.now(UTC):%Y-%m-%d}-{platform.node()}-realtime-latency-{args.async_mode}.json"
        )
    )
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
