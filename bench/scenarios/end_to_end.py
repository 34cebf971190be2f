"""End to end: POST-to-receive latency and server CPU per delivered event, for the product and
for the peer (Node's Socket.IO with the Redis adapter, no database) under the same load.

Each user has one connected client (node socket.io-client, websocket only), spread over two
server processes (two `python wsgi.py` on one Redis, as in README's scaling out; or two peer
processes). For each offered rate, bench/load.py sends POST /notifications to a random user
open loop for a fixed time; each answered id is mapped to its request's due time, and a
notification's latency is its receive time on the client minus that due time (one machine,
one clock). Lost: answered ids never received within the drain time. CPU per delivered event:
the server processes' user + system CPU time over the rate's window, divided by the
`notification` events the clients received in it (those of requests whose answer timed out
too; the product also pushes an `unread_count` per notification, the peer has no counts).
Before each rate the servers are given time to finish what an earlier overload left them.

Async modes (scenario 8): after the product in the run's mode, the product again in each other
mode wsgi.py serves (gevent, when the run's is eventlet): fresh web processes on the same
database and Redis, new clients for the same users and tokens, at the size's rate nearest
TARGET_RATE. Its speed targets are not judged (they hold for the mode the run was asked for);
its losses, POST errors and connects are.
"""

import random
import subprocess
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from bench.baselines import processes
from bench.harness import REDIS_URL, Bench, Stack
from bench.load import Load, open_loop
from bench.node import ClientFleet, client_fleet, ensure_packages, peer_servers
from bench.realtime import (
    cpu_seconds,
    create_users,
    mint_tokens,
    peer_clients,
    product_clients,
    user_ids,
    wait_idle,
)
from bench.report import ScenarioResult, percentiles

SIZES = {
    "tiny": {"clients": 20, "rates": [100], "seconds": 1.0, "drain_seconds": 3.0, "warmup": 0},
    "quick": {
        "clients": 300,
        "rates": [200, 1000, 2000],
        "seconds": 3.0,
        "drain_seconds": 5.0,
        "warmup": 0.5,
    },
    "full": {
        "clients": 1000,
        "rates": [200, 1000, 2000],
        "seconds": 10.0,
        "drain_seconds": 10.0,
        "warmup": 1.0,
    },
}
"""`seconds` of load per rate; `drain_seconds`: longest wait for the last events after it;
`warmup`: seconds of load at WARMUP_RATE first, unmeasured. The other async modes run at every
size, the tiny one included, so the smoke test covers them."""
TARGET_RATE = 1000
"""The rate the latency and CPU targets are set at."""
WEB_PROCESSES = 2
"""Product and peer processes, each with half the clients."""
CONNECT_RATE = 500
"""Connects per second while the clients come up (not measured here; see sockets)."""
WARMUP_RATE = 50
"""The rate of the warmup, so the measured rates do not pay for warming the servers' code or
opening HTTP connections."""


@dataclass(frozen=True)
class _Servers:
    """Where to send and whose CPU to count."""

    urls: list[str]
    credential: str
    processes: list[subprocess.Popen]


def run(bench: Bench) -> ScenarioResult:
    """Measure the product at each rate of the size, then the product in the other async
    modes at the rate nearest TARGET_RATE, then the peer at each rate."""
    ensure_packages()
    settings = bench.settings
    users = user_ids(settings["clients"])
    chooser = random.Random(6)
    # One recipient per request, drawn once, so the product and the peer get the same sends.
    recipients = {
        rate: [chooser.choice(users) for _ in range(int(rate * settings["seconds"]))]
        for rate in settings["rates"]
    }
    measured: dict[str, dict[str, Any]] = {}
    with bench.stack("end_to_end", web=WEB_PROCESSES) as stack:
        create_users(stack, users)
        tokens = mint_tokens(users)
        servers = _Servers(stack.urls, stack.key, stack.web_processes)
        clients = product_clients(stack.urls, tokens)
        measured["product"] = _measure(clients, servers, recipients, settings)
        rate = min(settings["rates"], key=lambda offered: abs(offered - TARGET_RATE))
        measured |= _other_modes(
            stack, bench.async_mode, tokens, {rate: recipients[rate]}, settings
        )
    with peer_servers(REDIS_URL) as peer:
        servers = _Servers(peer.urls, "peer", peer.processes)
        measured["peer"] = _measure(peer_clients(peer.urls, users), servers, recipients, settings)
    result = ScenarioResult("end_to_end")
    for name, figures in measured.items():
        pending = figures["connect"]["pending"]
        result.add(name, "not connected", pending, "clients", "= 0", pending == 0)
    for rate in settings["rates"]:
        _rows(
            result,
            rate,
            {
                name: figures["rates"][rate]
                for name, figures in measured.items()
                if rate in figures["rates"]
            },
        )
    result.details = {
        "web_processes": WEB_PROCESSES,
        "clients": len(users),
        "seconds_per_rate": settings["seconds"],
        "async_mode": bench.async_mode,
    } | measured
    return result


def _other_modes(
    stack: Stack,
    first_mode: str,
    tokens: list[str],
    recipients: dict[int, list[str]],
    settings: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The product in each async mode but `first_mode`, as `product <mode>`: fresh web
    processes on the stack's database and Redis (the stack's own are stopped first), the
    same users connected again with their tokens, and the sends of `recipients`."""
    measured = {}
    with closing(processes.other_modes(stack, first_mode, WEB_PROCESSES)) as modes:
        for mode, urls, procs in modes:
            servers = _Servers(urls, stack.key, procs)
            clients = product_clients(urls, tokens)
            measured[f"product {mode}"] = _measure(clients, servers, recipients, settings)
    return measured


def _measure(
    clients: list[dict[str, str]],
    servers: _Servers,
    recipients: dict[int, list[str]],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Connect the clients, then offer each rate in turn; how the connect went and what each
    rate measured."""
    rates = {}
    with client_fleet(clients) as fleet:
        # Clients that could not connect are not waited for: their events count as lost.
        connect = fleet.connect(0, len(clients), CONNECT_RATE).summary()
        if settings["warmup"]:
            users = sorted({user for chosen in recipients.values() for user in chosen})
            _offer(fleet, servers, users, WARMUP_RATE, settings["warmup"], 3.0)
        for rate, chosen in recipients.items():
            waited = wait_idle(servers.processes)
            figures = _offer(
                fleet, servers, chosen, rate, settings["seconds"], settings["drain_seconds"]
            )
            rates[rate] = figures | {"waited_for_idle_seconds": round(waited, 2)}
    return {"connect": connect, "rates": rates}


def _offer(
    fleet: ClientFleet,
    servers: _Servers,
    chosen: list[str],
    rate: float,
    seconds: float,
    drain_seconds: float,
) -> dict[str, Any]:
    """Send to `chosen` users open loop at `rate` for `seconds`, wait up to `drain_seconds`
    for the events; latencies, losses and CPU per event."""
    load = Load(
        urls=servers.urls,
        credential=servers.credential,
        bodies=[{"to": user, "title": "e2e"} for user in chosen],
        # Two generator processes past a few hundred per second keep the sender's own event
        # loop from adding its lag to the latency.
        processes=1 if rate <= 500 else 2,
    )
    mark = len(fleet.received)
    cpu_before = cpu_seconds(servers.processes)
    sent = open_loop(load, rate, seconds)
    expected = sent.ids
    fleet.wait_for(mark, set(expected), lambda event: event.id, drain_seconds)
    cpu = cpu_seconds(servers.processes) - cpu_before
    fleet.flush()
    delivered = fleet.since(mark)
    events = [event for event in delivered if event.id in expected]
    latencies = [event.at - expected[event.id] * 1000 for event in events]
    return {
        "answered": len(expected),
        "post_errors": sent.errors,
        "received": len(events),
        "lost": len(expected) - len({event.id for event in events}),
        # Every event delivered in the window counts, those of requests whose answer timed
        # out too: the server did that work.
        "delivered": len(delivered),
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_event": cpu / len(delivered) * 1e6 if delivered else 0.0,
        "latency_ms": latencies,
        "post": sent.summary(),
    }


def _rows(result: ScenarioResult, rate: int, measured: dict[str, dict[str, Any]]) -> None:
    """The table rows of one rate, for each of `measured` (the product, the peer, and the
    product in other async modes where measured at this rate). Speed targets only for the
    product at TARGET_RATE; no events lost and no POST errors for everyone at every rate.
    The samples move from the figures to the chart's distributions, their percentiles stay."""
    at_target = rate == TARGET_RATE
    for name, figures in measured.items():
        judged = at_target and name == "product"
        case = f"{name} @{rate}/s"
        samples = figures.pop("latency_ms")
        result.distributions[f"{name} e2e @{rate}/s"] = samples
        latency = figures["latency_ms"] = percentiles(samples)
        limits = {"p50": 2.5, "p99": 10.0} if judged else {}
        for key in ("p50", "p99", "p99.9"):
            limit = limits.get(key)
            result.add(
                case,
                f"POST-to-receive {key}",
                latency[key],
                "ms",
                f"<= {limit} ms" if limit else None,
                latency[key] <= limit if limit else None,
            )
        result.add(case, "events lost", figures["lost"], "events", "= 0", figures["lost"] == 0)
        errors = figures["post_errors"]
        result.add(case, "POST errors", errors, "requests", "= 0", errors == 0)
        result.add(
            case,
            "server CPU per event",
            figures["cpu_us_per_event"],
            "us",
            "<= 75 us" if judged else None,
            figures["cpu_us_per_event"] <= 75 if judged else None,
        )
    # A few events may cost the peer less than one clock tick (10 ms) of CPU.
    peer_cpu = measured["peer"]["cpu_us_per_event"]
    for name, figures in measured.items():
        if name == "peer":
            continue
        judged = at_target and name == "product"
        ratio = figures["cpu_us_per_event"] / peer_cpu if peer_cpu > 0 else 0.0
        result.add(
            f"{name}/peer @{rate}/s",
            "CPU per event ratio",
            ratio,
            "x",
            "<= 2.2x" if judged else None,
            ratio <= 2.2 if judged else None,
        )
