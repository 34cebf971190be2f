"""`python -m bench.baselines.naive` serves the naive API; `... naive worker` runs its worker."""

import os
import sys

import serving

WORKER = sys.argv[1:] == ["worker"]
# The worker runs its jobs in forked work horses, unpatched, as any RQ worker does.
ASYNC_MODE = "threading" if WORKER else os.environ.get("ASYNC_MODE", "eventlet")
if not WORKER:
    serving.monkey_patch(ASYNC_MODE)

from rq import Worker  # noqa: E402 - after monkey patching

from bench.baselines.naive.app import create_app  # noqa: E402


def work() -> None:
    """RQ's default worker on the default queue; each work horse is forked from this process
    and inherits its app context."""
    app = create_app(ASYNC_MODE)
    app.app_context().push()
    queue = app.extensions["rq"]
    Worker([queue], connection=queue.connection).work()


if __name__ == "__main__":
    if WORKER:
        work()
    else:
        app = create_app(ASYNC_MODE)
        serving.serve(app, ASYNC_MODE, int(os.environ["MAX_CONNECTIONS"]))
