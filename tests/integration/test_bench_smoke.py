"""The benchmark suite runs at its tiny size, so it cannot rot. Nothing here looks at
timings: only that every scenario ran, counted what it should and lost nothing."""

import json

import pytest

from bench import soak
from bench.__main__ import SCENARIOS, run

pytestmark = pytest.mark.timeout(900)


def test_every_scenario_runs_and_writes_its_table_json_and_chart(tmp_path):
    out, chart = run("tiny", list(SCENARIOS), "eventlet", tmp_path)
    record = json.loads(out.read_text())
    assert [result["scenario"] for result in record["results"]] == list(SCENARIOS)
    assert record["settings"]["size"] == "tiny"
    assert record["versions"]["postgres"]
    assert record["machine"]["cores"]
    for result in record["results"]:
        assert "error" not in result["details"], result
        assert result["rows"], result["scenario"]
        for row in result["rows"]:
            # Losing events or rows is a failure at any size; speed targets are not judged.
            if any(word in row["metric"] for word in ("lost", "missing", "without")):
                assert row["value"] == 0, (result["scenario"], row)
    ingest = next(r for r in record["results"] if r["scenario"] == "ingest")
    # Its verdicts are medians over rounds that took turns, each round shown.
    rounds = {row["case"]: row["metric"] for row in ingest["rows"]}
    assert rounds["product / bare"] == rounds["product / naive"] == "median ratio, 2 rounds"
    assert {"product / bare, round 2", "product @50% sat, run 2"} <= set(rounds)
    end_to_end = next(r for r in record["results"] if r["scenario"] == "end_to_end")
    # Scenario 8: the product in the other async mode too, on fresh web processes (its lost
    # events are checked with the rest above).
    assert "product gevent @100/s" in {row["case"] for row in end_to_end["rows"]}
    assert end_to_end["details"]["product gevent"]["rates"]["100"]["received"] > 0
    assert chart is not None
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_the_soak_runs_churns_and_loses_nothing():
    result = soak.run(minutes=0.2, window=4, rate=40, clients=40, churn=0.25, warmup_windows=1)
    windows = result.details["windows"]
    assert len(windows) >= 3
    assert all(w["host_probe_cpu_ms"] > 0 for w in windows), "a window without a host probe"
    rows = {(row.case, row.metric): row.value for row in result.rows}
    assert rows[("whole run", "notifications not received")] == 0
    assert rows[("whole run", "201s without a row")] == 0
    assert rows[("whole run", "non-2xx answers")] == 0
