"""Workers: how fast real `python worker.py` processes work the delivery queues, and how fast
the product queues jobs.

The workers are started once, together: two `python worker.py` (the second is stopped after
the two-worker cases) and the naive worker on a queue of its own; they wait on empty queues.
Each case resets its channel's deliveries to `queued` and untried, then queues all of them at
once as one send to all of them would: the product's `enqueue_first_tries`, jobs of up to
DELIVERY_BATCH deliveries in one MULTI/EXEC, so that no worker starts before the last is in
(the naive worker gets one job per delivery, as the naive build queues them). A case
ends when every delivery settled or `cap_seconds` after the first one did (at today's rates
the full size's 20,000 emails would take many minutes); what it left is parked a day ahead
and taken off the queue, so no relay or later case works it.

- Deliveries/s: the settled deliveries' `sent_at` (written by the workers in the commit that
  records the outcome), `(sent - 1) / (last - first)`. Beside it, in the details, the CPU
  the worker processes used over the case (/proc, work horses included) per settled
  delivery: against 1/rate, it tells a worker that computes from one that waits.
- Email: SMTP to `bench.smtp_sink` (aiosmtpd in its own process, counting what it accepts),
  one SMTP connection per email as the product does it.
- No-op: the SMS channel with its `console` backend, which at the stack's LOG_LEVEL=WARNING
  only builds the text and makes a filtered log call: a provider that costs nothing, so the
  figure is the worker's own cost per delivery.
- Naive reference: RQ's default forking `Worker` (`bench.forking_worker`) on the no-op jobs.
- Empty RQ job (`time.sleep(0)`) through `python worker.py`: what RQ and the app context cost
  per job, the floor under any delivery; timed by polling the queue's length.
- Enqueue: the product's path after a send's commit, `enqueue_first_tries` (RQ's
  `enqueue_many` in one pipeline), 1 and 100 first tries per call (a one-recipient send: one
  job; a send to 100: one job of 100) in an app context with no worker running, each call
  timed; deliveries/s is first tries over the calls' summed time. Beside it, one job per
  delivery through RQ's `enqueue_many` in one pipeline, all in one call. And its ceiling
  from one caller (raw): the commands one enqueue of a single first try sends (MULTI, SADD,
  two HSETs of the job's hash, RPUSH, EXEC), replayed in one pipeline per call with a real
  job's fields under fresh keys, so nothing is built: what Redis and redis-py cost.
- Per delivery: `app.jobs.deliveries.deliver` called in this process (no RQ, no fork) on
  no-op and on email deliveries, one per call and DELIVERY_BATCH per call, each call in its
  own app context as the worker runs a job, with psycopg2 wrapped to time every statement,
  commit and rollback: where the time goes.
"""

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import redis
from flask import Flask
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import event

from bench.harness import REDIS_URL, Bench, Stack, free_port, process
from bench.in_process import app_for
from bench.report import ScenarioResult, percentiles

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"jobs": 100, "cap_seconds": 1, "naive_cap_seconds": 1, "profile": 10},
    "quick": {"jobs": 1_000, "cap_seconds": 1.5, "naive_cap_seconds": 1.5, "profile": 30},
    "full": {"jobs": 20_000, "cap_seconds": 12, "naive_cap_seconds": 8, "profile": 200},
}
"""`jobs` deliveries of each channel (and empty jobs, and enqueues); `cap_seconds` the
longest a case runs once its first delivery settled (`naive_cap_seconds` for the naive
worker); `profile` deliveries of each channel timed in-process."""
DELIVERIES_TARGET = 1_500
"""No-op deliveries per second with two workers on the two cores (issue #6)."""
ENQUEUE_TARGET = 10_000
"""Jobs queued per second (issue #6)."""
NAIVE_CLAIMED = 120
"""Deliveries per second the issue quotes for the default forking worker."""
START_SECONDS = 30
"""How long workers may take to register, or to settle a case's first job."""
POLL_SECONDS = 0.1
PRODUCT_WORKER = [sys.executable, "worker.py"]
FORKING_WORKER = [sys.executable, "-m", "bench.forking_worker"]
NAIVE_QUEUE = "naive"
"""The naive worker's own queue, so that it waits beside the product's workers."""
BEST_CASE = "no-op (SMS console), 2 workers"
NAIVE_CASE = "naive forking rq.Worker, no-op"
CASE_ORDER = (
    "email → SMTP sink, 1 worker",
    "email → SMTP sink, 2 workers",
    "no-op (SMS console), 1 worker",
    BEST_CASE,
    NAIVE_CASE,
)
"""The cases as the table lists them (they run in another order, two workers first)."""


class DriverTimes:
    """Time spent in psycopg2 by kind (`SELECT`, `UPDATE`, ..., `COMMIT`), and how often."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] += seconds
        self.calls[kind] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


TIMES = DriverTimes()


class TimedCursor(psycopg2.extensions.cursor):
    """A cursor that adds each statement's round trip to TIMES, by its first word."""

    def execute(self, query: Any, variables: Any = None) -> None:
        started = time.perf_counter()
        try:
            super().execute(query, variables)
        finally:
            text = query.decode() if isinstance(query, bytes) else str(query)
            TIMES.add(text.lstrip().split(None, 1)[0].upper(), time.perf_counter() - started)


class TimedConnection(psycopg2.extensions.connection):
    """A connection whose cursors are timed, and whose commits and rollbacks are too."""

    def cursor(self, *args: Any, **kwargs: Any) -> psycopg2.extensions.cursor:
        kwargs.setdefault("cursor_factory", TimedCursor)
        return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        started = time.perf_counter()
        super().commit()
        TIMES.add("COMMIT", time.perf_counter() - started)

    def rollback(self) -> None:
        started = time.perf_counter()
        super().rollback()
        TIMES.add("ROLLBACK", time.perf_counter() - started)


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[int, list[int]]]:
    """`bench.smtp_sink` on a free port; yields the port and a list that holds, once the
    sink stopped, the number of messages it accepted."""
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.smtp_sink", str(port)], stdout=subprocess.PIPE, text=True
    )
    accepted: list[int] = []
    try:
        if sink.stdout is None or sink.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        yield port, accepted
    finally:
        sink.terminate()
        output, _ = sink.communicate(timeout=30)
        accepted.extend(int(line) for line in output.split() if line.isdigit())


def _sql(database_url: str, statement: str, parameters: Any = None) -> list[tuple]:
    """One statement in its own autocommitted connection; its rows (none for no result)."""
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, parameters)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def _seed(database_url: str, jobs: int) -> None:
    """`jobs` users with an email and a phone, one notification each (not in the inbox), and
    an email and an SMS delivery of each, parked until a case resets them."""
    _sql(
        database_url,
        "INSERT INTO users (id, email, phone, created_at, updated_at)"
        " SELECT 'w' || g, 'w' || g || '@example.com', '+1555' || lpad(g::text, 7, '0'),"
        " now(), now() FROM generate_series(1, %(jobs)s) g",
        {"jobs": jobs},
    )
    _sql(
        database_url,
        "INSERT INTO notifications (user_id, category, title, body, data, priority, in_app)"
        " SELECT 'w' || g, 'billing', 'Your invoice is ready',"
        " 'Invoice 2026-11 for 42.00 EUR is ready to download.', '{}', 'normal', false"
        " FROM generate_series(1, %(jobs)s) g",
        {"jobs": jobs},
    )
    _sql(
        database_url,
        "INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at)"
        " SELECT n.id, c.channel, 'queued', 0, now() + interval '1 day' FROM notifications n"
        " CROSS JOIN (VALUES ('email'), ('sms')) AS c(channel)",
    )


def _reset(database_url: str, channel: str, limit: int | None = None) -> list[int]:
    """Make the channel's deliveries (the first `limit`) queued, untried and due, as a send
    leaves them; their ids."""
    rows = _sql(
        database_url,
        "UPDATE deliveries SET status = 'queued', attempts = 0, lease_until = NULL,"
        " sent_at = NULL, last_error = NULL, next_attempt_at = now(), updated_at = now()"
        " WHERE id IN (SELECT id FROM deliveries WHERE channel = %s ORDER BY id LIMIT %s)"
        " RETURNING id",
        (channel, limit),
    )
    # Earlier cases' updates left dead rows; every case starts from a clean table.
    _sql(database_url, "VACUUM ANALYZE deliveries")
    return sorted(row[0] for row in rows)


def _park(database_url: str) -> None:
    """Push what a capped case left queued a day ahead: a relay (in every worker) would
    otherwise queue it again and later cases would work it too."""
    _sql(
        database_url,
        "UPDATE deliveries SET next_attempt_at = now() + interval '1 day' WHERE status = 'queued'",
    )


ENQUEUE_SIZES = (1, 100)
"""First tries per call when timing the product's enqueue: what a send to one recipient
queues, and a send to 100 emails (one job of up to DELIVERY_BATCH deliveries)."""


def _enqueue(app: Flask, ids: list[int], per_call: int) -> list[float]:
    """Queue the first try of each delivery through the product's queue, `per_call` per
    call as a send queues its deliveries; each call's duration in seconds."""
    from app.jobs.queue import job_queue

    durations = []
    with app.app_context():
        queue = job_queue()
        for start in range(0, len(ids), per_call):
            rows = [(delivery_id, "normal") for delivery_id in ids[start : start + per_call]]
            started = time.perf_counter()
            queue.enqueue_first_tries("delivery", rows)
            durations.append(time.perf_counter() - started)
    return durations


def _queue_as_sent(app: Flask, ids: list[int]) -> None:
    """Queue the first tries as one send to all of them would: the product's
    `enqueue_first_tries`, jobs of DELIVERY_BATCH in one MULTI/EXEC, so that a waiting
    worker sees them all at once."""
    from app.jobs.queue import job_queue

    with app.app_context():
        job_queue().enqueue_first_tries(
            "delivery", [(delivery_id, "normal") for delivery_id in ids]
        )


def _queue_one_per_job(app: Flask, ids: list[int], queue_name: str = "default") -> float:
    """Queue one job per delivery (the product's function, job ids and options for a single
    first try) with RQ's `enqueue_many` in one MULTI/EXEC; the seconds it took."""
    from app import defaults
    from app.jobs.queue import JOBS, job_id

    started = time.perf_counter()
    jobs = [
        Queue.prepare_data(
            JOBS["delivery"],
            (delivery_id,),
            job_id=job_id("delivery", delivery_id, 1),
            timeout=app.config["DELIVERY_JOB_TIMEOUT_SECONDS"],
            result_ttl=0,
            failure_ttl=defaults.FAILED_JOB_TTL_SECONDS,
        )
        for delivery_id in ids
    ]
    queue = Queue(queue_name, connection=redis.Redis.from_url(REDIS_URL))
    with queue.connection.pipeline() as pipeline:
        queue.enqueue_many(jobs, pipeline=pipeline)
        pipeline.execute()
    return time.perf_counter() - started


def _enqueue_floor(app: Flask, calls: int) -> float:
    """Calls per second of the Redis commands one product enqueue of a single first try
    sends, in one pipeline per call, with a real job's fields and nothing built."""
    from app.jobs.queue import job_id, job_queue

    connection = redis.Redis.from_url(REDIS_URL)
    with app.app_context():
        job_queue().enqueue_first_tries("delivery", [(0, "normal")])
    fields = connection.hgetall(Job.key_for(job_id("delivery", 0, 1)))
    queue = Queue("default", connection=connection)
    connection.flushdb()
    started = time.perf_counter()
    for call in range(calls):
        identifier = f"floor-{call}"
        key = Job.key_for(identifier)
        with connection.pipeline() as pipeline:
            pipeline.sadd(queue.redis_queues_keys, queue.key)
            pipeline.hset(key, "status", "queued")
            pipeline.hset(key, mapping=fields)
            pipeline.rpush(queue.key, identifier)
            pipeline.execute()
    seconds = time.perf_counter() - started
    connection.flushdb()
    return calls / seconds


def _settled(database_url: str, channel: str) -> dict[str, Any]:
    """Counts by outcome of the channel's deliveries, and their rate by `sent_at`: the
    deliveries sent after the first moment anything was sent, over the time since (a job
    writes the outcomes of a batch's fast sends together, so the first moment can hold many
    deliveries whose sending took place before it)."""
    [(sent, failed, retried, first, span)] = _sql(
        database_url,
        "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),"
        " count(*) FILTER (WHERE attempts > 1),"
        " count(*) FILTER (WHERE sent_at = (SELECT min(sent_at) FROM deliveries"
        " WHERE channel = %(channel)s)), extract(epoch FROM max(sent_at) - min(sent_at))"
        " FROM deliveries WHERE channel = %(channel)s",
        {"channel": channel},
    )
    span = float(span or 0)
    return {
        "sent": sent,
        "failed": failed,
        "retried": retried,
        "sent_first": first,
        "seconds": round(span, 3),
        "per_second": round((sent - first) / span, 1) if sent > first and span > 0 else 0.0,
    }


def _cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """CPU seconds (user and system, their waited-for children's included) the processes
    have used so far."""
    ticks = 0
    for running in processes:
        with open(f"/proc/{running.pid}/stat") as stat:
            # The fields after the command's closing parenthesis; utime, stime, cutime and
            # cstime are the 14th to 17th of the whole line.
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_for_workers(count: int) -> None:
    """Until exactly `count` workers are registered with RQ (started ones ready to take
    jobs, stopped ones gone)."""
    connection = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + START_SECONDS
    while Worker.count(connection=connection) != count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected {count} RQ workers, not {Worker.count(connection)}")
        time.sleep(0.05)


def _stop_case(database_url: str, queue_name: str) -> None:
    """End a case: park what is still queued, take the rest of its jobs off the queue and
    wait for the jobs in hand to finish."""
    _park(database_url)
    queue = Queue(queue_name, connection=redis.Redis.from_url(REDIS_URL))
    queue.empty()
    deadline = time.monotonic() + START_SECONDS
    while queue.started_job_registry.count and time.monotonic() < deadline:
        time.sleep(0.02)


def _drain(
    stack: Stack, app: Flask, channel: str, cap: float, queue_name: str = "default"
) -> dict[str, Any]:
    """Reset the channel's deliveries and queue them all at once for the waiting workers (as
    one send to all of them queues them; one job each for the naive worker); wait until all
    settled or `cap` seconds after the first did; what came out."""
    database_url = stack.env["DATABASE_URL"]
    ids = _reset(database_url, channel)
    if queue_name == NAIVE_QUEUE:
        _queue_one_per_job(app, ids, queue_name)
    else:
        _queue_as_sent(app, ids)
    watcher = psycopg2.connect(database_url)
    watcher.autocommit = True
    with watcher.cursor() as cursor:
        started, first = time.monotonic(), None
        while True:
            cursor.execute(
                "SELECT count(*) FROM deliveries WHERE channel = %s AND status <> 'queued'",
                (channel,),
            )
            done = cursor.fetchone()[0]
            now = time.monotonic()
            if done and first is None:
                first = now
            deadline = first + cap if first is not None else started + START_SECONDS
            if done >= len(ids) or now > deadline:
                break
            time.sleep(POLL_SECONDS)
    watcher.close()
    _stop_case(database_url, queue_name)
    return {"queued": len(ids), **_settled(database_url, channel)}


def _empty_jobs(jobs: int, cap: float) -> dict[str, Any]:
    """`jobs` empty RQ jobs for the running worker, queued at once; jobs/s from the queue's
    length between the first job taken and the queue empty (or `cap` seconds)."""
    queue = Queue("default", connection=redis.Redis.from_url(REDIS_URL))
    with queue.connection.pipeline() as pipeline:
        queue.enqueue_many(
            [Queue.prepare_data("time.sleep", (0,), result_ttl=0) for _ in range(jobs)],
            pipeline=pipeline,
        )
        pipeline.execute()
    deadline = time.monotonic() + START_SECONDS
    while queue.count == jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    first, waiting_then = time.monotonic(), queue.count
    while queue.count and time.monotonic() < first + cap:
        time.sleep(0.02)
    last, waiting_now = time.monotonic(), queue.count
    queue.empty()
    done = waiting_then - waiting_now
    return {"jobs": jobs, "done": done, "per_second": round(done / (last - first), 1)}


def _profile(
    stack: Stack, app: Flask, channel: str, deliveries: int, per_job: int
) -> dict[str, Any]:
    """`deliver()` of `deliveries` of the channel's deliveries in this process, `per_job` per
    call, each call in its own app context as a worker runs a job: each call's duration per
    delivery and the psycopg2 time per delivery by kind."""
    from app.jobs.deliveries import deliver

    database_url = stack.env["DATABASE_URL"]
    ids = _reset(database_url, channel, deliveries)
    durations = []
    TIMES.reset()
    for start in range(0, len(ids), per_job):
        batch = ids[start : start + per_job]
        started = time.perf_counter()
        with app.app_context():
            deliver(*batch)
        durations.append((time.perf_counter() - started) / len(batch))
    [(sent,)] = _sql(
        database_url,
        "SELECT count(*) FROM deliveries WHERE id = ANY(%s) AND status = 'sent'",
        (ids,),
    )
    _park(database_url)
    total, database = sum(durations) * per_job, sum(TIMES.seconds.values())
    return {
        "deliveries": len(ids),
        "per_job": per_job,
        "sent": sent,
        "ms_per_delivery": round(total / len(ids) * 1000, 3),
        "psycopg2_ms_per_delivery": round(database / len(ids) * 1000, 3),
        "rest_ms_per_delivery": round((total - database) / len(ids) * 1000, 3),
        "psycopg2_calls_per_delivery": {
            kind: {
                "calls": round(TIMES.calls[kind] / len(ids), 2),
                "ms": round(TIMES.seconds[kind] / len(ids) * 1000, 3),
            }
            for kind in sorted(TIMES.calls)
        },
        "durations_ms": [round(seconds * 1000, 3) for seconds in durations],
    }


def _timed_app(env: dict[str, str]) -> Flask:
    """The product's app, every database connection of it a TimedConnection."""
    from app.extensions import db

    app = app_for(env)
    with app.app_context():
        db.engine.dispose()
        event.listen(
            db.engine,
            "do_connect",
            lambda _dialect, _record, _args, params: params.update(
                connection_factory=TimedConnection
            ),
        )
    return app


def run(bench: Bench) -> ScenarioResult:
    """Seed the deliveries, time the enqueue paths, then the cases with one product worker,
    with two, with the naive worker, and the in-process profiles."""
    settings = bench.settings
    jobs, cap = settings["jobs"], settings["cap_seconds"]
    outcomes: dict[str, dict[str, Any]] = {}
    with (
        smtp_sink() as (port, accepted),
        bench.stack(
            "workers",
            web=0,
            EMAIL_BACKEND="smtp",
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(port),
            SMS_BACKEND="console",
        ) as stack,
    ):
        database_url = stack.env["DATABASE_URL"]
        _seed(database_url, jobs)
        app = _timed_app(stack.env)
        ids = _reset(database_url, "sms")
        enqueue_ms = {}
        for per_call in ENQUEUE_SIZES:
            enqueue_ms[per_call] = [seconds * 1000 for seconds in _enqueue(app, ids, per_call)]
            redis.Redis.from_url(REDIS_URL).flushdb()
        at_once = len(ids) / _queue_one_per_job(app, ids)
        redis.Redis.from_url(REDIS_URL).flushdb()
        floor = _enqueue_floor(app, len(ids))
        _park(database_url)

        def case(
            name: str,
            workers: list[subprocess.Popen],
            channel: str,
            limit: float = cap,
            queue: str = "default",
        ) -> None:
            print(f"   {name} ...", file=sys.stderr, flush=True)
            started, cpu = time.monotonic(), _cpu_seconds(workers)
            outcome = _drain(stack, app, channel, limit, queue)
            cpu = _cpu_seconds(workers) - cpu
            outcome["wall_seconds"] = round(time.monotonic() - started, 1)
            # CPU the worker processes spent (their work horses included) per settled
            # delivery: against 1/rate, it tells working from waiting.
            outcome["worker_cpu_ms_per_delivery"] = (
                round(cpu * 1000 / outcome["sent"], 3) if outcome["sent"] else None
            )
            outcomes[name] = outcome

        # All three start together (their start-up overlaps) and wait on empty queues; the
        # naive worker has a queue of its own. Two product workers first, then one.
        with (
            process(PRODUCT_WORKER, stack.env) as first,
            process(PRODUCT_WORKER, stack.env) as second,
            process([*FORKING_WORKER, NAIVE_QUEUE], stack.env) as naive,
        ):
            _wait_for_workers(3)
            case("email → SMTP sink, 2 workers", [first, second], "email")
            case(BEST_CASE, [first, second], "sms")
            second.terminate()
            second.wait(timeout=30)
            _wait_for_workers(2)
            case("email → SMTP sink, 1 worker", [first], "email")
            case("no-op (SMS console), 1 worker", [first], "sms")
            empty = _empty_jobs(jobs, cap)
            case(NAIVE_CASE, [naive], "sms", settings["naive_cap_seconds"], NAIVE_QUEUE)
        batch = int(app.config["DELIVERY_BATCH"])
        profiles = {
            (channel, per_job): _profile(stack, app, channel, settings["profile"], per_job)
            for channel in ("sms", "email")
            for per_job in (1, batch)
        }
    result = ScenarioResult("workers")
    _report(result, outcomes, empty, enqueue_ms, at_once, floor, profiles)
    result.details["smtp_sink_accepted"] = accepted[0] if accepted else None
    return result


def _report(
    result: ScenarioResult,
    outcomes: dict[str, dict[str, Any]],
    empty: dict[str, Any],
    enqueue_ms: dict[int, list[float]],
    at_once: float,
    floor: float,
    profiles: dict[tuple[str, int], dict[str, Any]],
) -> None:
    """The table's rows, the distributions and the details; `at_once` and `floor` the
    enqueue's neighbours, RQ's `enqueue_many` at once and the raw commands one per call
    (per s)."""
    for name in CASE_ORDER:
        outcome = outcomes[name]
        target, met = None, None
        if name == BEST_CASE:
            target, met = f">= {DELIVERIES_TARGET:,}/s", outcome["per_second"] >= DELIVERIES_TARGET
        elif name == NAIVE_CASE:
            target = f"~{NAIVE_CLAIMED}/s claimed"
        result.add(name, "deliveries/s", outcome["per_second"], "1/s", target, met)
    best, naive = outcomes[BEST_CASE]["per_second"], outcomes[NAIVE_CASE]["per_second"]
    result.add("no-op, 2 workers / naive", "ratio", best / naive if naive else 0.0, "x")
    result.add("empty RQ job, 1 worker", "jobs/s", empty["per_second"], "1/s")
    enqueue_rates = {}
    for per_call, durations in enqueue_ms.items():
        enqueue_rates[per_call] = 1000 * len(durations) * per_call / sum(durations)
        # One first try per call is one job per call: that is where the jobs/s target bites.
        target = f">= {ENQUEUE_TARGET:,}/s" if per_call == 1 else None
        met = enqueue_rates[per_call] >= ENQUEUE_TARGET if per_call == 1 else None
        result.add(
            f"enqueue first tries, {per_call} per call",
            "deliveries/s",
            enqueue_rates[per_call],
            "1/s",
            target,
            met,
        )
        result.distributions[f"enqueue {per_call} first tries"] = durations
    result.add("RQ enqueue_many, one job each, 1 pipeline", "jobs/s", at_once, "1/s")
    result.add("raw: an enqueue's Redis commands, 1 per call", "jobs/s", floor, "1/s")
    result.add("enqueue, 1 per call / raw", "ratio", enqueue_rates[1] / floor, "x")
    for (channel, per_job), profile in profiles.items():
        label = "no-op" if channel == "sms" else "email"
        name = f"deliver() in-process, {label}, {per_job} per job"
        result.add(name, "ms per delivery", profile["ms_per_delivery"], "ms")
        result.add(name, "of which psycopg2", profile["psycopg2_ms_per_delivery"], "ms")
        result.distributions[name] = profile.pop("durations_ms")
    one_worker = outcomes["no-op (SMS console), 1 worker"]["per_second"]
    batched = max(per_job for _channel, per_job in profiles)
    result.details.update(
        {
            # Where one no-op delivery's time goes in one worker: the whole (from its rate),
            # the job function's (in-process, in batches as the worker got them), psycopg2's
            # share of it, and RQ's floor per job.
            "no_op_breakdown_ms": {
                "per_delivery_in_worker": round(1000 / one_worker, 3) if one_worker else None,
                "deliver_function": profiles["sms", batched]["ms_per_delivery"],
                "of_which_psycopg2": profiles["sms", batched]["psycopg2_ms_per_delivery"],
                "empty_rq_job": round(1000 / empty["per_second"], 3)
                if empty["per_second"]
                else None,
            },
            "cases": outcomes,
            "enqueue_ms": {per_call: percentiles(ms) for per_call, ms in enqueue_ms.items()},
            "enqueue_deliveries_per_second": {
                per_call: round(rate, 1) for per_call, rate in enqueue_rates.items()
            },
            "enqueue_many_per_second": round(at_once, 1),
            "enqueue_raw_commands_per_second": round(floor, 1),
            "empty_rq_job": empty,
            "profiles": {
                f"{channel}, {per_job} per job": p for (channel, per_job), p in profiles.items()
            },
            # Every email a worker or the profile recorded as sent, to hold against what the
            # sink says it accepted.
            "emails_sent": sum(
                p["sent"] for (channel, _), p in profiles.items() if channel == "email"
            )
            + sum(outcome["sent"] for name, outcome in outcomes.items() if "email" in name),
        }
    )
