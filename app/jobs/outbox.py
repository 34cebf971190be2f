"""The outbox mechanics shared by channel deliveries and webhook events: rows committed with
the work that caused them, claimed by one job at a time with a lease, retried with backoff,
and re-queued by the relay when their job was lost.

A job works a batch of rows (up to DELIVERY_BATCH): one statement claims them all, one loads
them, and outcomes are recorded with one statement per outcome and one commit, so a row
costs its send and little more. A row type takes part by having the columns `id`, `status`
(`queued`, `sent`, `failed`), `attempts`, `last_error`, `next_attempt_at`, `lease_until` and
`updated_at`.
"""

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import Select, or_, update

from app import defaults, metrics
from app.channels.errors import DeliveryError, PermanentDeliveryError
from app.db import utcnow
from app.extensions import db
from app.jobs.queue import job_queue

log = logging.getLogger(__name__)


class GaveUp(Exception):
    """Rows are `failed` for good; raised so their job ends in RQ's failed registry."""


class Work(Protocol):
    """One loaded outbox row, ready to be sent."""

    row_id: int
    priority: str
    channel: str

    def send(self) -> None:
        """Do it, or raise a `DeliveryError` (any other exception counts as transient)."""

    def report(self, status: str, attempt: int, error: str | None) -> dict[str, Any] | None:
        """What a webhook event says of this row now that it is `status` (sent or failed),
        or None when nothing reports on this kind of row."""


@dataclass(frozen=True)
class Kind:
    """A kind of outbox row: its job's name, its model, how to load its rows (in one query),
    the extra values a sent row gets, and how reports become webhook events in the settling
    transaction (their ids, queued after the commit)."""

    name: str
    model: Any
    load: Callable[[Sequence[int]], list[Work]]
    sent_values: Callable[[datetime], dict[str, Any]] = lambda _now: {}
    record: Callable[[str, list[dict[str, Any]], datetime], list[int]] = (
        lambda _type, _payloads, _now: []
    )
    after_commit: Callable[[list[int]], None] = lambda _ids: None


@dataclass(frozen=True)
class Claim:
    """Rows held by this job for one try each, until `lease_until`: row id -> its attempt."""

    attempts: dict[int, int]
    lease_until: datetime


@dataclass
class Outcome:
    """How one row's try went: `sent`, `failed` or `retry`, and the error."""

    work: Work
    attempt: int
    status: str
    error: str | None = None


def retry_delay(attempt: int) -> float:
    """Seconds before try `attempt + 1`: exponential from the base, capped, full jitter."""
    config = current_app.config
    ceiling = min(
        config["DELIVERY_RETRY_MAX_SECONDS"],
        config["DELIVERY_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def claim(model: Any, row_ids: Sequence[int]) -> Claim:
    """Take the rows for one try each, committed at once so the lease holds while the work
    happens. Rows done, held by a live worker or out of tries (then they are `failed`) are
    left out."""
    config = current_app.config
    now = utcnow()
    lease_until = now + timedelta(seconds=config["DELIVERY_LEASE_SECONDS"])
    free = (
        model.status == "queued",
        or_(model.lease_until.is_(None), model.lease_until < now),
    )
    attempts = dict(
        db.session.execute(
            update(model)
            .where(model.id.in_(row_ids), *free, model.attempts < config["DELIVERY_MAX_ATTEMPTS"])
            .values(attempts=model.attempts + 1, lease_until=lease_until, updated_at=now)
            .returning(model.id, model.attempts)
        ).all()
    )
    unclaimed = [row_id for row_id in row_ids if row_id not in attempts]
    if unclaimed:
        # Of these, the ones still free are out of tries: every try ended without an outcome
        # (their workers died, say), so they stop here.
        db.session.execute(
            update(model)
            .where(model.id.in_(unclaimed), *free)
            .values(status="failed", last_error="gave up: no try finished", updated_at=now)
        )
    db.session.commit()
    return Claim(attempts, lease_until)


def _settle(model: Any, held: Claim, row_ids: list[int], **values: object) -> set[int]:
    """Release the lease and record values on the rows this job still holds (a lease that ran
    out may have passed one to another worker); the ids it did. Not committed."""
    if not row_ids:
        return set()
    return set(
        db.session.scalars(
            update(model)
            .where(model.id.in_(row_ids), model.lease_until == held.lease_until)
            .values(lease_until=None, updated_at=utcnow(), **values)
            .returning(model.id)
        )
    )


def _try(kind: str, work: Work, attempt: int) -> Outcome:
    started = time.perf_counter()
    try:
        work.send()
        outcome = Outcome(work, attempt, "sent")
    except PermanentDeliveryError as failure:
        outcome = Outcome(work, attempt, "failed", str(failure))
    except DeliveryError as failure:
        outcome = Outcome(work, attempt, "retry", str(failure))
    except Exception as failure:
        # Not a channel's verdict (bad data, a bug, a timeout): still a try, so it is retried
        # and in the end fails, instead of staying queued for ever.
        log.exception("%s %s try %s raised", kind, work.row_id, attempt)
        outcome = Outcome(work, attempt, "retry", f"{type(failure).__name__}: {failure}")
    if outcome.status == "retry" and attempt >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
        outcome.status = "failed"
    metrics.JOB_DURATION.labels(kind, outcome.status).observe(time.perf_counter() - started)
    return outcome


def _send_budget() -> float:
    """Seconds a job may go on starting sends: the last one must end (its channel timeout)
    before RQ stops the job, or the rows after it would lose a try without being tried."""
    config = current_app.config
    return config["DELIVERY_JOB_TIMEOUT_SECONDS"] - config["CHANNEL_TIMEOUT_SECONDS"]


def run(kind: Kind, row_ids: Sequence[int]) -> None:
    """One try of each row: claim them, load them, send with no transaction open, record the
    outcomes. A transient failure schedules that row's next try with backoff; a permanent
    one, or the last try, leaves the row `failed` and, once the batch is done, raises
    `GaveUp`. Rows the job had no time left for are handed back untried and queued again.

    Outcomes are written whenever OUTCOME_FLUSH_SECONDS of sending has gone by since the last
    write, and at the end: a worker killed mid-batch sends again only what it sent since."""
    held = claim(kind.model, row_ids)
    if not held.attempts:
        return
    works = kind.load(list(held.attempts))
    # End the transaction before sending; detached first, the loaded rows keep their values
    # instead of being expired and read again, one query each.
    db.session.expunge_all()
    db.session.commit()
    deadline = time.monotonic() + _send_budget()
    written = time.monotonic()
    pending: list[Outcome] = []
    gave_up: list[Outcome] = []
    for index, work in enumerate(works):
        if index and time.monotonic() > deadline:
            _hand_back(kind, held, works[index:])
            break
        pending.append(_try(kind.name, work, held.attempts[work.row_id]))
        if time.monotonic() - written >= defaults.OUTCOME_FLUSH_SECONDS:
            gave_up += _record(kind, held, pending)
            pending, written = [], time.monotonic()
    gave_up += _record(kind, held, pending)
    if gave_up:
        raise GaveUp("; ".join(f"{kind.name} {o.work.row_id}: {o.error}" for o in gave_up))


def _hand_back(kind: Kind, held: Claim, works: list[Work]) -> None:
    """Release rows this job claimed but did not try, their try not counted, and queue them
    again as a batch of their own."""
    model = kind.model
    returned = _settle(model, held, [work.row_id for work in works], attempts=model.attempts - 1)
    db.session.commit()
    job_queue().enqueue_first_tries(
        kind.name, [(work.row_id, work.priority) for work in works if work.row_id in returned]
    )


def _record(kind: Kind, held: Claim, outcomes: list[Outcome]) -> list[Outcome]:
    """Write the outcomes in one transaction: one statement for the sent rows, one per error
    for the failed ones, one per retry (each has its own due time), and webhook events for
    the rows settled; then queue the retries and the events. The rows now `failed`."""
    if not outcomes:
        return []
    model = kind.model
    now = utcnow()
    sent = [o for o in outcomes if o.status == "sent"]
    ours = _settle(model, held, _ids(sent), status="sent", last_error=None, **kind.sent_values(now))
    settled = [o for o in sent if o.work.row_id in ours]
    failed = sorted((o for o in outcomes if o.status == "failed"), key=lambda o: o.error or "")
    for error, group in groupby(failed, key=lambda o: o.error):
        same = list(group)
        ours = _settle(model, held, _ids(same), status="failed", last_error=error)
        settled += [o for o in same if o.work.row_id in ours]
    retries = []
    for outcome in (o for o in outcomes if o.status == "retry"):
        delay = retry_delay(outcome.attempt)
        due_at = now + timedelta(seconds=delay)
        if _settle(
            model, held, [outcome.work.row_id], last_error=outcome.error, next_attempt_at=due_at
        ):
            retries.append((outcome, delay))
    events = []
    for status in ("sent", "failed"):
        reports = [o.work.report(status, o.attempt, o.error) for o in settled if o.status == status]
        if reports := [report for report in reports if report is not None]:
            events += kind.record(f"{kind.name}.{status}", reports, now)
    db.session.commit()
    for outcome in settled:
        metrics.DELIVERIES.labels(outcome.work.channel, outcome.status).inc()
    queue = job_queue()
    for outcome, delay in retries:
        metrics.RETRIES.labels(outcome.work.channel).inc()
        work = outcome.work
        queue.enqueue(kind.name, work.row_id, outcome.attempt + 1, work.priority, delay)
    kind.after_commit(events)
    return [o for o in settled if o.status == "failed"]


def _ids(outcomes: list[Outcome]) -> list[int]:
    return [outcome.work.row_id for outcome in outcomes]


def enqueue_first_tries(kind: str, rows: list[tuple[int, str]]) -> None:
    """After the commit that made them: queue the first try of each (row id, priority). If
    this fails (Redis is down), the relay queues them later."""
    if rows:
        job_queue().enqueue_first_tries(kind, rows)


def due(statement: Select, model: Any, now: datetime) -> Select:
    """Narrow `statement` to rows the relay should queue: due past the grace period, not
    held, oldest first, one batch."""
    config = current_app.config
    cutoff = now - timedelta(seconds=config["RELAY_GRACE_SECONDS"])
    return (
        statement.where(
            model.status == "queued",
            model.next_attempt_at <= cutoff,
            or_(model.lease_until.is_(None), model.lease_until < now),
        )
        .order_by(model.next_attempt_at)
        .limit(config["RELAY_BATCH"])
    )
