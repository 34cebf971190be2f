"""Where a web process spends its CPU under the ingest load: py-spy samples one `wsgi.py`
while a closed loop sends one-recipient in-app notifications, then prints the functions with
the most samples (their own and with what they call) and writes a speedscope profile.

    .venv/bin/python -m bench.profile [--seconds 15] [--connections 16]

Open bench/results/profile-<date>.speedscope.json at https://www.speedscope.app.
"""

import argparse
import secrets
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Bench
from bench.load import Load, closed_loop
from bench.report import RESULTS

TOP = 30


def _sample(pid: int, seconds: float, out: Path, speedscope: Path) -> None:
    """py-spy's collapsed stacks into `out` and a speedscope file, `seconds` of samples."""
    py_spy = str(Path(sys.executable).parent / "py-spy")
    for form, path in (("raw", out), ("speedscope", speedscope)):
        # Two recordings one after the other would profile different moments; two at once
        # share the process fairly (py-spy only reads its memory).
        threading.Thread(
            target=subprocess.run,
            args=(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
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
        ).start()


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
        samples = int(count)
        frames = [_function(frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            anywhere[frame] += samples
    return own, anywhere, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    tag = f"profile-{secrets.token_hex(3)}"
    bodies = [{"to": f"{tag}-{n}", "title": "Profile", "body": "in-app"} for n in range(1000)]
    stamp = f"{datetime.now(UTC):%Y-%m-%dT%H%M}"
    collapsed = RESULTS / f"profile-{stamp}.txt"
    speedscope = RESULTS / f"profile-{stamp}.speedscope.json"
    with Bench("quick", {}).stack("profile") as stack:
        load = Load(stack.urls, stack.key, bodies, collect_ids=False)
        closed_loop(load, args.connections, 1.0, warmup_seconds=0.5)
        _sample(stack.web_processes[0].pid, args.seconds, collapsed, speedscope)
        result = closed_loop(load, args.connections, args.seconds, warmup_seconds=0.5)
    print(f"{result.throughput:.0f} req/s while sampled", file=sys.stderr)
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
