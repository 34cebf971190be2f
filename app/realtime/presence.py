"""How many sockets are connected: in this process, and across every web process.

Each web process keeps its own count and, with Redis, publishes it under a key of its own
that expires unless refreshed, so a process that died stops counting within a few intervals.
"""

import os
import socket

from redis import Redis

from app import metrics
from app.redis_client import redis_client

KEY_PREFIX = "notify:sockets:"
_PROCESS_KEY = f"{KEY_PREFIX}{socket.gethostname()}:{os.getpid()}"
_CONNECTED: set[str] = set()


def connected(sid: str) -> None:
    """Count a socket of this process."""
    _CONNECTED.add(sid)
    metrics.CONNECTED_SOCKETS.set(len(_CONNECTED))


def disconnected(sid: str) -> None:
    """Stop counting a socket of this process."""
    _CONNECTED.discard(sid)
    metrics.CONNECTED_SOCKETS.set(len(_CONNECTED))


def local_count() -> int:
    """Sockets connected to this process."""
    return len(_CONNECTED)


def publish(interval_seconds: float) -> None:
    """Share this process's count for the next few intervals (a no-op without Redis)."""
    client = redis_client()
    if client is not None:
        client.set(_PROCESS_KEY, local_count(), ex=max(1, round(3 * interval_seconds)))


def _cluster_count(client: Redis) -> int:
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
    return sum(int(value) for value in client.mget(keys) if value is not None) if keys else 0


def connected_sockets() -> int:
    """Sockets connected to every web process (this one's count when there is no Redis)."""
    client = redis_client()
    return local_count() if client is None else _cluster_count(client)
