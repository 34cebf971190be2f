"""The soak's verdicts, from its windows: drift as measured and against the host probe."""

from bench.soak import _result


def _windows(p99s, probes, cpu_ms=None):
    cpu_ms = cpu_ms or [2.0] * len(p99s)
    return [
        {
            "at_seconds": 60.0 * (index + 1),
            "rss_bytes": 300 * 2**20,
            "p99_ms": p99,
            "host_probe_wall_ms": None if probe is None else 20.0,
            "host_probe_cpu_ms": probe,
            "cpu_ms_per_send": cpu,
        }
        for index, (p99, probe, cpu) in enumerate(zip(p99s, probes, cpu_ms, strict=True))
    ]


def _rows(windows):
    result = _result(windows, 0, 400.0, 0, 0, 0, 0)
    return {row.metric: row for row in result.rows}


def test_a_p99_that_rises_with_the_host_probe_has_not_drifted_against_the_host():
    rows = _rows(_windows([40, 40, 44, 44, 60, 60], [10, 10, 11, 11, 15, 15]))
    assert rows["p99 drift"].value == 50.0
    assert rows["p99 drift"].met is False
    assert rows["host probe drift (CPU time)"].value == 50.0
    assert rows["p99 drift against the host"].value == 0.0
    # Reported beside the judged drift, not judged until the probe is shown to follow a host.
    assert rows["p99 drift against the host"].met is None
    assert rows["CPU per send drift"].value == 0.0
    assert rows["windows with a host probe"].value == 6


def test_a_p99_that_rises_on_a_steady_host_has_drifted_against_it_too():
    cpu_ms = [2.0, 2.0, 2.2, 2.2, 2.5, 2.5]
    rows = _rows(_windows([40, 40, 50, 50, 60, 60], [10, 10, 10, 10, 10, 10], cpu_ms))
    assert rows["p99 drift"].value == 50.0
    assert rows["host probe drift (CPU time)"].value == 0.0
    assert rows["p99 drift against the host"].value == 50.0
    assert rows["CPU per send drift"].value == 25.0


def test_a_host_that_sped_up_does_not_hide_a_server_that_slowed():
    rows = _rows(_windows([40, 40, 40, 40, 40, 40], [10, 10, 8, 8, 5, 5]))
    assert rows["p99 drift"].value == 0.0
    assert rows["p99 drift against the host"].value == 100.0


def test_windows_without_a_probe_are_left_out_of_the_drift_against_the_host():
    rows = _rows(_windows([40, 40, 99, 99, 60, 60], [10, None, None, 12, 15, 15]))
    assert rows["windows with a host probe"].value == 4
    assert rows["host probe drift (CPU time)"].value == 50.0
    assert rows["p99 drift against the host"].value == 0.0


def test_a_run_without_any_probe_still_gives_its_verdicts():
    rows = _rows(_windows([40, 40, 44, 44, 60, 60], [None] * 6))
    assert rows["windows with a host probe"].value == 0
    assert "p99 drift against the host" not in rows
    assert rows["p99 drift"].value == 50.0
