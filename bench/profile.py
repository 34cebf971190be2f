"""Where a web process spends its CPU: py-spy samples one `wsgi.py` under a load, then prints
the functions with the most samples (their own and with what they call) and writes a
speedscope profile. Five loads (run with .venv/bin/python):

    python -m bench.profile [--load ingest] [--seconds 15] [--connections 16 | --rate 200]
    python -m bench.profile --load connects [--sockets 8000] [--connects 3000] [--rate 300]
    python -m bench.profile --load idle [--sockets 8000] [--seconds 30]
    python -m bench.profile --load reconnects [--sockets 3000] [--rate 300]
    python -m bench.profile --load fanout [--sockets 5000] [--seconds 15]

- `ingest`: a closed loop of one-recipient in-app sends over `--connections`; or, with
  `--rate`, an open loop at that many per second (a send then mostly goes alone, as in the
  end-to-end scenario's low rates). Prints the server's CPU per request.
- `connects`: `--sockets` idle Socket.IO clients (node, websocket, like the sockets
  scenario's) connect first, unmeasured; then `--connects` more connect at `--rate` per second
  while sampled. Prints the server's CPU per connect over them.
- `idle`: `--sockets` clients connect, then nothing happens while sampled. Prints the
  server's CPU as a share of a core over that time. Engine.IO pings each socket every 25 s,
  so a window shorter than that sees a part of the ping cycle only (how much depends on
  when the sockets connected); the default covers one whole interval.
- `reconnects`: `--sockets` clients connect and each receives a notification, so each has a
  last id; they disconnect, AWAY_NOTIFICATIONS more are sent to each, and all come back with
  `last_id` at `--rate` per second while sampled: the sockets scenario's storm, spread out so
  that its cost per reconnect shows rather than its queueing. Prints the server's CPU per
  reconnect, until every missed notification has arrived.
- `fanout`: `--sockets` clients connect; then one send to all of them after another, each
  once the last one's notifications have all arrived, while sampled. Prints the server's CPU
  per notification delivered (the send's request and its emits: one process does both).

Open bench/results/profile-<date>.speedscope.json at https://www.speedscope.app.

Reading the samples: py-spy sees Python frames only, so a garbage collection is charged to
whatever frame allocated the object that started it (under many sockets often eventlet's
`schedule_call_global` or Flask's `RequestContext.push`); confirm with an experiment before
blaming a frame for that time.
"""

import argparse
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Bench, Stack
from bench.load import Load, LoadResult, closed_loop, open_loop
from bench.node import ClientFleet, client_fleet, ensure_packages
from bench.realtime import cpu_seconds, create_users, mint_tokens, product_clients, user_ids
from bench.report import RESULTS
from bench.scenarios.sockets import CATCH_UP_TIMEOUT, Sender, product_sender, send_away

TOP = 30
IDLE_CONNECT_RATE = 2000
"""Offered rate for the unmeasured idle sockets (the server sets the real pace)."""
SETTLE_SECONDS = 2
"""Pause after the idle sockets connect, so their handshakes are done before sampling."""
AWAY_NOTIFICATIONS = 2
"""Notifications each client misses while away, in the `reconnects` load (as in the storm)."""


def _sample(pid: int, seconds: float, out: Path, speedscope: Path) -> list[threading.Thread]:
    """py-spy's collapsed stacks into `out` and a speedscope file, `seconds` of samples;
    the recording threads, to join once the load is over."""
    py_spy = str(Path(sys.executable).parent / "py-spy")
    recorders = []
    for form, path in (("raw", out), ("speedscope", speedscope)):
        # Two recordings one after the other would profile different moments; two at once
        # share the process fairly (py-spy only reads its memory).
        recorder = threading.Thread(
            target=subprocess.run,
            args=(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, round(seconds))),
                    "--rate",
                    "200",
                    "--format",
                    form,
                    "--output",
                    str(path),
                    "--nonblocking",
                ],
            ),
            kwargs={"check": True, "capture_output": True},
        )
        recorder.start()
        recorders.append(recorder)
    return recorders


def _function(frame: str) -> str:
    """`name (path/to/module.py:line)` as `name (module.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def _tally(collapsed: Path) -> tuple[Counter[str], Counter[str], int]:
    """Samples per function: where it was the running frame, and anywhere on the stack."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            # A frame whose name holds a newline (py-spy names some frames by an exception's
            # message) breaks its stack over lines: those few samples are left out.
            continue
        samples = int(count)
        frames = [_function(frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            anywhere[frame] += samples
    return own, anywhere, total


def _ingest(stack: Stack, args: argparse.Namespace, out: Path, speedscope: Path) -> str:
    tag = f"profile-{secrets.token_hex(3)}"
    bodies = [{"to": f"{tag}-{n}", "title": "Profile", "body": "in-app"} for n in range(1000)]
    load = Load(stack.urls, stack.key, bodies, collect_ids=False)
    server = stack.web_processes[0]
    closed_loop(load, args.connections, 1.0, warmup_seconds=0.5)
    recorders = _sample(server.pid, args.seconds, out, speedscope)
    before = cpu_seconds([server])
    result: LoadResult
    if args.rate is None:
        result = closed_loop(load, args.connections, args.seconds, warmup_seconds=0.5)
    else:
        result = open_loop(load, args.rate, args.seconds)
    per_request = (cpu_seconds([server]) - before) / max(1, result.ok)
    for recorder in recorders:
        recorder.join()
    return (
        f"{result.throughput:.0f} req/s while sampled, {1e6 * per_request:.0f} us of CPU "
        f"per request"
    )


def _sockets(stack: Stack, args: argparse.Namespace, out: Path, speedscope: Path) -> str:
    """The `connects` and `idle` loads: the same clients, measured differently."""
    ensure_packages()
    measured = args.connects if args.load == "connects" else 0
    users = user_ids(args.sockets + measured)
    create_users(stack, users)
    server = stack.web_processes[0]
    with client_fleet(product_clients(stack.urls, mint_tokens(users))) as fleet:
        idle = fleet.connect(0, args.sockets, IDLE_CONNECT_RATE) if args.sockets else None
        time.sleep(SETTLE_SECONDS)
        prefix = f"{idle.connected} idle sockets ({idle.pending} not connected); " if idle else ""
        if args.load == "idle":
            before, started = cpu_seconds([server]), time.monotonic()
            for recorder in _sample(server.pid, args.seconds, out, speedscope):
                recorder.join()
            share = (cpu_seconds([server]) - before) / (time.monotonic() - started)
            return f"{prefix}idle CPU {100 * share:.1f} % of a core while sampled"
        seconds = measured / args.rate
        recorders = _sample(server.pid, seconds, out, speedscope)
        before = cpu_seconds([server])
        summary = fleet.connect(args.sockets, args.sockets + measured, args.rate)
        per_connect = (cpu_seconds([server]) - before) / max(1, summary.connected)
        for recorder in recorders:
            recorder.join()
    return (
        f"{prefix}{summary.connected} connects at {summary.summary()['per_second']:.0f}/s "
        f"({summary.pending} not connected), {1000 * per_connect:.2f} ms of CPU each"
    )


@contextmanager
def _connected(
    stack: Stack, sockets: int
) -> Iterator[tuple[subprocess.Popen, Sender, ClientFleet]]:
    """`sockets` users, each with a client connected to the stack's web process: that
    process, the product's sender to those users, and their clients."""
    ensure_packages()
    users = user_ids(sockets)
    create_users(stack, users)
    with client_fleet(product_clients(stack.urls, mint_tokens(users))) as fleet:
        fleet.connect(0, sockets, IDLE_CONNECT_RATE)
        yield stack.web_processes[0], product_sender(stack, users), fleet


def _reconnects(stack: Stack, args: argparse.Namespace, out: Path, speedscope: Path) -> str:
    with _connected(stack, args.sockets) as (server, send, fleet):
        missed = send_away(fleet, args.sockets, send, AWAY_NOTIFICATIONS, SETTLE_SECONDS)
        mark = len(fleet.received)
        recorders = _sample(server.pid, args.sockets / args.rate, out, speedscope)
        before = cpu_seconds([server])
        summary = fleet.connect(0, args.sockets, args.rate, last_id=True)
        caught_up = fleet.wait_for(
            mark, missed, lambda event: (event.client, event.id), CATCH_UP_TIMEOUT
        )
        per_reconnect = (cpu_seconds([server]) - before) / max(1, summary.connected)
        for recorder in recorders:
            recorder.join()
    return (
        f"{summary.connected} reconnects at {summary.summary()['per_second']:.0f}/s "
        f"({summary.pending} not back, {'all' if caught_up else 'not all'} missed events "
        f"received), {1000 * per_reconnect:.2f} ms of CPU each"
    )


def _fanout(stack: Stack, args: argparse.Namespace, out: Path, speedscope: Path) -> str:
    with _connected(stack, args.sockets) as (server, send, fleet):
        time.sleep(SETTLE_SECONDS)
        recorders = _sample(server.pid, args.seconds, out, speedscope)
        before, started = cpu_seconds([server]), time.monotonic()
        sends = delivered = 0
        while time.monotonic() - started < args.seconds:
            mark = len(fleet.received)
            ids = set(send(args.sockets, f"fanout {sends}").values())
            if not fleet.wait_for(mark, ids, lambda event: event.id, CATCH_UP_TIMEOUT):
                raise SystemExit(f"send {sends}: not every notification arrived")
            sends, delivered = sends + 1, delivered + len(ids)
        per_event = (cpu_seconds([server]) - before) / max(1, delivered)
        elapsed = time.monotonic() - started
        for recorder in recorders:
            recorder.join()
    return (
        f"{sends} sends to {args.sockets} sockets, {elapsed / max(1, sends):.2f} s each until "
        f"the last notification arrived, {1e6 * per_event:.0f} us of CPU per notification"
    )


LOADS = {
    "ingest": _ingest,
    "connects": _sockets,
    "idle": _sockets,
    "reconnects": _reconnects,
    "fanout": _fanout,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", choices=sorted(LOADS), default="ingest")
    parser.add_argument("--seconds", type=float, help="ingest, fanout: 15 by default; idle: 30")
    parser.add_argument("--connections", type=int, default=16, help="ingest")
    parser.add_argument(
        "--sockets",
        type=int,
        help="connects, idle: 8000 by default; reconnects: 3000; fanout: 5000",
    )
    parser.add_argument("--connects", type=int, default=3000, help="connects")
    parser.add_argument(
        "--rate",
        type=float,
        help="connects, reconnects: offered per second (300 by default); ingest: an open loop",
    )
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 30 if args.load == "idle" else 15
    if args.rate is None and args.load != "ingest":
        args.rate = 300
    if args.sockets is None:
        args.sockets = {"reconnects": 3000, "fanout": 5000}.get(args.load, 8000)
    stamp = f"{datetime.now(UTC):%Y-%m-%dT%H%M}"
    collapsed = RESULTS / f"profile-{args.load}-{stamp}.txt"
    speedscope = RESULTS / f"profile-{args.load}-{stamp}.speedscope.json"
    with Bench("quick", {}).stack("profile") as stack:
        measured = LOADS[args.load](stack, args, collapsed, speedscope)
    print(measured, file=sys.stderr)
    own, anywhere, total = _tally(collapsed)
    print(f"{'own %':>6} {'total %':>8}  function ({total} samples)")
    for frame, samples in own.most_common(TOP):
        print(f"{100 * samples / total:6.1f} {100 * anywhere[frame] / total:8.1f}  {frame}")
    print()
    print(f"{'total %':>8}  function, by time including what it calls")
    for frame, samples in anywhere.most_common(TOP * 2):
        print(f"{100 * samples / total:8.1f}  {frame}")
    print(f"wrote {collapsed} and {speedscope}", file=sys.stderr)


if __name__ == "__main__":
    main()
