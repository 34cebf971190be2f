"""What a benchmark run produces: rows for the table (each figure beside its target), latency
distributions for the chart, and one JSON record with the machine, versions and settings."""

import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PACKAGES = (
    "Flask",
    "Flask-SocketIO",
    "python-socketio",
    "python-engineio",
    "eventlet",
    "gevent",
    "SQLAlchemy",
    "psycopg2-binary",
    "rq",
    "redis",
    "Flask-Limiter",
)


@dataclass
class Row:
    """One figure of the table. `target` says what it should be ("<= 25 ms", ">= 3x naive");
    `met` is None when the figure has no target."""

    case: str
    metric: str
    value: float
    unit: str
    target: str | None = None
    met: bool | None = None


@dataclass
class ScenarioResult:
    """One scenario's figures, its latency samples (milliseconds) by label, and anything else
    worth keeping in the JSON."""

    scenario: str
    rows: list[Row] = field(default_factory=list)
    distributions: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        case: str,
        metric: str,
        value: float,
        unit: str,
        target: str | None = None,
        met: bool | None = None,
    ) -> None:
        self.rows.append(Row(case, metric, round(value, 3), unit, target, met))


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50, p99, p99.9 and max of samples in milliseconds (zeros for none)."""
    if not samples_ms:
        return {"p50": 0.0, "p99": 0.0, "p99.9": 0.0, "max": 0.0, "count": 0}
    ordered = sorted(samples_ms)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 3)

    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": round(ordered[-1], 3),
        "count": len(ordered),
    }


def _command_version(*command: str) -> str | None:
    if not shutil.which(command[0]):
        return None
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    return (
        (output.stdout or output.stderr).strip().splitlines()[0] if output.returncode == 0 else None
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def environment(postgres_url: str, redis_url: str) -> dict[str, Any]:
    """The machine and every version a reader needs to compare two runs."""
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres_version = cursor.fetchone()[0]
    connection.close()
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "machine": {
            "host": platform.node(),
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "kernel": platform.release(),
        },
        "versions": {
            "python": platform.python_version(),
            "postgres": postgres_version,
            "redis": redis.Redis.from_url(redis_url).info("server")["redis_version"],
            "node": _command_version("node", "--version"),
            "packages": packages,
        },
        "git_sha": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def print_table(results: list[ScenarioResult]) -> None:
    """The figures, each with its target and whether it was met."""
    header = f"{'scenario':<12}{'case':<34}{'metric':<26}{'value':>12} {'unit':<9}{'target':<22}met"
    print(header)
    print("-" * len(header))
    for result in results:
        for row in result.rows:
            met = {True: "yes", False: "NO", None: ""}[row.met]
            print(
                f"{result.scenario:<12}{row.case[:33]:<34}{row.metric[:25]:<26}"
                f"{row.value:>12,.3f} {row.unit:<9}{(row.target or ''):<22}{met}"
            )


def write_json(
    results: list[ScenarioResult],
    settings: dict[str, Any],
    context: dict[str, Any],
    directory: Path = RESULTS,
) -> Path:
    """<directory>/<date>-<host>[-size].json: the machine, versions, settings and every
    figure."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    record = {
        "date": now.isoformat(),
        **context,
        "settings": settings,
        "results": [
            {
                "scenario": result.scenario,
                "rows": [asdict(row) for row in result.rows],
                "latency_ms": {
                    label: {key: value for key, value in percentiles(samples).items()}
                    for label, samples in result.distributions.items()
                },
                "details": result.details,
            }
            for result in results
        ],
    }
    out = directory / f"{now:%Y-%m-%d}-{platform.node()}{settings.get('suffix', '')}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    return out


def write_chart(results: list[ScenarioResult], out: Path) -> Path | None:
    """A PNG of every latency distribution as a CDF, one panel per scenario (log time axis,
    so the tail shows). None when no scenario measured latencies."""
    panels = [result for result in results if result.distributions]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False, constrained_layout=True
    )
    for axis, result in zip(axes[:, 0], panels, strict=True):
        for label, samples in result.distributions.items():
            if not samples:
                continue
            ordered = sorted(samples)
            fractions = [(index + 1) / len(ordered) for index in range(len(ordered))]
            axis.plot(
                ordered, fractions, label=f"{label} (p99 {percentiles(samples)['p99']:.1f} ms)"
            )
        axis.set_xscale("log")
        axis.set_xlabel("latency (ms, log scale)")
        axis.set_ylabel("fraction ≤ x")
        axis.set_title(result.scenario)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small", loc="lower right")
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
