"""How fast the host runs right now: a fixed piece of interpreter work, timed in a process of
its own while a scenario's load runs beside it.

The machine is shared, and its speed moves within minutes: in one afternoon the bare server
answered 2,805 to 4,382 requests a second, and two 20-minute soaks at two commits, run one
after the other with flat CPU per send, saw their p99 drift by -24 % and +25 %. A scenario
that judges drift over time samples this probe beside its load; its latencies divided by the
probe's time tell a server that slows from a host that does.

The time is wall time, as a request's latency is: it grows when the host gives the machine
less (a slower core, a neighbour's load) and when the run itself wants more of the two cores,
so under a steady load it moves with the host.
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
"""Five rounds of building and round-tripping small documents through JSON, about 10 ms
each on an idle core here; the median round is printed as wall and CPU milliseconds."""


@dataclass(frozen=True)
class Sample:
    at: float
    """`time.monotonic()` when the probe finished."""
    wall_ms: float
    cpu_ms: float


def probe() -> Sample:
    """Time the fixed work once, in a fresh interpreter (its start is not counted)."""
    done = subprocess.run([sys.executable, "-c", _WORK], capture_output=True, text=True, check=True)
    wall_ms, cpu_ms = (float(value) for value in done.stdout.split())
    return Sample(time.monotonic(), wall_ms, cpu_ms)


class HostProbe:
    """Runs `probe` every `every` seconds in a background thread while its `with` block
    runs, keeping every sample."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_forever, daemon=True)

    def __enter__(self) -> "HostProbe":
        self.samples.append(probe())
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
        while not self._stop.wait(self.every):
            self.samples.append(probe())

    def median(self, start: float, end: float) -> Sample:
        """The median wall and CPU times of the samples taken between two `time.monotonic()`
        readings (at `end`); with none there (a window shorter than the probe's period), the
        sample nearest `end`."""
        within = [s for s in self.samples if start <= s.at <= end]
        if not within:
            return min(self.samples, key=lambda s: abs(s.at - end))
        return Sample(
            end,
            statistics.median(s.wall_ms for s in within),
            statistics.median(s.cpu_ms for s in within),
        )
