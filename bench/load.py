"""HTTP load from separate processes, in two shapes:

- **open loop** at a fixed offered rate: request i is due at t0 + i/rate and its latency is
  measured from that due time, not from when it was actually sent, so a server that falls
  behind shows as latency instead of quietly lowering the rate (no coordinated omission);
- **closed loop**: C connections, each sending its next request as soon as the last one is
  answered, for a duration: the saturation throughput.

Both spread requests over several base URLs (one per web process), can run in several
generator processes (each takes every P-th request), and return the latencies, the status
counts and, for POST /notifications, the notification ids answered:

    from bench.load import Load, closed_loop, open_loop

    load = Load(urls=stack.urls, credential=stack.key, bodies=[{"to": "ana", "title": "t"}])
    result = open_loop(load, rate=200, seconds=5)
    result.percentiles(), result.statuses, result.errors, list(result.ids)

`result.ids` maps each id to the epoch time its request was due (open loop) or sent (closed
loop), for scenarios that time what happens after a send (an event reaching a socket).

Each generator process is `python -m bench.load`: it reads one JSON spec line on stdin,
answers `ready`, waits for `go <epoch>` (so every process starts on the same t0), runs, and
writes one JSON result line on stdout.

The generators share the 2 cores with the servers they load, so they speak HTTP/1.1 on
asyncio's streams themselves, each request's bytes made once up front: aiohttp's client took
0.76 of a core at the bare endpoint's saturation, a load the servers then lacked.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.report import percentiles

START_MARGIN_SECONDS = 0.05
"""Between the last generator saying `ready` and t0: time for `go` to reach them all."""
GRACE_SECONDS = 30
"""How much longer than its load and its request timeouts a generator may take."""


@dataclass(frozen=True)
class Load:
    """What to send. Request i goes to `urls[i % len(urls)] + path` with the JSON body
    `bodies[i % len(bodies)]` and `Authorization: Bearer <credential>`."""

    urls: list[str]
    credential: str
    bodies: list[Any]
    path: str = "/notifications"
    method: str = "POST"
    # Parse each 2xx answer for `notifications[].id` (costs generator CPU; off for baselines
    # that answer with nothing to check).
    collect_ids: bool = True
    timeout_seconds: float = 10.0
    processes: int = 1
    # Open loop: most requests in flight per generator process; past it, requests wait for a
    # connection, and that wait counts in their latency.
    max_connections: int = 256


@dataclass
class LoadResult:
    """What a load run saw, summed over its generator processes."""

    mode: str
    # The open loop's duration, or the closed loop's measured window (after its warmup).
    seconds: float
    sent: int = 0
    # Milliseconds to each 2xx answer: all of them in the open loop, those completed in the
    # window in the closed loop.
    latencies_ms: list[float] = field(default_factory=list)
    # Answers by status code, and failures by exception name ("TimeoutError").
    statuses: dict[str, int] = field(default_factory=dict)
    # Notification id -> epoch seconds its request was due (open) or sent (closed).
    ids: dict[str, float] = field(default_factory=dict)
    # Open loop: how late requests left after their due time (generator lag), milliseconds.
    start_lag_ms: list[float] = field(default_factory=list)
    # Closed loop: how long the warmup took (longest over the generator processes).
    warmup_seconds: float = 0.0
    # CPU seconds the generator processes used over their wall time: near 1.0 per process
    # means the generator, not the server, set the pace.
    generator_cpu: float = 0.0

    @property
    def ok(self) -> int:
        """2xx answers with a latency (all in the open loop, the window's in the closed)."""
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        """Requests that got no 2xx answer (other statuses, timeouts, refused connections)."""
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))

    @property
    def throughput(self) -> float:
        """2xx answers per second: the saturation throughput of a closed loop (for an open
        loop, what was answered over the time it was offered in)."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentiles(self) -> dict[str, float]:
        """p50, p99, p99.9 and max of the latencies (ms)."""
        return percentiles(self.latencies_ms)

    def summary(self) -> dict[str, Any]:
        """Everything but the samples, for a scenario's `details`."""
        lag = percentiles(self.start_lag_ms)
        return {
            "mode": self.mode,
            "seconds": round(self.seconds, 3),
            "sent": self.sent,
            "ok": self.ok,
            "throughput_per_second": round(self.throughput, 1),
            "statuses": self.statuses,
            "latency_ms": self.percentiles(),
            "start_lag_ms": {"p99": lag["p99"], "max": lag["max"]},
            "warmup_seconds": round(self.warmup_seconds, 3),
            "generator_cpu": round(self.generator_cpu, 2),
        }


def open_loop(load: Load, rate: float, seconds: float) -> LoadResult:
    """Offer `rate` requests per second for `seconds`, whatever the answers; each latency is
    counted from the request's due time."""
    return _run(load, {"mode": "open", "rate": rate, "seconds": seconds})


def closed_loop(
    load: Load, connections: int, seconds: float, warmup_seconds: float = 0.0
) -> LoadResult:
    """`connections` connections in all, each sending back to back: a warmup of at least
    `warmup_seconds` that lasts until every connection has had an answer, then `seconds` in
    which throughput and latencies are counted (ids and statuses count for the whole run)."""
    spec = {
        "mode": "closed",
        "connections": connections,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
    }
    return _run(load, spec)


def _run(load: Load, plan: dict[str, Any]) -> LoadResult:
    """Start the generator processes, start them together, and merge what they saw."""
    spec = asdict(load) | plan
    # The warmup may last a request timeout past its own, and the last request another one.
    limit = plan["seconds"] + plan.get("warmup_seconds", 0) + 2 * load.timeout_seconds
    limit += GRACE_SECONDS
    generators = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.load"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(load.processes)
    ]
    try:
        for index, generator in enumerate(generators):
            assert generator.stdin is not None
            generator.stdin.write(json.dumps(spec | {"index": index}) + "\n")
            generator.stdin.flush()
        for generator in generators:
            assert generator.stdout is not None
            if generator.stdout.readline().strip() != "ready":
                raise RuntimeError("a load generator failed to start (see its stderr)")
        t0 = time.time() + START_MARGIN_SECONDS
        outputs = []
        for generator in generators:
            assert generator.stdin is not None
            generator.stdin.write(f"go {t0}\n")
            generator.stdin.flush()
        # A generator that finished first blocks on its full stdout pipe until read: harmless,
        # its load is done.
        for generator in generators:
            stdout, _ = generator.communicate(timeout=limit)
            if generator.returncode != 0:
                raise RuntimeError(f"a load generator exited with {generator.returncode}")
            outputs.append(json.loads(stdout))
    finally:
        for generator in generators:
            if generator.poll() is None:
                generator.kill()
                generator.wait()
    return _merge(plan["mode"], outputs)


def _merge(mode: str, outputs: list[dict[str, Any]]) -> LoadResult:
    result = LoadResult(mode=mode, seconds=max(output["seconds"] for output in outputs))
    statuses: Counter[str] = Counter()
    for output in outputs:
        result.sent += output["sent"]
        result.latencies_ms.extend(output["latencies_ms"])
        result.start_lag_ms.extend(output["start_lag_ms"])
        result.ids.update(output["ids"])
        result.generator_cpu += output["cpu_seconds"] / output["wall_seconds"]
        result.warmup_seconds = max(result.warmup_seconds, output["warmup_seconds"])
        statuses.update(output["statuses"])
    result.statuses = dict(sorted(statuses.items()))
    return result


class _Connections:
    """Keep-alive HTTP/1.1 connections to each server, reused request after request, at most
    `limit` of them in use at once: a request past that waits for one, and its wait counts in
    its latency."""

    def __init__(self, urls: list[str], limit: int) -> None:
        self.addresses = [(split.hostname, split.port) for split in map(urlsplit, urls)]
        self.idle: list[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = [
            [] for _ in urls
        ]
        self.in_use = asyncio.Semaphore(limit)

    async def exchange(self, server: int, request: bytes) -> tuple[int, bytes]:
        """Send `request` to server number `server`; the answer's status and body."""
        async with self.in_use:
            reader, writer = await self._connection(server)
            try:
                writer.write(request)
                status, body, reusable = await _answer(reader)
            except BaseException:
                writer.close()
                raise
            if reusable:
                self.idle[server].append((reader, writer))
            else:
                writer.close()
            return status, body

    async def _connection(self, server: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An idle connection to the server that it has not closed meanwhile (Node closes
        one idle for 5 s), or a new one."""
        idle = self.idle[server]
        while idle:
            reader, writer = idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(*self.addresses[server])

    def close(self) -> None:
        for idle in self.idle:
            for _, writer in idle:
                writer.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """The final HTTP/1.x answer to a request (not HEAD: the generator sends none): its
    status, its body, and whether the connection stays open (by RFC 9112: HTTP/1.1 unless
    the answer says close, HTTP/1.0 only if it says keep-alive)."""
    status = 100
    while status < 200:  # interim answers (100 Continue) come before the final one
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
    options = {option.strip() for option in (_header(head, b"connection") or b"").split(b",")}
    http_1_0 = head.startswith(b"http/1.0")
    reusable = b"keep-alive" in options if http_1_0 else b"close" not in options
    if status in (204, 304):
        return status, b"", reusable
    encoding = _header(head, b"transfer-encoding")
    if encoding is not None:
        # The transfer coding wins over a length; only a chunked one ends before the close.
        if encoding.split(b",")[-1].strip() != b"chunked":
            return status, await reader.read(), False
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass  # a trailer field
        return status, b"".join(chunks), reusable
    length = _header(head, b"content-length")
    if length is not None:
        return status, await reader.readexactly(int(length)), reusable
    return status, await reader.read(), False


def _header(head: bytes, name: bytes) -> bytes | None:
    """A header's value in a lowercased HTTP head, or None."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    return head[start : head.index(b"\r\n", start)].strip()


class _Generator:
    """One generator process's share of a load: every P-th request, starting at its index."""

    def __init__(self, spec: dict[str, Any], t0_epoch: float) -> None:
        self.spec = spec
        limit = spec["max_connections"] if spec["mode"] == "open" else spec["connections"]
        self.connections = _Connections(spec["urls"], limit)
        # Each request's bytes made once: the generator's CPU is better spent sending. A
        # request is its server's head, then its body's length and the body.
        self.heads = [
            (
                f"{spec['method']} {spec['path']} HTTP/1.1\r\n"
                f"Host: {split.netloc}\r\n"
                f"Authorization: Bearer {spec['credential']}\r\n"
                "Content-Type: application/json\r\n"
            ).encode()
            for split in map(urlsplit, spec["urls"])
        ]
        bodies = [json.dumps(body).encode() for body in spec["bodies"]]
        self.tails = [b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies]
        loop = asyncio.get_running_loop()
        # t0 comes as wall-clock time, shared by all processes; the loop runs on its own clock.
        self.t0 = loop.time() + (t0_epoch - time.time())
        self.epoch_offset = time.time() - loop.time()
        self.sent = 0
        self.latencies_ms: list[float] = []
        self.start_lag_ms: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.ids: dict[str, float] = {}
        self.warmup_taken = 0.0

    async def request(self, i: int, started: float) -> float | None:
        """Send request i (`started` is its due time in the open loop); when its 2xx answer
        was complete, or None for any other outcome."""
        self.sent += 1
        server = i % len(self.heads)
        try:
            async with asyncio.timeout(self.spec["timeout_seconds"]):
                status, raw = await self.connections.exchange(
                    server, self.heads[server] + self.tails[i % len(self.tails)]
                )
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as error:
            # Refused, reset or timed out (TimeoutError is an OSError), cut short, or not
            # HTTP: counted by the exception's name, as statuses are (aiohttp's names for
            # the same failures, before 06e73c1, differ).
            self.statuses[type(error).__name__] += 1
            return None
        done = asyncio.get_running_loop().time()
        self.statuses[str(status)] += 1
        if not 200 <= status < 300:
            return None
        if self.spec["collect_ids"]:
            for notification in json.loads(raw)["notifications"]:
                self.ids[notification["id"]] = started + self.epoch_offset
        return done

    async def open_loop(self) -> None:
        loop = asyncio.get_running_loop()
        rate = self.spec["rate"]
        total = int(rate * self.spec["seconds"])

        async def due_request(i: int, due: float) -> None:
            done = await self.request(i, due)
            if done is not None:
                self.latencies_ms.append((done - due) * 1000)

        tasks = []
        for i in range(self.spec["index"], total, self.spec["processes"]):
            due = self.t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.start_lag_ms.append((loop.time() - due) * 1000)
            tasks.append(asyncio.create_task(due_request(i, due)))
        await asyncio.gather(*tasks)

    async def closed_loop(self) -> None:
        loop = asyncio.get_running_loop()
        counter = iter(range(self.spec["index"], sys.maxsize, self.spec["processes"]))
        share, extra = divmod(self.spec["connections"], self.spec["processes"])
        connections = share + (1 if self.spec["index"] < extra else 0)
        # The window opens once the warmup has passed and every connection has had an answer
        # (the first requests of fresh processes can take seconds), or once a warmup plus a
        # request timeout have passed, so a dead server still ends the run.
        warm_by = self.t0 + self.spec["warmup_seconds"]
        give_up = warm_by + self.spec["timeout_seconds"]
        window: list[float] = []
        answered = 0

        async def connection() -> None:
            nonlocal answered
            first = True
            while not window or loop.time() < window[1]:
                started = loop.time()
                done = await self.request(next(counter), started)
                if first and done is not None:
                    first = False
                    answered += 1
                now = loop.time()
                warm = answered == connections and now >= warm_by
                if not window and (warm or now >= give_up):
                    window.extend((now, now + self.spec["seconds"]))
                    self.warmup_taken = now - self.t0
                if window and done is not None and window[0] <= done <= window[1]:
                    self.latencies_ms.append((done - started) * 1000)

        await asyncio.sleep(max(0.0, self.t0 - loop.time()))
        await asyncio.gather(*(connection() for _ in range(connections)))


async def _generate(spec: dict[str, Any], t0_epoch: float) -> dict[str, Any]:
    generator = _Generator(spec, t0_epoch)
    wall, cpu = time.monotonic(), time.process_time()
    try:
        await getattr(generator, f"{spec['mode']}_loop")()
    finally:
        generator.connections.close()
    return {
        "seconds": spec["seconds"],
        "sent": generator.sent,
        "latencies_ms": generator.latencies_ms,
        "start_lag_ms": generator.start_lag_ms,
        "statuses": dict(generator.statuses),
        "ids": generator.ids,
        "warmup_seconds": generator.warmup_taken,
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.monotonic() - wall,
    }


def main() -> None:
    """One generator process: spec on stdin, `ready`, wait for `go <epoch>`, result out."""
    spec = json.loads(sys.stdin.readline())
    print("ready", flush=True)
    word, t0_epoch = sys.stdin.readline().split()
    assert word == "go"
    result = asyncio.run(_generate(spec, float(t0_epoch)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
