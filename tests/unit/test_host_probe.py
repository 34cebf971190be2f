"""The host probe that soak windows are measured against: it times real work in a process of
its own, and a window takes the median of the samples taken during it."""

import time

from bench.host_probe import HostProbe, Sample, probe


def test_a_probe_times_its_work_in_wall_and_cpu_milliseconds():
    before = time.monotonic()
    sample = probe()
    assert before < sample.at <= time.monotonic()
    assert sample.wall_ms > 0
    assert 0 < sample.cpu_ms <= sample.wall_ms * 1.5


def test_the_probe_samples_until_its_block_ends_and_a_window_takes_their_median():
    with HostProbe(every=0.01) as host:
        while len(host.samples) < 4:
            time.sleep(0.05)
    count = len(host.samples)
    time.sleep(0.3)
    assert len(host.samples) == count, "sampling went on after the block"
    times = [sample.at for sample in host.samples]
    assert times == sorted(times)

    host.samples = [Sample(10.0, 4.0, 3.0), Sample(11.0, 9.0, 8.0), Sample(12.0, 5.0, 4.0)]
    assert host.median(9.5, 12.5) == Sample(12.5, 5.0, 4.0)
    assert host.median(10.5, 11.5) == Sample(11.5, 9.0, 8.0)
    # A window with no sample of its own takes the one nearest its end.
    assert host.median(12.2, 12.4) == Sample(12.0, 5.0, 4.0)
    assert host.median(8.0, 9.0) == Sample(10.0, 4.0, 3.0)
