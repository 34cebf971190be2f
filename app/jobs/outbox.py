"""The outbox mechanics shared by channel deliveries and webhook events: rows committed with
the work that caused them, claimed by one job at a time with a lease, retried with backoff,
and re-queued by the relay when their job was lost.

A row type takes part by having the columns `id`, `status` (`queued`, `sent`, `failed`),
`attempts`, `last_error`, `next_attempt_at`, `lease_until` and `updated_at`.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import Select, or_, update

from app import metrics
from app.channels.errors import DeliveryError, PermanentDeliveryError
from app.db import utcnow
from app.extensions import db
from app.jobs.queue import job_queue

log = logging.getLogger(__name__)


class GaveUp(Exception):
    """A row is `failed` for good; raised so its job ends in RQ's failed registry."""


class Work(Protocol):
    """One loaded outbox row, ready to be sent."""

    priority: str
    channel: str

    def send(self) -> None:
        """Do it, or raise a `DeliveryError` (any other exception counts as transient)."""

    def settled(self, status: str, attempt: int, error: str | None) -> dict[str, Any]:
        """Extra column values for the final `status`, and anything to record with it in the
        same transaction (webhook events); called only when the row is still ours."""

    def after_commit(self) -> None:
        """Queue what `settled` recorded, once it is committed."""


@dataclass(frozen=True)
class Claim:
    """A row held by this job for one try, until `lease_until`."""

    row_id: int
    attempt: int
    lease_until: datetime


def retry_delay(attempt: int) -> float:
    """Seconds before try `attempt + 1`: exponential from the base, capped, full jitter."""
    config = current_app.config
    ceiling = min(
        config["DELIVERY_RETRY_MAX_SECONDS"],
        config["DELIVERY_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def claim(model: Any, row_id: int) -> Claim | None:
    """Take the row for one try, committed at once so the lease holds while the work happens.
    None when it is done, held by a live worker, or out of tries (then it is `failed`)."""
    config = current_app.config
    now = utcnow()
    lease_until = now + timedelta(seconds=config["DELIVERY_LEASE_SECONDS"])
    free = (
        model.id == row_id,
        model.status == "queued",
        or_(model.lease_until.is_(None), model.lease_until < now),
    )
    attempt = db.session.execute(
        update(model)
        .where(*free, model.attempts < config["DELIVERY_MAX_ATTEMPTS"])
        .values(attempts=model.attempts + 1, lease_until=lease_until, updated_at=now)
        .returning(model.attempts)
    ).scalar()
    if attempt is None:
        # A row whose every try ended without an outcome (its workers died, say) stops here.
        db.session.execute(
            update(model)
            .where(*free)
            .values(status="failed", last_error="gave up: no try finished", updated_at=now)
        )
    db.session.commit()
    return Claim(row_id, attempt, lease_until) if attempt is not None else None


def _settle(model: Any, held: Claim, **values: object) -> bool:
    """Release the lease and record values, only if this job still holds the row (a lease
    that ran out may have passed it to another worker). Not committed."""
    result = db.session.execute(
        update(model)
        .where(model.id == held.row_id, model.lease_until == held.lease_until)
        .values(lease_until=None, updated_at=utcnow(), **values)
    )
    return result.rowcount == 1


def run(kind: str, model: Any, row_id: int, load: Callable[[int], Work]) -> None:
    """One try of one row: claim, load, send with no transaction open, record the outcome.
    A transient failure schedules the next try with backoff; a permanent one, or the last
    try, leaves the row `failed` and raises `GaveUp`."""
    held = claim(model, row_id)
    if held is None:
        return
    work = load(row_id)
    # End the transaction before sending; detached first, the loaded rows keep their values
    # instead of being expired and read again, one query each.
    db.session.expunge_all()
    db.session.commit()
    started = time.perf_counter()
    try:
        work.send()
        status, error = "sent", None
    except PermanentDeliveryError as failure:
        status, error = "failed", str(failure)
    except DeliveryError as failure:
        status, error = "retry", str(failure)
    except Exception as failure:
        # Not a channel's verdict (bad data, a bug, a timeout): still a try, so it is retried
        # and in the end fails, instead of staying queued for ever.
        log.exception("%s %s try %s raised", kind, row_id, held.attempt)
        status, error = "retry", f"{type(failure).__name__}: {failure}"
    if status == "retry" and held.attempt >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
        status = "failed"
    metrics.JOB_DURATION.labels(kind, status).observe(time.perf_counter() - started)
    if status == "retry":
        delay = retry_delay(held.attempt)
        due = utcnow() + timedelta(seconds=delay)
        if _settle(model, held, last_error=error, next_attempt_at=due):
            db.session.commit()
            metrics.RETRIES.labels(work.channel).inc()
            job_queue().enqueue(kind, row_id, held.attempt + 1, work.priority, delay)
        return
    extra = work.settled(status, held.attempt, error)
    if not _settle(model, held, status=status, last_error=error, **extra):
        db.session.rollback()
        return
    db.session.commit()
    metrics.DELIVERIES.labels(work.channel, status).inc()
    work.after_commit()
    if status == "failed":
        raise GaveUp(f"{kind} {row_id}: {error}")


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
