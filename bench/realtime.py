"""What the real-time scenarios (end_to_end, fanout, sockets) share: recipients with user
tokens, the client list for the product and for the peer, and the CPU time and resident
memory of server processes read from /proc."""

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bench.harness import SECRET, Stack

MAX_RECIPIENTS = 10_000
"""Most recipients one send takes (the product's limit, app/defaults.py)."""
TOKEN_TTL_SECONDS = 3_600
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def user_ids(count: int, prefix: str = "u") -> list[str]:
    """`count` recipient ids: u0, u1, ..."""
    return [f"{prefix}{i}" for i in range(count)]


def create_users(stack: Stack, users: Sequence[str]) -> None:
    """Create the users through the API: one send of a welcome notification per
    MAX_RECIPIENTS users (a send creates unknown recipients), so 20,000 users take two
    requests instead of 20,000 PUTs."""
    for start in range(0, len(users), MAX_RECIPIENTS):
        chunk = list(users[start : start + MAX_RECIPIENTS])
        stack.call("POST", "/notifications", {"to": chunk, "title": "welcome"}, timeout=120)


def mint_tokens(users: Sequence[str], ttl_seconds: int = TOKEN_TTL_SECONDS) -> list[str]:
    """A user token for each user, minted here with the stack's secret, as a producer's
    backend may (the same function POST /users/{id}/tokens calls; 20,000 requests would
    measure the API instead). Call after the users exist: a token older than its user is
    refused. A socket is closed when its token runs out, and a reconnect with it refused."""
    from app.services.credentials import mint_user_token

    return [mint_user_token(SECRET, user, ttl_seconds).token for user in users]


def product_clients(urls: Sequence[str], tokens: Sequence[str]) -> list[dict[str, str]]:
    """Client i connects to web process i mod N (of `urls`) with token i."""
    return [{"url": urls[i % len(urls)], "token": t} for i, t in enumerate(tokens)]


def peer_clients(urls: Sequence[str], users: Sequence[str]) -> list[dict[str, str]]:
    """Client i connects to peer process i mod N; the peer's token is the user id."""
    return [{"url": urls[i % len(urls)], "token": user} for i, user in enumerate(users)]


def cpu_seconds(processes: Sequence[subprocess.Popen]) -> float:
    """User plus system CPU time the processes have used so far (all their threads)."""
    total = 0
    for running in processes:
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = Path(f"/proc/{running.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS_PER_SECOND


def rss_bytes(processes: Sequence[subprocess.Popen]) -> int:
    """Resident memory of the processes now (VmRSS), summed."""
    total = 0
    for running in processes:
        for line in Path(f"/proc/{running.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def wait_idle(
    processes: Sequence[subprocess.Popen], below: float = 0.05, timeout: float = 30
) -> float:
    """Wait until the processes use less than `below` of a core over a quarter of a second
    (a server still working off an earlier overload would otherwise be measured with the
    next load), at most `timeout` seconds; the seconds waited."""
    started = time.monotonic()
    window = 0.25
    while time.monotonic() - started < timeout:
        before = cpu_seconds(processes)
        time.sleep(window)
        if cpu_seconds(processes) - before < below * window:
            break
    return time.monotonic() - started
