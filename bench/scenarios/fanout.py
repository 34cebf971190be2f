"""Fan-out: one POST to N recipients, all connected (one client each, node socket.io-client
over websocket) across two server processes; for the product and for the peer.

Timed from the start of the POST (wall clock, the same clock the clients stamp arrivals
with): to its 201, and to the last recipient's `notification` event. Missing: recipients
whose event did not arrive within the wait. The product emits after its commit and before
its 201, so its events may come before the 201; "after the 201" is then zero or negative.
The peer answers the same way, in two modes: `rooms` (one event per recipient, each with its
own payload, through the Redis adapter: the product's work without the database) and
`emitter` (one event to all the rooms through the Redis emitter: a broadcast). The send is
repeated (after one unmeasured send) and each figure is the median of the repeats.
"""

import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from bench.harness import REDIS_URL, Bench, request
from bench.node import ClientFleet, client_fleet, ensure_packages, peer_servers
from bench.realtime import (
    cpu_seconds,
    create_users,
    mint_tokens,
    peer_clients,
    product_clients,
    user_ids,
)
from bench.report import ScenarioResult

SIZES = {
    "tiny": {"recipients": 200, "repeats": 1, "connect_rate": 1000},
    "quick": {"recipients": 2000, "repeats": 2, "connect_rate": 1000},
    "full": {"recipients": 10_000, "repeats": 3, "connect_rate": 1000},
}
WAIT_SECONDS = 30
"""Longest wait for the last event of one send."""
Send = Callable[[str], list[str]]
"""One POST to every recipient with this title; the notification ids answered."""
RATIO_TARGET = 1.6
"""The product's time to the last event, at most this many times the peer's (rooms mode)."""


def run(bench: Bench) -> ScenarioResult:
    """Connect every recipient, send to all of them `repeats` times; product, then peer."""
    ensure_packages()
    settings = bench.settings
    users = user_ids(settings["recipients"])
    with bench.stack("fanout", web=2) as stack:
        create_users(stack, users)
        clients = product_clients(stack.urls, mint_tokens(users))

        def product_send(title: str) -> list[str]:
            answer = stack.call("POST", "/notifications", {"to": users, "title": title}, 120)
            return [notification["id"] for notification in answer["notifications"]]

        sends = {"product": product_send}
        product_connect, product = _measure(clients, stack.web_processes, sends, settings)
    with peer_servers(REDIS_URL) as peer:

        def peer_send(mode: str) -> Send:
            def send(title: str) -> list[str]:
                body = {"to": users, "title": title, "mode": mode}
                answer = request(f"{peer.urls[0]}/notifications", "POST", "peer", body, 120)
                return [notification["id"] for notification in answer["notifications"]]

            return send

        sends = {"peer rooms": peer_send("rooms"), "peer emitter": peer_send("emitter")}
        clients = peer_clients(peer.urls, users)
        peer_connect, other = _measure(clients, peer.processes, sends, settings)
    result = ScenarioResult("fanout")
    connects = {"product": product_connect, "peer": peer_connect}
    result.details = {"recipients": len(users), "web_processes": 2, "connect": connects}
    for name, connect in connects.items():
        pending = connect["pending"]
        result.add(name, "not connected", pending, "clients", "= 0", pending == 0)
    _rows(result, product | other, bench.size)
    result.details["sends"] = product | other
    return result


def _measure(
    clients: list[dict[str, str]],
    servers: list[subprocess.Popen],
    sends: dict[str, Send],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Connect the clients, then run each send `repeats` times; how the connect went, and
    the figures by send name."""
    measured: dict[str, dict[str, Any]] = {}
    with client_fleet(clients) as fleet:
        # Clients that could not connect are not waited for: they show up as missing.
        connect = fleet.connect(0, len(clients), settings["connect_rate"]).summary()
        for name, send in sends.items():
            # Once unmeasured: the first send of a fresh process pays for warming its code.
            _send_once(fleet, servers, send, len(clients))
            repeats = [
                _send_once(fleet, servers, send, len(clients)) for _ in range(settings["repeats"])
            ]
            arrivals = [ms for figures in repeats for ms in figures.pop("arrivals_ms")]
            measured[name] = {
                key: statistics.median(figures[key] for figures in repeats) for key in repeats[0]
            } | {"repeats": repeats, "arrivals_ms": arrivals}
    return connect, measured


def _send_once(
    fleet: ClientFleet, servers: list[subprocess.Popen], send: Send, recipients: int
) -> dict[str, Any]:
    """One send to every recipient; when its 201 and its last event came, and who missed it."""
    mark = len(fleet.received)
    cpu_before = cpu_seconds(servers)
    started = time.time()
    ids = set(send("fan-out"))
    answered = time.time()
    # One event of this send per client (the emitter's broadcast has one id for them all).
    fleet.wait_for(
        mark, set(range(recipients)), lambda e: e.client if e.id in ids else None, WAIT_SECONDS
    )
    cpu = cpu_seconds(servers) - cpu_before
    fleet.flush()
    arrivals = {e.client: e.at for e in fleet.since(mark) if e.id in ids}
    last = max(arrivals.values(), default=answered * 1000)
    return {
        "to_201_ms": (answered - started) * 1000,
        "to_last_event_ms": last - started * 1000,
        "after_201_ms": last - answered * 1000,
        "missing": recipients - len(arrivals),
        "cpu_us_per_event": cpu / len(arrivals) * 1e6 if arrivals else 0.0,
        "arrivals_ms": [at - started * 1000 for at in arrivals.values()],
    }


def _rows(result: ScenarioResult, measured: dict[str, dict[str, Any]], size: str) -> None:
    """The table rows. The time targets are for 10,000 recipients, so they are marked at the
    full size only; the ratio to the peer at quick and full; nothing may go missing at any."""
    timed = size == "full"
    for name, figures in measured.items():
        result.distributions[f"{name} fan-out"] = figures.pop("arrivals_ms")
        product = name == "product"
        result.add(
            name,
            "time to 201",
            figures["to_201_ms"],
            "ms",
            "<= 1000 ms" if product and timed else None,
            figures["to_201_ms"] <= 1000 if product and timed else None,
        )
        result.add(name, "time to last event", figures["to_last_event_ms"], "ms")
        result.add(
            name,
            "last event after 201",
            figures["after_201_ms"],
            "ms",
            "<= 500 ms" if product and timed else None,
            figures["after_201_ms"] <= 500 if product and timed else None,
        )
        result.add(name, "missing", figures["missing"], "events", "= 0", figures["missing"] == 0)
        result.add(name, "server CPU per event", figures["cpu_us_per_event"], "us")
    peer = measured["peer rooms"]["to_last_event_ms"]
    ratio = measured["product"]["to_last_event_ms"] / peer if peer > 0 else 0.0
    compared = size != "tiny"
    result.add(
        "product/peer rooms",
        "time to last event ratio",
        ratio,
        "x",
        f"<= {RATIO_TARGET}x" if compared else None,
        ratio <= RATIO_TARGET if compared else None,
    )
