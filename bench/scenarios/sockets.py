"""Sockets: what idle connections cost, how fast they come, and a reconnect storm; for the
product (two `python wsgi.py` on one Redis) and for the peer (two Node Socket.IO processes).

- Ramp: clients (node socket.io-client, websocket only, one connection each, alternating
  between the two processes) connect at an offered rate to each step's count. Connects per
  second: connections made / (last connect - first attempt). Memory per connection: the
  server processes' summed resident memory (VmRSS) now minus before the first connect,
  divided by the connections open. CPU per connect: their user + system CPU time over the
  step / connections made. Idle CPU: the same over a few quiet seconds after it, as a
  percentage of one core (pings, the product's expiry sweeper). The clients offer
  permessage-deflate as browsers do; eventlet's websocket (the product) accepts it, Node's
  Socket.IO declines it by default, and that shows in memory per connection.
- Storm: the first `storm` clients each receive one notification (so each has a last id),
  disconnect, `away` notifications are sent to each of them while they are away, then all
  reconnect at once with `last_id`. Timed from the reconnect command until every client is
  connected and has received every notification it missed (the product's catch-up on
  connect); missing counts missed notifications never received. The peer keeps no history,
  so its storm is timed to the last reconnect only.
"""

import time
from collections.abc import Callable
from typing import Any

from bench.harness import REDIS_URL, Bench, Stack
from bench.node import ClientFleet, client_fleet, ensure_packages, peer_servers
from bench.realtime import (
    MAX_RECIPIENTS,
    cpu_seconds,
    create_users,
    mint_tokens,
    peer_clients,
    product_clients,
    rss_bytes,
    user_ids,
)
from bench.report import ScenarioResult

SIZES = {
    "tiny": {
        "steps": [100, 200],
        "storm": 100,
        "away": 2,
        "connect_rate": 1000,
        "idle": 0.5,
        "settle": 0.2,
    },
    "quick": {
        "steps": [1000, 2000],
        "storm": 1000,
        "away": 2,
        "connect_rate": 2000,
        "idle": 2.0,
        "settle": 1.0,
    },
    "full": {
        "steps": [10_000, 20_000],
        "storm": 10_000,
        "away": 2,
        "connect_rate": 2000,
        "idle": 5.0,
        "settle": 2.0,
    },
}
"""`idle`: seconds of quiet over which idle CPU is measured; `settle`: pause after a ramp step
or a disconnect, so the servers have finished the handshakes and closes before memory is read
or the next phase starts."""
CATCH_UP_TIMEOUT = 60
"""Longest wait for the storm's missed notifications after the reconnect command."""


def run(bench: Bench) -> ScenarioResult:
    """Ramp, idle and storm on the product, then on the peer."""
    ensure_packages()
    settings = bench.settings
    users = user_ids(settings["steps"][-1])
    with bench.stack("sockets", web=2) as stack:
        create_users(stack, users)
        clients = product_clients(stack.urls, mint_tokens(users))
        with client_fleet(clients) as fleet:
            product = _ramp(fleet, stack.web_processes, settings)
            product["storm"] = _storm(
                fleet, stack.web_processes, settings, product_sender(stack, users)
            )
    with peer_servers(REDIS_URL) as peer, client_fleet(peer_clients(peer.urls, users)) as fleet:
        other = _ramp(fleet, peer.processes, settings)
        other["storm"] = _storm(fleet, peer.processes, settings, None)
    result = ScenarioResult("sockets")
    result.details = {"web_processes": 2, "product": product, "peer": other}
    _rows(result, "product", product, bench.size)
    _rows(result, "peer", other, bench.size)
    return result


def _ramp(fleet: ClientFleet, servers: list[Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Connect up to each step; per step the connect rate, memory and idle CPU."""
    baseline = rss_bytes(servers)
    steps = {}
    connected = 0
    for step in settings["steps"]:
        cpu_before = cpu_seconds(servers), cpu_seconds(fleet.popens)
        summary = fleet.connect(connected, step, settings["connect_rate"])
        server_cpu = cpu_seconds(servers) - cpu_before[0]
        client_cpu = cpu_seconds(fleet.popens) - cpu_before[1]
        connected += summary.connected
        time.sleep(settings["settle"])
        memory = rss_bytes(servers)
        cpu_before = cpu_seconds(servers)
        time.sleep(settings["idle"])
        idle_cpu = (cpu_seconds(servers) - cpu_before) / settings["idle"]
        steps[step] = {
            "connected": connected,
            "connect": summary.summary(),
            "cpu_us_per_connect": server_cpu / summary.connected * 1e6 if summary.connected else 0,
            # Near 1.0 per client process: the clients, not the server, set the pace.
            "client_cpu_share": client_cpu * 1000 / (summary.finished - summary.started),
            "rss_mib": memory / 2**20,
            "kib_per_connection": (memory - baseline) / 1024 / connected if connected else 0.0,
            "idle_cpu_percent": idle_cpu * 100,
        }
    return {"baseline_rss_mib": baseline / 2**20, "steps": steps}


Sender = Callable[[int, str], dict[int, str]]
"""Sends one notification to each of the first `count` users: (count, title) -> the id each
of their clients should get, by client index."""


def product_sender(stack: Stack, users: list[str]) -> Sender:
    """The product's Sender: one POST per MAX_RECIPIENTS users."""

    def send(count: int, title: str) -> dict[int, str]:
        ids = {}
        for start in range(0, count, MAX_RECIPIENTS):
            chunk = users[start : min(count, start + MAX_RECIPIENTS)]
            answer = stack.call("POST", "/notifications", {"to": chunk, "title": title}, 120)
            for offset, notification in enumerate(answer["notifications"]):
                ids[start + offset] = notification["id"]
        return ids

    return send


def send_away(
    fleet: ClientFleet, count: int, send: Sender | None, away: int, settle: float
) -> set[tuple[int, str]]:
    """The first `count` clients each receive one notification (so each has a last id to come
    back with), disconnect, and are sent `away` more while away (with a sender; none for the
    peer); the (client, id) of each notification they missed."""
    if send is not None:
        mark = len(fleet.received)
        before = send(count, "before")
        fleet.wait_for(mark, set(before.values()), lambda event: event.id, CATCH_UP_TIMEOUT)
    fleet.disconnect(0, count)
    time.sleep(settle)
    missed: set[tuple[int, str]] = set()
    for turn in range(away if send is not None else 0):
        missed |= set(send(count, f"away {turn}").items())
    return missed


def _storm(
    fleet: ClientFleet, servers: list[Any], settings: dict[str, Any], send: Sender | None
) -> dict[str, Any]:
    """Disconnect the first `storm` clients, send them `away` notifications each (with a
    sender; none for the peer), reconnect them all at once with `last_id`, and time until
    each is back and has everything it missed."""
    storm = settings["storm"]
    missed = send_away(fleet, storm, send, settings["away"], settings["settle"])
    mark = len(fleet.received)
    started = time.time() * 1000
    cpu_before = cpu_seconds(servers)
    summary = fleet.connect(0, storm, rate=0, last_id=True)
    fleet.wait_for(mark, missed, lambda event: (event.client, event.id), CATCH_UP_TIMEOUT)
    fleet.flush()
    server_cpu = cpu_seconds(servers) - cpu_before
    caught_up = [event for event in fleet.since(mark) if (event.client, event.id) in missed]
    done = max([summary.finished, *(event.at for event in caught_up)])
    return {
        "clients": storm,
        "connect": summary.summary(),
        "reconnect_ms": summary.connect_ms,
        "seconds": (done - started) / 1000,
        "cpu_us_per_reconnect": server_cpu / summary.connected * 1e6 if summary.connected else 0,
        "missed": len(missed),
        "missing": len(missed - {(event.client, event.id) for event in caught_up}),
    }


def _rows(result: ScenarioResult, name: str, measured: dict[str, Any], size: str) -> None:
    """The table rows of one server. The connect rate, memory and storm targets are marked
    for the product at quick and full (a few hundred connections say nothing about them);
    reconnecting everyone and missing nothing count at every size."""
    marked = name == "product" and size != "tiny"
    for step, figures in measured["steps"].items():
        case = f"{name} {step:,} idle"
        result.add(
            case,
            "connects per second",
            figures["connect"]["per_second"],
            "/s",
            ">= 1000/s" if marked else None,
            figures["connect"]["per_second"] >= 1000 if marked else None,
        )
        result.add(case, "server CPU per connect", figures["cpu_us_per_connect"], "us")
        result.add(
            case,
            "memory per connection",
            figures["kib_per_connection"],
            "KiB",
            "<= 50 KiB" if marked else None,
            figures["kib_per_connection"] <= 50 if marked else None,
        )
        result.add(case, "idle CPU", figures["idle_cpu_percent"], "% core")
        pending = figures["connect"]["pending"]
        result.add(case, "not connected", pending, "clients", "= 0", pending == 0)
    storm = measured["storm"]
    # The samples move to the chart; their percentiles stay in `connect`.
    result.distributions[f"{name} storm reconnect"] = storm.pop("reconnect_ms")
    case = f"{name} storm {storm['clients']:,}"
    result.add(
        case,
        "back and caught up" if name == "product" else "back",
        storm["seconds"],
        "s",
        "<= 15 s" if marked else None,
        storm["seconds"] <= 15 if marked else None,
    )
    not_back = storm["connect"]["pending"]
    result.add(case, "not reconnected", not_back, "clients", "= 0", not_back == 0)
    if name == "product":
        result.add(
            case, "missed, never received", storm["missing"], "events", "= 0", storm["missing"] == 0
        )
