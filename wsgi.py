"""Entry point. `python wsgi.py` serves the app; `flask --app wsgi ...` runs commands.

The async mode is chosen here, once (ASYNC_MODE: eventlet or gevent), and its monkey
patching must run before anything else is imported, so this module reads only the
environment before it.
"""

import os

from dotenv import load_dotenv

import serving

load_dotenv()
SERVING = __name__ == "__main__"
ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet") if SERVING else "threading"
if SERVING:
    serving.monkey_patch(ASYNC_MODE)

from app import create_app  # noqa: E402 - after monkey patching, on purpose
from app.extensions import socketio  # noqa: E402
from app.jobs import periodic  # noqa: E402

app = create_app({"ASYNC_MODE": ASYNC_MODE})

if SERVING:
    if not app.config["REDIS_URL"]:
        # Embedded: no worker process, so this one runs the relay and retention itself.
        periodic.start(app)
    else:
        # From the first request, socket or not, a send's events are queued for the bus.
        socketio.server.manager.start_publishing()
    serving.serve(app, ASYNC_MODE, app.config["MAX_CONNECTIONS"])
