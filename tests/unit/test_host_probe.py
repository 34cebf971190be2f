"""The host probe that soak windows are measured against: it times real work in a process of
its own, and a window takes the median of the samples taken during it."""

import subprocess
import time

from bench import host_probe
from bench.host_probe import HostProbe, Sample, probe


def test_a_probe_times_its_work_in_wall_and_cpu_milliseconds():
    before = time.monotonic()
    sample = probe()
    assert before < sample.at <= time.monotonic()
    assert sample.wall_ms > 0
    assert 0 < sample.cpu_ms <= sample.wall_ms * 1.5


def test_the_probe_samples_in_the_background_until_its_block_ends():
    deadline = time.monotonic() + 60
    with HostProbe(every=0.01) as host:
        while len(host.samples) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(host.samples) >= 3
    assert all(sample.cpu_ms > 0 for sample in host.samples)


def test_a_failing_probe_leaves_a_gap_and_sampling_goes_on(monkeypatch, capsys):
    outcomes = iter([subprocess.TimeoutExpired("python", 30), Sample(1.0, 9.0, 8.0)])

    def probe_once():
        outcome = next(outcomes, Sample(2.0, 9.0, 8.0))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(host_probe, "probe", probe_once)
    with HostProbe(every=0.01) as host:
        while len(host.samples) < 2:
            time.sleep(0.01)
    assert host.samples[0] == Sample(1.0, 9.0, 8.0)
    assert "host probe failed: TimeoutExpired" in capsys.readouterr().err


def test_a_window_takes_the_median_of_its_own_samples_and_none_without_one():
    host = HostProbe(every=10)
    host.samples = [Sample(10.0, 4.0, 3.0), Sample(11.0, 9.0, 8.0), Sample(12.0, 5.0, 4.0)]
    assert host.median(9.5, 12.5) == Sample(12.5, 5.0, 4.0)
    assert host.median(10.5, 11.5) == Sample(11.5, 9.0, 8.0)
    assert host.median(12.2, 12.4) is None
