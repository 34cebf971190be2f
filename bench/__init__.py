"""Benchmarks. Each module is runnable: `python -m bench.<name>`; results go to bench/results/."""
