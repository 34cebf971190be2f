"""Servers as processes: N of one command on free ports, started together and waited for
(`/healthz`), stopped on exit. Used for the baselines and for extra product processes."""

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from app import defaults
from bench.harness import ROOT, Stack, free_port, process
from serving import ASYNC_MODES

START_TIMEOUT_SECONDS = 60
"""How long a server may take to answer its first /healthz."""


@contextmanager
def servers(
    args: list[str], env: dict[str, str], count: int
) -> Iterator[tuple[list[str], list[subprocess.Popen]]]:
    """`count` processes of `args`, each on its own PORT; yields their base URLs and
    processes once every one answers /healthz."""
    env = {"MAX_CONNECTIONS": str(defaults.MAX_CONNECTIONS)} | env
    with ExitStack() as exits:
        ports = [free_port() for _ in range(count)]
        running = [exits.enter_context(process(args, env | {"PORT": str(p)})) for p in ports]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for url, server in zip(urls, running, strict=True):
            while not _answers(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(args)} did not start (exit {server.poll()})")
                time.sleep(0.05)
        yield urls, running


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def bare(env: dict[str, str], count: int) -> Iterator[tuple[list[str], list[subprocess.Popen]]]:
    """`count` bare baseline processes (`bench.baselines.bare`)."""
    with servers([sys.executable, "-m", "bench.baselines.bare"], env, count) as started:
        yield started


@contextmanager
def naive(
    env: dict[str, str], count: int, workers: int = 0
) -> Iterator[tuple[list[str], list[subprocess.Popen]]]:
    """`count` naive web processes (`bench.baselines.naive`) and `workers` naive RQ workers
    on the stack's database and Redis (`env` from `bench.stack`)."""
    command = [sys.executable, "-m", "bench.baselines.naive"]
    with ExitStack() as exits:
        for _ in range(workers):
            exits.enter_context(process([*command, "worker"], env))
        yield exits.enter_context(servers(command, env, count))


@contextmanager
def product(env: dict[str, str], count: int) -> Iterator[tuple[list[str], list[subprocess.Popen]]]:
    """`count` more `python wsgi.py` processes on a stack's environment (say, in another
    ASYNC_MODE), started together."""
    with servers([sys.executable, str(ROOT / "wsgi.py")], env, count) as started:
        yield started


def other_modes(
    stack: Stack, first_mode: str, count: int
) -> Iterator[tuple[str, list[str], list[subprocess.Popen]]]:
    """For each async mode but `first_mode`: `count` fresh product processes on the stack's
    database and Redis, as (mode, their URLs, the processes), stopped before the next mode's
    start. The stack's own web processes are stopped first: they would decode every emit of
    the new ones, on the same cores. Iterate it inside `contextlib.closing`, so that a
    failure stops the running mode's processes at once, before the stack's database goes."""
    for web in stack.web_processes:
        web.terminate()
        web.wait(timeout=30)
    for mode in ASYNC_MODES:
        if mode != first_mode:
            with product(stack.env | {"ASYNC_MODE": mode}, count) as (urls, running):
                yield mode, urls, running
