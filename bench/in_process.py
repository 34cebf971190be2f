"""The product's app built inside the benchmark process, from a stack's environment, for what
is timed by calling product code directly (the SQL the inbox service issues, the enqueue
path, one delivery job) rather than through a process of the stack."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from app import create_app


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """`env` as this process's environment for the duration, then the old one back."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def app_for(env: dict[str, str]) -> Flask:
    """The app as the stack's `python worker.py` builds it: the same environment, so the same
    database, Redis, backends and log level."""
    # The settings are read from the environment when the app is created, and only then.
    with _environment(env):
        return create_app({"ASYNC_MODE": "threading"})
