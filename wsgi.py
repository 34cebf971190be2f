"""Entry point. `python wsgi.py` serves the app; `flask --app wsgi ...` runs commands.

The async mode is chosen here, once, and its monkey patching must run before anything else
is imported, so this module reads only the environment before it.
"""

import os
import warnings

from dotenv import load_dotenv

load_dotenv()
SERVING = __name__ == "__main__"
ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet") if SERVING else "threading"

if ASYNC_MODE == "eventlet":
    # Eventlet announces its bugfix-only status on import; ASYNC_MODE=gevent is the way off it.
    warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

from app import create_app  # noqa: E402 - after monkey patching, on purpose
from app.extensions import socketio  # noqa: E402

app = create_app({"ASYNC_MODE": ASYNC_MODE})

if SERVING:
    socketio.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5000")),
        log_output=False,
    )
