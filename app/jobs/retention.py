"""Retention: notifications (their deliveries go with them), expired idempotency records and
settled webhook events are deleted once they are kept no longer, in batches that are each
their own short transaction, so neither the inbox nor the senders wait on a long lock."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Row, Select, delete, select, tuple_

from app import defaults
from app.db import utcnow
from app.extensions import db
from app.models import IdempotencyRecord, Notification, WebhookEvent
from app.realtime import events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    """How many rows one retention pass deleted."""

    notifications: int
    idempotency_records: int
    webhook_events: int


def _batches(
    victims: Select, target: ColumnElement, model: Any, returning: tuple = ()
) -> Iterator[tuple[int, list[Row]]]:
    """Delete the rows `victims` selects, one batch per transaction, until none are left;
    yields what each batch returned."""
    batch = current_app.config["RETENTION_BATCH"]
    # SKIP LOCKED: two workers purging at once take different rows instead of queueing.
    chosen = victims.limit(batch).with_for_update(skip_locked=True)
    while True:
        statement = delete(model).where(target.in_(chosen))
        if returning:
            statement = statement.returning(*returning)
        result = db.session.execute(statement)
        rows = result.all() if returning else []
        count = len(rows) if returning else result.rowcount
        db.session.commit()
        yield count, rows
        if count < batch:
            return


def _purge_notifications(cutoff: datetime) -> int:
    victims = select(Notification.id).where(Notification.created_at < cutoff)
    returning = (
        Notification.user_id,
        Notification.in_app,
        Notification.read_at,
        Notification.archived_at,
    )
    total = 0
    for count, rows in _batches(victims, Notification.id, Notification, returning):
        total += count
        # Deleting unread notifications changes the bell's count: say so to open tabs.
        affected = sorted(
            {row.user_id for row in rows if row.in_app and not (row.read_at or row.archived_at)}
        )
        if affected:
            events.after_commit(events.announce_unread_counts, affected)
    return total


def _purge_idempotency_records(cutoff: datetime) -> int:
    identity = tuple_(IdempotencyRecord.api_key_id, IdempotencyRecord.key)
    victims = select(IdempotencyRecord.api_key_id, IdempotencyRecord.key).where(
        IdempotencyRecord.created_at < cutoff
    )
    return sum(count for count, _ in _batches(victims, identity, IdempotencyRecord))


def _purge_webhook_events(cutoff: datetime) -> int:
    victims = select(WebhookEvent.id).where(
        WebhookEvent.status != "queued", WebhookEvent.updated_at < cutoff
    )
    return sum(count for count, _ in _batches(victims, WebhookEvent.id, WebhookEvent))


def purge(now: datetime) -> Purged:
    """Delete everything past its retention as of `now`; how many rows of each kind."""
    config = current_app.config
    days = config["RETENTION_DAYS"]
    purged = Purged(
        notifications=_purge_notifications(now - timedelta(days=days)) if days > 0 else 0,
        idempotency_records=_purge_idempotency_records(
            now - timedelta(seconds=defaults.IDEMPOTENCY_TTL_SECONDS)
        ),
        webhook_events=_purge_webhook_events(
            now - timedelta(days=config["WEBHOOK_EVENT_RETENTION_DAYS"])
        ),
    )
    if any(vars(purged).values()):
        log.info("retention deleted %s", vars(purged))
    return purged


def purge_now() -> Purged:
    """`purge` as of this moment (the periodic job)."""
    return purge(utcnow())
