"""Node processes of the real-time benchmarks: the npm packages they need, a fleet of Socket.IO
clients (bench/clients/clients.mjs) and the peer server (bench/peer/server.mjs)."""

import hashlib
import json
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import ROOT, free_port
from bench.report import percentiles

CLIENTS = ROOT / "bench" / "clients"
PEER = ROOT / "bench" / "peer"
CONNECT_TIMEOUT = 180
"""Longest one connect command may take: 10,000 clients at the slowest connect rate seen
(about 100 per second on a busy machine) and some slack. Clients still not in are reported,
not waited for."""
CLIENTS_PER_PROCESS = 5_000
"""Most sockets one client process opens: well under the 20,000 open files a process may have,
and few enough that one node process is not what limits the connect rate."""


def ensure_packages() -> None:
    """Install the npm packages of bench/clients and bench/peer as their lock files say
    (`npm ci`), unless the lock file is unchanged since the last install."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("the real-time benchmarks need node and npm (apt-get install nodejs npm)")
    for folder in (CLIENTS, PEER):
        stamp = folder / "node_modules" / ".installed"
        digest = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == digest:
            continue
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(digest + "\n")


@dataclass(frozen=True)
class Received:
    """One `notification` event as a client saw it: the client's index, the notification's
    id, and when it arrived (epoch milliseconds, sub-millisecond precision)."""

    client: int
    id: str
    at: float


@dataclass
class ConnectSummary:
    """How a connect command went across the fleet."""

    connected: int
    pending: int
    started: float
    finished: float
    connect_ms: list[float]
    errors: dict[str, int] = field(default_factory=dict)
    retries: int = 0

    @property
    def per_second(self) -> float:
        """Connections made per second, from the first attempt to the last connect."""
        seconds = (self.finished - self.started) / 1000
        return self.connected / seconds if seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Everything but the samples, for a scenario's `details`."""
        return {
            "connected": self.connected,
            "pending": self.pending,
            "per_second": round(self.per_second, 1),
            "connect_ms": percentiles(self.connect_ms),
            "errors": self.errors,
            "retries": self.retries,
        }


class _ClientProcess:
    """One `node clients.mjs`: commands in, answers and events out (read by a thread)."""

    def __init__(self, clients: list[dict[str, str]], base: int, sink: "ClientFleet") -> None:
        self.base = base
        self.count = len(clients)
        self.spec = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        json.dump({"clients": clients}, self.spec)
        self.spec.close()
        self.process = subprocess.Popen(
            ["node", str(CLIENTS / "clients.mjs"), self.spec.name],
            cwd=CLIENTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(sink,), daemon=True)
        self.reader.start()

    def _read(self, sink: "ClientFleet") -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            if event["ev"] == "n":
                sink.record(Received(self.base + event["c"], event["id"], event["t"]))
            else:
                self.answers.put(event)

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any]:
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError("a client process stopped answering") from None

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send({"cmd": "exit"})
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=10)
        self.reader.join(timeout=5)
        # wait() leaves the pipes open (communicate() would close them, but the reader thread
        # owns stdout).
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        Path(self.spec.name).unlink(missing_ok=True)


class ClientFleet:
    """Socket.IO clients spread over node processes of at most CLIENTS_PER_PROCESS each.
    Client i uses `clients[i]` ({"url", "token"}); every notification any of them receives
    is kept in `received`, in arrival order per process."""

    def __init__(self, clients: list[dict[str, str]]) -> None:
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        processes = max(1, math.ceil(len(clients) / CLIENTS_PER_PROCESS))
        share = math.ceil(len(clients) / processes)
        self.processes = [
            _ClientProcess(clients[start : start + share], start, self)
            for start in range(0, len(clients), share)
        ]

    @property
    def popens(self) -> list[subprocess.Popen]:
        """The node processes, for their CPU time (a client fleet can be what sets the pace)."""
        return [node.process for node in self.processes]

    def record(self, event: Received) -> None:
        with self._arrived:
            self.received.append(event)
            self._arrived.notify_all()

    def _each(
        self, command: dict[str, Any], start: int, stop: int, rate: float = 0
    ) -> list[_ClientProcess]:
        """Send `command` to every process holding clients in [start, stop), with its part of
        that range in its own indexes and its share of `rate`; the processes asked."""
        asked = []
        for node in self.processes:
            low, high = max(start, node.base), min(stop, node.base + node.count)
            if low < high:
                share = rate * (high - low) / (stop - start)
                node.send(
                    command | {"from": low - node.base, "to": high - node.base, "rate": share}
                )
                asked.append(node)
        return asked

    def connect(
        self,
        start: int,
        stop: int,
        rate: float,
        last_id: bool = False,
        timeout: float = CONNECT_TIMEOUT,
    ) -> ConnectSummary:
        """Connect clients [start, stop) at `rate` per second in all (0: all at once), with
        `last_id` on reconnects when asked; returns once all are in or `timeout` passed."""
        command = {"cmd": "connect", "last_id": last_id, "timeout_ms": timeout * 1000}
        asked = self._each(command, start, stop, rate)
        answers = [node.answer(timeout + 30) for node in asked]
        errors: dict[str, int] = {}
        for answer in answers:
            for message, count in answer["errors"].items():
                errors[message] = errors.get(message, 0) + count
        return ConnectSummary(
            connected=sum(a["connected"] for a in answers),
            pending=sum(a["pending"] for a in answers),
            started=min(a["started"] for a in answers),
            finished=max(a["finished"] for a in answers),
            connect_ms=[ms for a in answers for ms in a["connect_ms"]],
            errors=errors,
            retries=sum(a["retries"] for a in answers),
        )

    def disconnect(self, start: int, stop: int) -> int:
        """Close clients [start, stop); how many were connected."""
        asked = self._each({"cmd": "disconnect"}, start, stop)
        return sum(node.answer(30)["closed"] for node in asked)

    def flush(self) -> None:
        """Return once every process has written out the events it buffered."""
        for node in self.processes:
            node.send({"cmd": "flush"})
        for node in self.processes:
            node.answer(30)

    def wait_for(
        self, mark: int, wanted: set[Hashable], key: Callable[[Received], Hashable], timeout: float
    ) -> bool:
        """Wait until events received after the first `mark` cover every key in `wanted`
        (`key` gives an event's), or `timeout` passes; True when they all came."""
        deadline = time.monotonic() + timeout
        missing = set(wanted)
        with self._arrived:
            while True:
                missing.difference_update(key(event) for event in self.received[mark:])
                mark = len(self.received)
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return not missing
                self._arrived.wait(min(left, 0.5))

    def since(self, mark: int) -> list[Received]:
        """Events received after the first `mark` (a length of `received` taken earlier)."""
        with self._arrived:
            return self.received[mark:]

    def close(self) -> None:
        for node in self.processes:
            node.close()


@contextmanager
def client_fleet(clients: list[dict[str, str]]) -> Iterator[ClientFleet]:
    """A ClientFleet, its processes stopped on exit."""
    fleet = ClientFleet(clients)
    try:
        yield fleet
    finally:
        fleet.close()


@dataclass
class Peer:
    """Running peer servers: their URLs and processes."""

    urls: list[str]
    processes: list[subprocess.Popen]


@contextmanager
def peer_servers(redis_url: str, count: int = 2) -> Iterator[Peer]:
    """`count` peer processes (bench/peer/server.mjs) sharing Redis on a channel of their
    own, answering; stopped on exit."""
    channel = f"bench-peer-{free_port()}-{time.time_ns()}"
    with ExitStack() as exits:
        urls, processes = [], []
        for _ in range(count):
            port = free_port()
            running = subprocess.Popen(
                ["node", str(PEER / "server.mjs")],
                cwd=PEER,
                env=os.environ | {"PORT": str(port), "REDIS_URL": redis_url, "CHANNEL": channel},
                stdout=subprocess.DEVNULL,
            )
            exits.callback(_stop, running)
            urls.append(f"http://127.0.0.1:{port}")
            processes.append(running)
        for url in urls:
            _wait_healthy(url)
        yield Peer(urls, processes)


def _stop(running: subprocess.Popen) -> None:
    running.terminate()
    try:
        running.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.kill()
        running.wait(timeout=10)


def _wait_healthy(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the peer at {url} did not start")
