"""The benchmarks run at a tiny size, so they cannot rot. Nothing here looks at timings."""

import pytest

from bench import email_throughput, realtime_latency

pytestmark = pytest.mark.timeout(300)


def test_realtime_latency_benchmark_runs():
    results = realtime_latency.run(sends=5, async_mode="eventlet")
    assert results["sends"] == 5
    assert results["lost"] == 0
    assert set(results["post_to_event_ms"]) == {"p50", "p90", "p99", "max"}


def test_email_throughput_benchmark_runs():
    results = email_throughput.run(emails=5)
    assert results["delivered"] == 5
    assert results["emails_per_second_per_worker"] > 0
