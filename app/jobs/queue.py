"""Where delivery jobs run: RQ queues on Redis, or, with no REDIS_URL, background tasks of
this very process. Both take the same job function and the same job ids."""

import logging
import threading
from datetime import timedelta
from typing import Protocol

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from app import defaults
from app.extensions import socketio

log = logging.getLogger(__name__)
DELIVER = "app.jobs.deliveries.deliver"
QUEUE_OF_PRIORITY = {"critical": "critical", "high": "high", "normal": "default", "low": "low"}
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def delivery_job_id(delivery_id: int, attempt: int) -> str:
    """One job id per try of one delivery, so a try is never queued twice."""
    return f"delivery-{delivery_id}-{attempt}"


class JobQueue(Protocol):
    """Runs `deliver(delivery_id)` for a given try, now or after a delay."""

    def enqueue_delivery(
        self, delivery_id: int, attempt: int, priority: str, delay_seconds: float = 0
    ) -> bool:
        """Queue that try unless it already waits; True when it was queued now."""
        ...


class RedisJobQueue:
    """RQ queues by priority on Redis; workers run the jobs (`python worker.py`)."""

    def __init__(self, redis_url: str, job_timeout: int) -> None:
        self.connection = Redis.from_url(redis_url)
        self.job_timeout = job_timeout
        self.queues = {name: Queue(name, connection=self.connection) for name in defaults.QUEUES}

    def enqueue_delivery(
        self, delivery_id: int, attempt: int, priority: str, delay_seconds: float = 0
    ) -> bool:
        job_id = delivery_job_id(delivery_id, attempt)
        try:
            self._enqueue(job_id, delivery_id, priority, delay_seconds)
        except DuplicateJobError:
            try:
                job = Job.fetch(job_id, connection=self.connection)
            except NoSuchJobError:
                job = None
            if job is not None and job.get_status() in WAITING:
                return False
            # A try that ended without sending (its worker died): start it afresh.
            if job is not None:
                job.delete()
            self._enqueue(job_id, delivery_id, priority, delay_seconds)
        return True

    def _enqueue(self, job_id: str, delivery_id: int, priority: str, delay: float) -> None:
        queue = self.queues[QUEUE_OF_PRIORITY[priority]]
        options = {
            "job_id": job_id,
            "unique": True,
            "job_timeout": self.job_timeout,
            # Finished jobs leave nothing behind; the delivery row is the record.
            "result_ttl": 0,
        }
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), DELIVER, delivery_id, **options)
        else:
            queue.enqueue(DELIVER, delivery_id, **options)


class InProcessJobQueue:
    """The embedded mode's queue: each try runs as a background task of this process."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.waiting: set[str] = set()
        self.lock = threading.Lock()

    def enqueue_delivery(
        self, delivery_id: int, attempt: int, priority: str, delay_seconds: float = 0
    ) -> bool:
        job_id = delivery_job_id(delivery_id, attempt)
        with self.lock:
            if job_id in self.waiting:
                return False
            self.waiting.add(job_id)
        socketio.start_background_task(self._run, job_id, delivery_id, delay_seconds)
        return True

    def _run(self, job_id: str, delivery_id: int, delay_seconds: float) -> None:
        from app.jobs.deliveries import deliver

        if delay_seconds > 0:
            socketio.sleep(delay_seconds)
        with self.lock:
            self.waiting.discard(job_id)
        with self.app.app_context():
            try:
                deliver(delivery_id)
            except Exception:
                # In RQ this lands in the failed registry; here the log is the registry.
                log.exception("delivery job %s failed", job_id)


def job_queue() -> JobQueue:
    """The current app's job queue."""
    return current_app.extensions["job_queue"]


def init_app(app: Flask) -> None:
    """Pick the queue: RQ when REDIS_URL is set, else in-process."""
    redis_url = app.config["REDIS_URL"]
    app.extensions["job_queue"] = (
        RedisJobQueue(redis_url, int(app.config["DELIVERY_JOB_TIMEOUT_SECONDS"]))
        if redis_url
        else InProcessJobQueue(app)
    )
