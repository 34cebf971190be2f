"""Entry point. `python wsgi.py` serves the app; `flask --app wsgi ...` runs commands.

The async mode is chosen here, once (ASYNC_MODE: eventlet, gevent or threading), and its
monkey patching must run before anything else is imported, so this module reads only the
environment before it.
"""

import os
import resource
import warnings

from dotenv import load_dotenv

load_dotenv()
SERVING = __name__ == "__main__"
ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet") if SERVING else "threading"
if SERVING and ASYNC_MODE not in {"eventlet", "gevent"}:
    raise SystemExit(f"ASYNC_MODE must be eventlet or gevent to serve, not {ASYNC_MODE!r}")

if ASYNC_MODE == "eventlet":
    # Eventlet announces its bugfix-only status on import; ASYNC_MODE=gevent is the way off it.
    warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    # Without this every query blocks the whole process, sockets included. (eventlet's
    # monkey_patch does it too by default; saying it here keeps both modes alike.)
    patch_psycopg()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from app import create_app  # noqa: E402 - after monkey patching, on purpose
from app.extensions import socketio  # noqa: E402
from app.jobs import periodic  # noqa: E402

app = create_app({"ASYNC_MODE": ASYNC_MODE})


def server_options(max_connections: int) -> dict[str, object]:
    """Options of the async server that let one process hold `max_connections` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + 1024
    if soft < wanted and (hard == resource.RLIM_INFINITY or soft < hard):
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    if ASYNC_MODE == "eventlet":
        return {"max_size": max_connections}
    from gevent.pool import Pool

    return {"spawn": Pool(max_connections)}


if SERVING:
    if not app.config["REDIS_URL"]:
        # Embedded: no worker process, so this one runs the relay and retention itself.
        periodic.start(app)
    socketio.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5000")),
        log_output=False,
        **server_options(app.config["MAX_CONNECTIONS"]),
    )
