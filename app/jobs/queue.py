"""Where background jobs run: RQ queues on Redis, or, with no REDIS_URL, background tasks of
this very process. Both take the same job functions and the same job ids."""

import importlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import EnqueueData
from rq.scheduler import RQScheduler

from app import defaults
from app.extensions import socketio

log = logging.getLogger(__name__)
JOBS = {
    "delivery": "app.jobs.deliveries.deliver",
    "webhook": "app.jobs.webhooks.send_webhook_event",
}
"""Each kind of outbox row and the job function that works them, given their row ids."""
QUEUE_OF_PRIORITY = {"critical": "critical", "high": "high", "normal": "default", "low": "low"}
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def job_id(kind: str, row_id: int, attempt: int) -> str:
    """One job id per try of one row, so a try is never queued twice."""
    return f"{kind}-{row_id}-{attempt}"


def batch_job_id(kind: str, row_ids: list[int]) -> str:
    """The id of a job of first tries: a single row's try id, or one naming the batch's
    first and last rows (row ids are never reused, so neither are these)."""
    if len(row_ids) == 1:
        return job_id(kind, row_ids[0], 1)
    return f"{kind}-{row_ids[0]}-{row_ids[-1]}-batch"


def batches(rows: list[tuple[int, str]], size: int) -> list[tuple[str, list[int]]]:
    """(row id, priority) pairs as (priority, up to `size` row ids) batches, in order."""
    by_priority: dict[str, list[int]] = {}
    for row_id, priority in rows:
        by_priority.setdefault(priority, []).append(row_id)
    return [
        (priority, ids[start : start + size])
        for priority, ids in by_priority.items()
        for start in range(0, len(ids), size)
    ]


@dataclass(frozen=True)
class QueueDepths:
    """Jobs waiting in each queue, waiting for their time (retries), and in the failed
    registry."""

    waiting: dict[str, int] = field(default_factory=dict)
    scheduled: int = 0
    failed: int = 0


class JobQueue(Protocol):
    """Runs the job of `kind` for one try of some rows: one row now or after a delay (retries,
    the relay), or a send's first tries in batches."""

    def depths(self) -> QueueDepths:
        """How many jobs wait, by queue, and how many failed for good."""
        ...

    def enqueue(
        self,
        kind: str,
        row_id: int,
        attempt: int,
        priority: str = "normal",
        delay_seconds: float = 0,
    ) -> bool:
        """Queue that try unless it already waits; True when it was queued now. On RQ, with no
        delay (the relay: the row is due), a try still waiting for its time is queued now when
        no scheduler is there to do it."""
        ...

    def enqueue_first_tries(self, kind: str, rows: list[tuple[int, str]]) -> None:
        """Queue the first try of each (row id, priority), rows just committed, all at once,
        in jobs of up to `batch_size` rows of one priority."""
        ...


class RedisJobQueue:
    """RQ queues by priority on Redis; workers run the jobs (`python worker.py`)."""

    def __init__(self, connection: Redis, job_timeout: int, batch_size: int) -> None:
        self.connection = connection
        self.job_timeout = job_timeout
        self.batch_size = batch_size
        self.queues = {name: Queue(name, connection=self.connection) for name in defaults.QUEUES}

    def depths(self) -> QueueDepths:
        return QueueDepths(
            waiting={name: queue.count for name, queue in self.queues.items()},
            scheduled=sum(queue.scheduled_job_registry.count for queue in self.queues.values()),
            failed=sum(queue.failed_job_registry.count for queue in self.queues.values()),
        )

    def enqueue(
        self,
        kind: str,
        row_id: int,
        attempt: int,
        priority: str = "normal",
        delay_seconds: float = 0,
    ) -> bool:
        identifier = job_id(kind, row_id, attempt)
        try:
            self._enqueue(identifier, kind, row_id, priority, delay_seconds)
        except DuplicateJobError:
            try:
                job = Job.fetch(identifier, connection=self.connection)
            except NoSuchJobError:
                job = None
            if job is not None:
                status = job.get_status()
                if status == JobStatus.SCHEDULED and delay_seconds <= 0:
                    return self._release(job)
                if status in WAITING:
                    return False
                # A try that ended without finishing its row (its worker died): start afresh.
                job.delete()
            self._enqueue(identifier, kind, row_id, priority, delay_seconds)
        return True

    def enqueue_first_tries(self, kind: str, rows: list[tuple[int, str]]) -> None:
        # One pipeline for all: one job at a time was ~25 round trips each. A first try of a
        # row just committed cannot be waiting already, unless the relay found it first (the
        # send took longer than RELAY_GRACE_SECONDS, or its batch waited longer than that
        # behind others); then it runs twice, and the second run's claim finds the row taken
        # or done and does nothing.
        by_queue: dict[str, list[EnqueueData]] = {}
        for priority, row_ids in batches(rows, self.batch_size):
            by_queue.setdefault(QUEUE_OF_PRIORITY[priority], []).append(
                Queue.prepare_data(
                    JOBS[kind],
                    tuple(row_ids),
                    job_id=batch_job_id(kind, row_ids),
                    timeout=self.job_timeout,
                    result_ttl=0,
                    failure_ttl=defaults.FAILED_JOB_TTL_SECONDS,
                )
            )
        with self.connection.pipeline() as pipeline:
            for name, jobs in by_queue.items():
                self.queues[name].enqueue_many(jobs, pipeline=pipeline)
            pipeline.execute()

    def _release(self, job: Job) -> bool:
        """Queue now a try that is due yet still waits for RQ's scheduler, when no scheduler
        holds its queue's lock. The scheduler runs in one worker at a time, as a thread, and can
        be gone (its worker killed, or stuck); its lock then expires within a minute, but the
        workers look for a new scheduler only at their maintenance, every 10 minutes. A live
        scheduler is left to it: it reads the due ids before it moves them, and would queue a
        try moved meanwhile a second time. False when the try was not queued now."""
        if self.connection.exists(RQScheduler.get_locking_key(job.origin)):
            return False
        try:
            self.queues[job.origin].scheduled_job_registry.requeue(job)
        except InvalidJobOperation:
            return False
        log.warning("queued %s, overdue in the scheduled registry", job.id)
        return True

    def _enqueue(
        self, identifier: str, kind: str, row_id: int, priority: str, delay: float
    ) -> None:
        queue = self.queues[QUEUE_OF_PRIORITY[priority]]
        options = {
            "job_id": identifier,
            "unique": True,
            "job_timeout": self.job_timeout,
            # Finished jobs leave nothing behind; the outbox row is the record.
            "result_ttl": 0,
            "failure_ttl": defaults.FAILED_JOB_TTL_SECONDS,
        }
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), JOBS[kind], row_id, **options)
        else:
            queue.enqueue(JOBS[kind], row_id, **options)


class InProcessJobQueue:
    """The embedded mode's queue: each try runs as a background task of this process."""

    def __init__(self, app: Flask, batch_size: int) -> None:
        self.app = app
        self.batch_size = batch_size
        self.waiting: set[str] = set()
        self.lock = threading.Lock()

    def depths(self) -> QueueDepths:
        # Failed jobs are only logged here (see `_run`), so none are counted.
        with self.lock:
            return QueueDepths(waiting={"in_process": len(self.waiting)})

    def enqueue(
        self,
        kind: str,
        row_id: int,
        attempt: int,
        priority: str = "normal",
        delay_seconds: float = 0,
    ) -> bool:
        return self._start(job_id(kind, row_id, attempt), kind, [row_id], delay_seconds)

    def enqueue_first_tries(self, kind: str, rows: list[tuple[int, str]]) -> None:
        for _priority, row_ids in batches(rows, self.batch_size):
            self._start(batch_job_id(kind, row_ids), kind, row_ids, 0)

    def _start(self, identifier: str, kind: str, row_ids: list[int], delay: float) -> bool:
        with self.lock:
            if identifier in self.waiting:
                return False
            self.waiting.add(identifier)
        socketio.start_background_task(self._run, identifier, kind, row_ids, delay)
        return True

    def _run(self, identifier: str, kind: str, row_ids: list[int], delay_seconds: float) -> None:
        module, name = JOBS[kind].rsplit(".", 1)
        function = getattr(importlib.import_module(module), name)
        if delay_seconds > 0:
            socketio.sleep(delay_seconds)
        try:
            with self.app.app_context():
                function(*row_ids)
        except Exception:
            # In RQ this lands in the failed registry; here the log is the registry.
            log.exception("job %s failed", identifier)
        finally:
            # Only now: while it runs, the relay must not start the same try again.
            with self.lock:
                self.waiting.discard(identifier)


def job_queue() -> JobQueue:
    """The current app's job queue."""
    return current_app.extensions["job_queue"]


def init_app(app: Flask) -> None:
    """Pick the queue: RQ when REDIS_URL is set, else in-process."""
    connection = app.extensions["redis"]
    batch_size = int(app.config["DELIVERY_BATCH"])
    app.extensions["job_queue"] = (
        RedisJobQueue(connection, int(app.config["DELIVERY_JOB_TIMEOUT_SECONDS"]), batch_size)
        if connection is not None
        else InProcessJobQueue(app, batch_size)
    )
