"""POST-to-event latency on loopback: how long from sending a notification until the
recipient's open socket receives it.

Starts a real server (`python wsgi.py`, PostgreSQL and Redis on 127.0.0.1), connects one
python-socketio client over websocket, then sends one notification at a time and times each
from the start of its POST to the arrival of its `notification` event.

    .venv/bin/python -m bench.realtime_latency [--sends 1000] [--async-mode eventlet]

Prints a table and writes bench/results/<date>-<host>-realtime-latency-<mode>.json.
"""

import argparse
import os
import statistics
import threading
import time
from typing import Any

import socketio

from bench.harness import ROOT, prepared, request, web_server, write_results

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def run(sends: int, async_mode: str) -> dict[str, Any]:
    """Start the stack, measure `sends` sequential sends, stop the stack; the results."""
    settings = {"REDIS_URL": REDIS_URL, "ASYNC_MODE": async_mode}
    with prepared("notify_bench_latency", **settings) as (env, key), web_server(env) as base:
        request(f"{base}/users/bench-user", "PUT", key, {})
        token = request(f"{base}/users/bench-user/tokens", "POST", key, {})["token"]
        return _measure(base, key, token, sends) | {"async_mode": async_mode}


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
            sent = request(
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
    ms = sorted(value * 1000 for value in seconds)
    return {
        "p50": round(statistics.median(ms), 2),
        "p90": round(ms[min(len(ms) - 1, int(0.90 * len(ms)))], 2),
        "p99": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2),
        "max": round(ms[-1], 2),
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
    out = write_results(f"realtime-latency-{args.async_mode}", results)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
