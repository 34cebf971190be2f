"""The benchmark suite: one command starts the real stack for each scenario, loads it from
separate processes, prints a table (each figure beside its target) and writes
bench/results/<date>-<host>.json and a PNG of the latency distributions.

    .venv/bin/python -m bench            # the full run (meant for 15 minutes; 31 on 2026-12-02)
    .venv/bin/python -m bench --quick    # meant for 2 minutes; 2 to 4 here
    .venv/bin/python -m bench --only ingest,workers

`--size tiny` is what the test suite runs, so the suite cannot rot; its figures mean nothing.
"""

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench.harness import POSTGRES_ADMIN_URL, REDIS_URL, Bench
from bench.report import (
    RESULTS,
    ROOT,
    ScenarioResult,
    environment,
    print_table,
    write_chart,
    write_json,
)
from serving import ASYNC_MODES

SCENARIOS = ("ingest", "end_to_end", "fanout", "sockets", "inbox", "workers")
"""Scenario modules under bench/scenarios, in the order they run; each has
`run(bench: Bench) -> ScenarioResult` and `SIZES` with the tiny, quick and full settings."""


def run(
    size: str, only: list[str], async_mode: str, directory: Path = RESULTS
) -> tuple[Path, Path | None]:
    """Run the chosen scenarios; the JSON and PNG written into `directory`."""
    results: list[ScenarioResult] = []
    for name in only:
        module = importlib.import_module(f"bench.scenarios.{name}")
        bench = Bench(size=size, settings=module.SIZES[size], async_mode=async_mode)
        started = time.monotonic()
        print(f"== {name} ({size}) ...", file=sys.stderr, flush=True)
        try:
            result = module.run(bench)
        except Exception as error:
            # A scenario that breaks (the product timing out under its load, say) is a result
            # too: say so in the table and go on with the others.
            traceback.print_exc()
            result = ScenarioResult(name, details={"error": f"{type(error).__name__}: {error}"})
            result.add("scenario", "completed", 0, "runs", "= 1", False)
        result.details["seconds"] = round(time.monotonic() - started, 1)
        results.append(result)
    print_table(results)
    # A run of some scenarios is named for them, so it cannot overwrite the day's whole run.
    if only == list(SCENARIOS):
        suffix = "" if size == "full" else f"-{size}"
    else:
        suffix = f"-{'-'.join(only)}-{size}"
    settings = {"size": size, "scenarios": only, "async_mode": async_mode, "suffix": suffix}
    out = write_json(results, settings, environment(POSTGRES_ADMIN_URL, REDIS_URL), directory)
    chart = write_chart(results, out.with_suffix(".png"))
    return out, chart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_const", const="quick", dest="size")
    parser.add_argument("--size", choices=["tiny", "quick", "full"])
    parser.set_defaults(size="full")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--async-mode", choices=ASYNC_MODES, default=ASYNC_MODES[0])
    args = parser.parse_args()
    only = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    out, chart = run(args.size, only, args.async_mode)
    print(f"wrote {out.relative_to(ROOT)}" + (f" and {chart.relative_to(ROOT)}" if chart else ""))


if __name__ == "__main__":
    main()
