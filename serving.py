"""How a web process serves: the async mode's monkey patching, which must run before any
other import, and the async server, set up to hold many sockets.

`wsgi.py` serves the product with it; the benchmark's baselines serve theirs with it, so
all are measured on the same server. Only the standard library is imported at the top,
since this runs before the patching.
"""

import gc
import os
import resource
import warnings
from typing import Any

ASYNC_MODES = ("eventlet", "gevent")
"""The modes a web process serves in (the tests' in-process apps use `threading`)."""


def monkey_patch(mode: str) -> None:
    """Patch the standard library for `mode`, psycopg2 included: without that every query
    blocks the whole process, sockets included."""
    if mode == "eventlet":
        # Eventlet announces its bugfix-only status on import; ASYNC_MODE=gevent is the way
        # off it.
        warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
        from psycogreen.eventlet import patch_psycopg

        # eventlet's monkey_patch does it too by default; saying it keeps both modes alike.
        patch_psycopg()
        from app.realtime import pings, unmasking, writes

        pings.install()
        unmasking.install()
        writes.install()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
        from app.realtime import gevent_websockets

        gevent_websockets.install()
    else:
        raise SystemExit(f"ASYNC_MODE must be one of {', '.join(ASYNC_MODES)}, not {mode!r}")


def _raise_open_files_limit(max_connections: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + 1024
    if soft < wanted and (hard == resource.RLIM_INFINITY or soft < hard):
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


LISTEN_BACKLOG = 2048
"""Connections the kernel queues before the server accepts them (eventlet's default is 50: a
reconnect storm overflowed it and clients waited seconds on SYN retries)."""


GC_MIDDLE_COLLECTIONS_PER_FULL = 1000
"""Collections of the middle generation before a full one may run (Python's default is 10).
A full collection walks every socket's objects and stops the process meanwhile (0.3-0.6 s
at 5,000 sockets, 0.5 s at 8,000). At the default, connecting thousands of sockets started
one every few hundred connects, a fifth of their CPU; at 100, the objects a fan-out to
10,000 keeps while its events wait to be written started one every other send or so (4 in
a `fanout` scenario's product run, none at 1,000). Little waits for them: a closed
connection leaves no garbage cycle (`eventlet_protocol`), a request only werkzeug's few."""


READ_BUFFER_BYTES = 1024
"""What eventlet's HTTP handler asks of the socket per read (Python's default is 8 KiB). Its
buffer lives as long as the connection, a WebSocket's included, and the upgrade request is
read into it: the pages it touched stayed resident for the socket's whole life (1 KiB
buffers took idle sockets from 46.7 to 42.9 KiB each). A request head larger than this
takes a few more reads; bodies are read past the buffer anyway."""


def eventlet_protocol() -> type:
    """eventlet's HTTP handler, reading READ_BUFFER_BYTES at a time and leaving no garbage
    cycle behind when its connection closes."""
    import eventlet.wsgi

    class Protocol(eventlet.wsgi.HttpProtocol):
        rbufsize = READ_BUFFER_BYTES

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                # The last request's environ holds a closure over the handler (its
                # `eventlet.set_idle`): a cycle that kept every closed connection's handler,
                # socket, buffers and environ (32 objects) until a full collection, which
                # then found 32,000 of them after 1,000 reconnects.
                self.environ = None

    return Protocol


def serve(app: Any, mode: str, max_connections: int) -> None:
    """Serve the WSGI `app` (Flask-SocketIO has wrapped it) on HOST:PORT, 127.0.0.1:5000 by
    default, holding up to `max_connections` connections."""
    _raise_open_files_limit(max_connections)
    # What start-up made (modules, the app, SQLAlchemy's and pydantic's caches) lives as long
    # as the process: out of the collector's sight, a full collection stops walking it all
    # (it cost a 2,000-recipient send a fifth of its time).
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_MIDDLE_COLLECTIONS_PER_FULL)
    address = (os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5000")))
    if mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        listener = eventlet.listen(address, backlog=LISTEN_BACKLOG)
        eventlet.wsgi.server(
            listener, app, log_output=False, max_size=max_connections, protocol=eventlet_protocol()
        )
        return
    import socket

    from gevent.pool import Pool
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class NoDelayHandler(WSGIHandler):
        """gevent writes a response's headers and body separately: with Nagle on, the
        body waits for the client's delayed ACK, about 40 ms per keep-alive response."""

        def handle(self) -> None:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

    WSGIServer(
        address,
        app,
        backlog=LISTEN_BACKLOG,
        spawn=Pool(max_connections),
        handler_class=NoDelayHandler,
        log=None,
    ).serve_forever()
