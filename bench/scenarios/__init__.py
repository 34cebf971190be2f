"""Benchmark scenarios: each module has SIZES and run(bench) -> ScenarioResult."""
