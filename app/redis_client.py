"""The app's one Redis client (None in the embedded mode, which runs without Redis)."""

from flask import Flask, current_app
from redis import Redis


def redis_client() -> Redis | None:
    """The current app's Redis client, or None when REDIS_URL is not set."""
    return current_app.extensions["redis"]


def init_app(app: Flask) -> None:
    """Connect lazily: redis-py opens its first connection on the first command."""
    url = app.config["REDIS_URL"]
    app.extensions["redis"] = Redis.from_url(url) if url else None
