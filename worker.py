"""Runs an RQ worker on the delivery queues, most urgent first, plus the periodic jobs: the
relay that queues deliveries whose job was lost, and retention. Serves its own Prometheus
metrics on WORKER_METRICS_ADDRESS. Needs REDIS_URL (without it, jobs run inside the web
process).

Usage: `python worker.py [QUEUE ...]` (default: critical high default low).

The worker does not fork per job (RQ's SimpleWorker: jobs run in this process, their
timeouts still enforced), and SIGTERM lets the job in hand finish before it stops.
"""

import sys

from flask import Flask
from prometheus_client import start_http_server
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from app import create_app, defaults
from app.jobs import periodic


class AppWorker(SimpleWorker):
    """A non-forking worker that runs each job in its own app context (its own session)."""

    app: Flask

    def execute_job(self, job: Job, queue: Queue) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)


def serve_metrics(address: str) -> None:
    """Serve this worker's Prometheus metrics on `host:port` (nothing when empty)."""
    if not address:
        return
    host, _, port = address.rpartition(":")
    try:
        start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104 - the operator's choice
    except (OSError, ValueError) as error:
        sys.exit(
            f"cannot serve worker metrics on WORKER_METRICS_ADDRESS={address!r}: {error}. "
            "Give each worker on one host its own port, or set it empty to turn them off."
        )


def main(queue_names: list[str]) -> None:
    """Work the named queues until SIGTERM or SIGINT."""
    # Jobs run in this thread, unpatched: the periodic jobs must be real threads beside them.
    app = create_app({"ASYNC_MODE": "threading"})
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        sys.exit("worker.py needs REDIS_URL; without it jobs run inside the web process")
    connection = Redis.from_url(redis_url)
    queues = [Queue(name, connection=connection) for name in queue_names or defaults.QUEUES]
    serve_metrics(app.config["WORKER_METRICS_ADDRESS"])
    periodic.start(app)
    worker = AppWorker(queues, connection=connection)
    worker.app = app
    # RQ logs three lines per job at INFO unless told the app's level.
    worker.work(with_scheduler=True, logging_level=app.config["LOG_LEVEL"].upper())


if __name__ == "__main__":
    main(sys.argv[1:])
