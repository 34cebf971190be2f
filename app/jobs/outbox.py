"""The outbox mechanics shared by channel deliveries and webhook events: rows committed with
the work that caused them, claimed by one job at a time with a lease, retried with backoff,
and re-queued by the relay when their job was lost.

A row type takes part by having the columns `id`, `status` (`queued`, `sent`, `failed`, ...),
`attempts`, `last_error`, `next_attempt_at`, `lease_until` and `updated_at`.
"""

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, or_, update

from app.db import utcnow
from app.extensions import db


class GaveUp(Exception):
    """A row is `failed` for good; raised so its job ends in RQ's failed registry."""


def retry_delay(attempt: int) -> float:
    """Seconds before try `attempt + 1`: exponential from the base, capped, full jitter."""
    config = current_app.config
    ceiling = min(
        config["DELIVERY_RETRY_MAX_SECONDS"],
        config["DELIVERY_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def claim(model: Any, row_id: int) -> int | None:
    """Take the row for one try: the new attempt number, or None when it is done or held by
    a live worker. Committed at once, so the lease holds while the work happens."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    attempt = db.session.execute(
        update(model)
        .where(
            model.id == row_id,
            model.status == "queued",
            or_(model.lease_until.is_(None), model.lease_until < now),
        )
        .values(attempts=model.attempts + 1, lease_until=now + lease, updated_at=now)
        .returning(model.attempts)
    ).scalar()
    db.session.commit()
    return attempt


def settle(model: Any, row_id: int, **values: object) -> None:
    """Release the lease and record the outcome (not committed: the caller may add to it)."""
    db.session.execute(
        update(model)
        .where(model.id == row_id)
        .values(lease_until=None, updated_at=utcnow(), **values)
    )


def retry_later(model: Any, row_id: int, attempt: int, error: str) -> float | None:
    """After a transient failure: schedule the next try and return its delay, or, after the
    last try, mark the row `failed` and return None. Committed."""
    if attempt >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
        settle(model, row_id, status="failed", last_error=error)
        db.session.commit()
        return None
    delay = retry_delay(attempt)
    settle(model, row_id, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay))
    db.session.commit()
    return delay


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


Enqueue = Callable[[int, int, str], bool]
