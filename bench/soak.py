"""Scenario 7, soak: a long run at a steady rate with clients churning, its own command since
it cannot fit the suite's 15 minutes.

    .venv/bin/python -m bench.soak                 # 30 minutes at half the ingest maximum
    .venv/bin/python -m bench.soak --minutes 5 --rate 100

Two web processes and Node clients (one per user, every web process) as in `end_to_end`. The
offered rate (`--rate`, else half of a closed-loop saturation measured first) goes out in
windows of `--window` seconds from an open-loop generator; during each window a slice of the
clients disconnects and comes back with `last_id`, catching up on what it missed.

Each window records the web processes' resident memory and CPU per send, the window's
latencies, the host's speed (`bench.host_probe`, sampled beside the load), and, after the
run, how long its notifications took to arrive and how many never did. The clients' tokens
outlive the run. After the warm-up windows: memory growth per hour (a least-squares line
through the windows' memory, as a share of the first warm window's; target <= 5 %/h) and p99
drift (the last third of the windows' median p99 against the first third's; target <= 20 %).
Beside the drift, for telling a server that slows from a host that does (on this shared
machine the host's speed moves by a quarter within twenty minutes): the probe's own drift,
the drift of CPU per send, and the p99 drift against the host, each window's p99 divided by
its probe's CPU time (reported, not judged, until a run on a host that slows shows how well
the probe follows it). Nothing lost: every 201 has its row, and every notification answered
reached its client, live or by catch-up (target 0; those that came only in a further wait
are counted apart).
Written like the suite's results: `bench/results/<date>-<host>-soak.json` and a table.
"""

import argparse
import random
import statistics
import sys
import threading
import time
from typing import Any

from bench.harness import POSTGRES_ADMIN_URL, REDIS_URL, Bench, Stack
from bench.host_probe import HostProbe
from bench.load import Load, LoadResult, closed_loop, open_loop
from bench.node import Received, client_fleet
from bench.realtime import (
    cpu_seconds,
    create_users,
    mint_tokens,
    product_clients,
    rss_bytes,
    user_ids,
)
from bench.report import ScenarioResult, environment, percentiles, print_table, write_json
from bench.scenarios.ingest import missing_rows

WEB_PROCESSES = 2
GROWTH_TARGET_PERCENT_PER_HOUR = 5.0
DRIFT_TARGET_PERCENT = 20.0
CATCH_UP_SECONDS = 30.0
"""Longest wait, after the last window, for notifications still on their way."""
PROBE_SECONDS = 10.0
"""How often the host's speed is sampled (more often in windows shorter than 30 s)."""
TOKEN_MARGIN_SECONDS = 3_600
"""How long the clients' tokens outlast the windows (the seeding, the waits at the end)."""
LATE_SECONDS = 120.0
"""When some have not come by then, how much longer to wait, to tell late from lost."""


def _saturation(load: Load) -> float:
    return closed_loop(load, 32, 10.0, 2.0).throughput


def _churn(fleet: Any, clients: int, share: float, window: float, stop: threading.Event) -> None:
    """Every few seconds until `stop`: a random slice of the clients leaves, stays away a
    second and comes back with `last_id`; `share` of them over a window."""
    rounds = 5
    per_round = max(1, int(clients * share / rounds))
    while not stop.wait(window / rounds):
        start = random.randrange(0, max(1, clients - per_round))
        fleet.disconnect(start, start + per_round)
        time.sleep(1)
        fleet.connect(start, start + per_round, rate=0, last_id=True)


def _window(
    stack: Stack, load: Load, offered: float, seconds: float, host: HostProbe
) -> tuple[LoadResult, dict[str, Any]]:
    """One window of load at the `offered` rate, and what it measured (its host probe times
    are None where no probe finished during it)."""
    started = time.monotonic()
    cpu_before = cpu_seconds(stack.web_processes)
    result = open_loop(load, offered, seconds)
    cpu = cpu_seconds(stack.web_processes) - cpu_before
    speed = host.median(started, time.monotonic())
    latency = result.percentiles()
    return result, {
        "rss_bytes": rss_bytes(stack.web_processes),
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "answered": result.ok,
        "errors": result.errors,
        # The web processes' CPU over the window per answered send, its events and the
        # clients' reconnects included.
        "cpu_ms_per_send": round(cpu * 1000 / max(result.ok, 1), 3),
        "host_probe_wall_ms": None if speed is None else round(speed.wall_ms, 2),
        "host_probe_cpu_ms": None if speed is None else round(speed.cpu_ms, 2),
    }


def _growth_percent_per_hour(seconds: list[float], rss: list[int]) -> float:
    """Slope of the least-squares line through (seconds, rss), per hour, as a share of the
    first value."""
    if len(seconds) < 2:
        return 0.0
    slope = statistics.linear_regression(seconds, rss).slope
    return slope * 3600 / rss[0] * 100


def _drift_percent(values: list[float]) -> float:
    """The windows' last third's median value against their first third's."""
    third = max(1, len(values) // 3)
    first, last = statistics.median(values[:third]), statistics.median(values[-third:])
    return (last - first) / first * 100 if first else 0.0


def run(
    minutes: float,
    window: float,
    rate: float | None,
    clients: int,
    churn: float,
    warmup_windows: int,
) -> ScenarioResult:
    bench = Bench("soak", {})
    users = user_ids(clients, "soak")
    bodies = [{"to": user, "title": "Soak", "body": "steady"} for user in users]
    windows: list[dict[str, Any]] = []
    loads: list[LoadResult] = []
    with bench.stack("soak", web=WEB_PROCESSES) as stack:
        create_users(stack, users)
        load = Load(stack.urls, stack.key, bodies)
        offered = rate or _saturation(load) / 2
        # Tokens that outlive the run: at an hour (the default), every socket was closed and
        # its reconnects refused, and a 60-minute soak lost its last window's events.
        tokens = mint_tokens(users, int(minutes * 60) + TOKEN_MARGIN_SECONDS)
        with client_fleet(product_clients(stack.urls, tokens)) as fleet:
            fleet.connect(0, clients, rate=1000)
            # One notification each first, so every client has a last id to catch up from.
            loads.append(open_loop(load, min(offered, 500), clients / min(offered, 500)))
            stop = threading.Event()
            churner = threading.Thread(
                target=_churn, args=(fleet, clients, churn, window, stop), daemon=True
            )
            churner.start()
            started = time.monotonic()
            try:
                with HostProbe(min(PROBE_SECONDS, window / 3)) as host:
                    while time.monotonic() - started < minutes * 60:
                        result, measured = _window(stack, load, offered, window, host)
                        loads.append(result)
                        windows.append(
                            {"at_seconds": round(time.monotonic() - started, 1)} | measured
                        )
                        print(f"soak: {windows[-1]}", file=sys.stderr, flush=True)
            finally:
                stop.set()
                churner.join()
            answered = {notification_id for run in loads for notification_id in run.ids}
            fleet.wait_for(0, answered, lambda event: event.id, CATCH_UP_SECONDS)
            events = fleet.since(0)
            missing = answered.difference(event.id for event in events)
            late = 0
            if missing:
                fleet.wait_for(0, missing, lambda event: event.id, LATE_SECONDS)
                events = fleet.since(0)
                still_missing = missing.difference(event.id for event in events)
                late, missing = len(missing) - len(still_missing), still_missing
            _add_deliveries(windows, loads[1:], events)
        rows_missing = missing_rows(stack.env["DATABASE_URL"], loads)
    return _result(
        windows,
        warmup_windows,
        offered,
        len(missing),
        late,
        rows_missing,
        sum(run.errors for run in loads),
    )


def _add_deliveries(
    windows: list[dict[str, Any]], loads: list[LoadResult], events: list[Received]
) -> None:
    """Add to each window how long its notifications took from their due time to their first
    arrival (live, or by catch-up for a client that was away), and how many never came."""
    first_arrival: dict[str, float] = {}
    for event in events:
        first_arrival.setdefault(event.id, event.at / 1000)
    for window, load in zip(windows, loads, strict=True):
        lags = [
            (first_arrival[notification_id] - due) * 1000
            for notification_id, due in load.ids.items()
            if notification_id in first_arrival
        ]
        delivery = percentiles(lags)
        window["delivery_p50_ms"] = delivery["p50"]
        window["delivery_p99_ms"] = delivery["p99"]
        window["delivery_max_ms"] = delivery["max"]
        window["not_received"] = len(load.ids) - len(lags)
        print(f"soak deliveries: {window}", file=sys.stderr, flush=True)


def _result(
    windows: list[dict[str, Any]],
    warmup_windows: int,
    rate: float,
    lost: int,
    late: int,
    rows_missing: int,
    errors: int,
) -> ScenarioResult:
    result = ScenarioResult("soak", details={"windows": windows, "rate_per_second": rate})
    warm = windows[warmup_windows:] or windows
    growth = _growth_percent_per_hour(
        [w["at_seconds"] for w in warm], [w["rss_bytes"] for w in warm]
    )
    drift = _drift_percent([w["p99_ms"] for w in warm])
    probed = [w for w in warm if w["host_probe_cpu_ms"] is not None]
    result.add(f"{WEB_PROCESSES} web processes", "offered rate", rate, "req/s")
    result.add(
        "after warm-up",
        "memory growth",
        growth,
        "%/h",
        f"<= {GROWTH_TARGET_PERCENT_PER_HOUR}%/h",
        growth <= GROWTH_TARGET_PERCENT_PER_HOUR,
    )
    result.add(
        "after warm-up",
        "p99 drift",
        drift,
        "%",
        f"<= {DRIFT_TARGET_PERCENT}%",
        drift <= DRIFT_TARGET_PERCENT,
    )
    result.add("after warm-up", "windows with a host probe", len(probed), "windows")
    if probed:
        result.add(
            "after warm-up",
            "host probe drift (CPU time)",
            _drift_percent([w["host_probe_cpu_ms"] for w in probed]),
            "%",
        )
        result.add(
            "after warm-up",
            "p99 drift against the host",
            _drift_percent([w["p99_ms"] / w["host_probe_cpu_ms"] for w in probed]),
            "%",
        )
    result.add(
        "after warm-up",
        "CPU per send drift",
        _drift_percent([w["cpu_ms_per_send"] for w in warm]),
        "%",
    )
    result.add("first warm window", "p99", warm[0]["p99_ms"], "ms")
    result.add("last window", "p99", warm[-1]["p99_ms"], "ms")
    result.add("last window", "resident memory", warm[-1]["rss_bytes"] / 2**20, "MiB")
    result.add("whole run", "notifications not received", lost, "events", "0", lost == 0)
    result.add(
        "whole run",
        f"arrived after {CATCH_UP_SECONDS:.0f} s, within {LATE_SECONDS:.0f} s more",
        late,
        "events",
    )
    result.add("whole run", "201s without a row", rows_missing, "rows", "0", rows_missing == 0)
    result.add("whole run", "non-2xx answers", errors, "answers", "0", errors == 0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--window", type=float, default=60, help="seconds per measured window")
    parser.add_argument("--rate", type=float, help="requests per second (default: half max)")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--churn", type=float, default=0.1, help="share of clients per window")
    parser.add_argument("--warmup-windows", type=int, default=5)
    args = parser.parse_args()
    result = run(
        args.minutes, args.window, args.rate, args.clients, args.churn, args.warmup_windows
    )
    print_table([result])
    settings = vars(args) | {"suffix": "-soak"}
    out = write_json([result], settings, environment(POSTGRES_ADMIN_URL, REDIS_URL))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
