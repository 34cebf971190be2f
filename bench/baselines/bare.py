"""The bare baseline: a Flask app whose POST /notifications parses the JSON body and answers
201, with nothing behind it, served as wsgi.py serves the product (ASYNC_MODE patching,
the same server, `serving.serve`, and Flask-SocketIO's middleware). The product's ingest is measured
as a fraction of it.

    ASYNC_MODE=eventlet PORT=5001 MAX_CONNECTIONS=16384 python -m bench.baselines.bare
"""

import os

import serving

ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet")
serving.monkey_patch(ASYNC_MODE)

from flask import Flask, Response, jsonify, request  # noqa: E402 - after monkey patching
from flask_socketio import SocketIO  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode=ASYNC_MODE)


@app.post("/notifications")
def send() -> tuple[Response, int]:
    """Parse the body, as the product must before anything else; store nothing."""
    body = request.get_json()
    return jsonify(notifications=[{"id": "0", "user_id": body["to"]}]), 201


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """What the launcher waits for."""
    return {"status": "ok"}


if __name__ == "__main__":
    serving.serve(app, ASYNC_MODE, int(os.environ["MAX_CONNECTIONS"]))
