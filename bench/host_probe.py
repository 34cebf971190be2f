"""How fast the host runs right now: a fixed piece of interpreter work, timed in a process of
its own while a scenario's load runs beside it.

The machine is shared, and its speed moves within minutes: in one afternoon the bare server
answered 2,805 to 4,382 requests a second, and two 20-minute soaks at two commits, run one
after the other with flat CPU per send, saw their p99 drift by -24 % and +25 %. A scenario
that watches drift over time samples this probe beside its load, so that a server that slows
can be told from a host that does.

The probe's CPU time is the measure: it grows when the host's cores run the same work slower
(a neighbour on the physical machine, time the hypervisor takes and charges to the guest),
and hardly when the run itself, or another process on this machine, keeps the cores busy: in
an 8-minute soak where a neighbour process took a quarter of each core, the p99 rose by 24 %
and the probe's CPU time fell by 7.5 %. Wall time is kept beside it.
"""

import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType

_WORK = """
import json, time

def once():
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(2000):
        doc = {"id": str(n), "title": f"Title {n}", "data": {"n": n, "tags": ["a", "b"]}}
        json.loads(json.dumps(doc))
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000

print(*sorted(once() for _ in range(5))[2])
"""
"""Five rounds of 2,000 small documents built and round-tripped through JSON, about 10 ms a
round on an idle core here; the median round is printed as wall and CPU milliseconds."""
PROBE_TIMEOUT_SECONDS = 30.0
"""Longer than any probe takes, even on a host at a tenth of its speed."""


@dataclass(frozen=True)
class Sample:
    at: float
    """`time.monotonic()` when the probe finished (a window's end, for a window's median)."""
    wall_ms: float
    cpu_ms: float


def probe() -> Sample:
    """Time the fixed work once, in a fresh interpreter (its start is not counted)."""
    done = subprocess.run(
        [sys.executable, "-c", _WORK],
        capture_output=True,
        text=True,
        check=True,
        timeout=PROBE_TIMEOUT_SECONDS,
    )
    wall_ms, cpu_ms = (float(value) for value in done.stdout.split())
    return Sample(time.monotonic(), wall_ms, cpu_ms)


class HostProbe:
    """Runs `probe` about every `every` seconds in a background thread while its `with` block
    runs, keeping every sample. A probe that fails or hangs is reported on stderr and leaves
    a gap: a long run goes on without it rather than stopping."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_forever, daemon=True)

    def __enter__(self) -> "HostProbe":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_forever(self) -> None:
        while True:
            try:
                self.samples.append(probe())
            except (OSError, ValueError, subprocess.SubprocessError) as failure:
                print(f"host probe failed: {failure!r}", file=sys.stderr, flush=True)
            if self._stop.wait(self.every):
                return

    def median(self, start: float, end: float) -> Sample | None:
        """The median wall and CPU times of the samples taken between two `time.monotonic()`
        readings, or None if no probe finished between them."""
        within = [s for s in self.samples if start <= s.at <= end]
        if not within:
            return None
        return Sample(
            end,
            statistics.median(s.wall_ms for s in within),
            statistics.median(s.cpu_ms for s in within),
        )
