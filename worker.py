"""Runs an RQ worker on the delivery queues, most urgent first, plus the periodic jobs: the
relay that queues deliveries whose job was lost, and retention. Serves its own Prometheus
metrics on WORKER_METRICS_ADDRESS. Needs REDIS_URL (without it, jobs run inside the web
process).

Usage: `python worker.py [QUEUE ...]` (default: critical high default low).

The worker does not fork per job (RQ's SimpleWorker: jobs run in this process, their
timeouts still enforced), nor for RQ's scheduler, which runs as a thread of it; SIGTERM lets
the job in hand finish before it stops.
"""

import sys
import threading

from flask import Flask
from prometheus_client import start_http_server
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler, run

from app import create_app, defaults
from app.jobs import periodic


class SchedulerThread(RQScheduler):
    """RQ's scheduler (it queues retries when their time comes) as a thread of the worker.
    RQ forks it, but this process has threads by then (the periodic jobs, RQ's own pub/sub
    listener), and a child forked while one of them held a lock inherits it held for good:
    one hung in its first pass on the import lock of `_strptime`, which another thread was
    importing, and retries then waited a minute, until its lock expired and the relay took
    them. The thread holds and heartbeats the same locks, and the worker's maintenance starts
    it again if it dies."""

    def start(self) -> threading.Thread:
        self._status = self.Status.STARTED
        self._process = threading.Thread(target=run, args=(self,), name="Scheduler", daemon=True)
        self._process.start()
        return self._process

    def _install_signal_handlers(self) -> None:
        """None: only the main thread may set them; the worker stops this thread."""


class AppWorker(SimpleWorker):
    """A non-forking worker that runs each job in its own app context (its own session)."""

    app: Flask

    def execute_job(self, job: Job, queue: Queue) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)

    def stop_scheduler(self) -> None:
        """Ask the scheduler thread to stop, and give it a pass to release its locks. Called
        from the signal handler too, so the wait is bounded: the thread may need a lock the
        interrupted main thread holds (a log handler's, say) until the handler returns."""
        scheduler = self.scheduler
        if scheduler is None or scheduler._process is None:
            return
        scheduler.request_stop()
        scheduler._process.join(timeout=2 * scheduler.interval)


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
    # RQ logs three lines per job at INFO unless told the app's level.
    logging_level = app.config["LOG_LEVEL"].upper()
    worker = AppWorker(queues, connection=connection)
    worker.app = app
    # Set here rather than by `work(with_scheduler=True)`, which would fork RQ's own.
    worker.scheduler = SchedulerThread(queues, connection=connection, logging_level=logging_level)
    worker.scheduler.acquire_locks(auto_start=True)
    worker.work(logging_level=logging_level)


if __name__ == "__main__":
    main(sys.argv[1:])
