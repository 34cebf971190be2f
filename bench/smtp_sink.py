"""An SMTP server that accepts every message and only counts it: the mail server of the
workers benchmark, run as its own process so that the benchmark process, which polls and
times, never shares an event loop or a core's time slice with the SMTP sessions.

    .venv/bin/python -m bench.smtp_sink PORT

Prints `ready` once it listens on 127.0.0.1:PORT, and the number of messages it accepted
when it is stopped (SIGTERM or SIGINT).
"""

import signal
import sys
import threading

from aiosmtpd.controller import Controller


class CountingHandler:
    """Takes each message with `250 OK` and counts it; the content is dropped."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        self.accepted += 1
        return "250 OK"


def serve(port: int) -> int:
    """Accept messages on 127.0.0.1:`port` until SIGTERM or SIGINT; how many were taken."""
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    controller.start()
    print("ready", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()
    return handler.accepted


if __name__ == "__main__":
    print(serve(int(sys.argv[1])), flush=True)
