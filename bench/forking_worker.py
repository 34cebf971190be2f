"""The naive reference of the workers benchmark: RQ's default `Worker`, which forks a work
horse for every job, running the product's own job functions in an app context.

    .venv/bin/python -m bench.forking_worker [QUEUE ...]

It is what `rq worker` would be for this app (the job functions need an app context, so a
bare `rq worker` cannot run them at all); `python worker.py` is the product's worker. Same
environment as `python worker.py` (REDIS_URL, DATABASE_URL, SECRET_KEY) and the same queues
by default; no relay, no metrics.
"""

import sys

from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job

from app import create_app, defaults
from app.extensions import db


class ForkingAppWorker(Worker):
    """RQ's forking worker; each work horse runs its one job in an app context."""

    app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with self.app.app_context():
            # A forked horse must not reuse a pooled connection of its parent (the parent
            # holds none, but this is what makes forking safe with SQLAlchemy).
            db.engine.dispose(close=False)
            return super().perform_job(job, queue, execution)


def main(queue_names: list[str]) -> None:
    """Work the named queues (default: the delivery queues) until SIGTERM."""
    app = create_app({"ASYNC_MODE": "threading"})
    connection = Redis.from_url(app.config["REDIS_URL"])
    queues = [Queue(name, connection=connection) for name in queue_names or defaults.QUEUES]
    worker = ForkingAppWorker(queues, connection=connection)
    worker.app = app
    worker.work()


if __name__ == "__main__":
    main(sys.argv[1:])
