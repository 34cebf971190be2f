"""The delivery job and the relay. A job takes a delivery id, claims the row with a lease,
sends, and records the outcome; it does nothing for a delivery already sent, so running it
twice is harmless. The relay re-enqueues deliveries that are due but have no job."""

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import or_, select, update

from app.channels.email import send_email
from app.channels.errors import Content, DeliveryError, PermanentDeliveryError
from app.channels.sms import send_sms
from app.db import utcnow
from app.extensions import db, socketio
from app.jobs.queue import job_queue
from app.models import Delivery, Notification, User

log = logging.getLogger(__name__)
Sender = Callable[[Notification, User, Content], None]
SENDERS: dict[str, Sender] = {"email": send_email, "sms": send_sms}


class DeliveryFailed(Exception):
    """A delivery is `failed` for good; raised so the job ends in RQ's failed registry."""


def retry_delay(attempt: int) -> float:
    """Seconds before try `attempt + 1`: exponential from the base, capped, full jitter."""
    config = current_app.config
    ceiling = min(
        config["DELIVERY_RETRY_MAX_SECONDS"],
        config["DELIVERY_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def _claim(delivery_id: int, now: datetime) -> int | None:
    """Take the delivery for one try: the new attempt number, or None when it is not due,
    already held by a live worker, or done."""
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == "queued",
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .values(attempts=Delivery.attempts + 1, lease_until=now + lease, updated_at=now)
        .returning(Delivery.attempts)
    ).scalar()
    db.session.commit()
    return claimed


def _record(delivery_id: int, **values: object) -> None:
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(lease_until=None, updated_at=utcnow(), **values)
    )
    db.session.commit()


def deliver(delivery_id: int) -> None:
    """One try of one delivery. Transient failures schedule the next try with backoff; a
    permanent failure, or the last try, leaves the delivery `failed` and raises."""
    attempt = _claim(delivery_id, utcnow())
    if attempt is None:
        return
    delivery, notification, user = db.session.execute(
        select(Delivery, Notification, User)
        .join(Notification, Delivery.notification_id == Notification.id)
        .join(User, Notification.user_id == User.id)
        .where(Delivery.id == delivery_id)
    ).one()
    channel = delivery.channel
    try:
        SENDERS[channel](notification, user, delivery.content)
    except DeliveryError as error:
        last_try = attempt >= current_app.config["DELIVERY_MAX_ATTEMPTS"]
        if isinstance(error, PermanentDeliveryError) or last_try:
            _record(delivery_id, status="failed", last_error=str(error))
            raise DeliveryFailed(f"{channel} delivery {delivery_id}: {error}") from error
        delay = retry_delay(attempt)
        _record(
            delivery_id,
            last_error=str(error),
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )
        job_queue().enqueue_delivery(delivery_id, attempt + 1, notification.priority, delay)
        log.warning(
            "%s delivery %s try %s failed, retrying in %.0fs: %s",
            channel,
            delivery_id,
            attempt,
            delay,
            error,
        )
        return
    now = utcnow()
    _record(delivery_id, status="sent", sent_at=now, last_error=None)


def enqueue_new(deliveries: list[tuple[int, str]]) -> None:
    """After the send's commit: queue the first try of each new (delivery id, priority).
    If this fails (Redis is down), the relay queues them later."""
    queue = job_queue()
    for delivery_id, priority in deliveries:
        queue.enqueue_delivery(delivery_id, 1, priority)


def relay_due(now: datetime | None = None) -> int:
    """Queue every delivery that is due, not held, and older than the grace period; the
    queue skips those whose try already waits. Returns how many were queued."""
    config = current_app.config
    now = now or utcnow()
    cutoff = now - timedelta(seconds=config["RELAY_GRACE_SECONDS"])
    due = db.session.execute(
        select(Delivery.id, Delivery.attempts, Notification.priority)
        .join(Notification, Delivery.notification_id == Notification.id)
        .where(
            Delivery.status == "queued",
            Delivery.next_attempt_at <= cutoff,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(config["RELAY_BATCH"])
    ).all()
    db.session.rollback()
    queue = job_queue()
    queued = sum(queue.enqueue_delivery(row.id, row.attempts + 1, row.priority) for row in due)
    if queued:
        log.info("relay queued %s due deliveries", queued)
    return queued


def requeue_failed(delivery_ids: list[int] | None) -> list[int]:
    """Put failed deliveries (these ids, or all) back to `queued` with fresh tries; the relay
    or the caller queues them. Returns their ids."""
    statement = update(Delivery).where(Delivery.status == "failed")
    if delivery_ids is not None:
        statement = statement.where(Delivery.id.in_(delivery_ids))
    now = utcnow()
    ids = list(
        db.session.scalars(
            statement.values(
                status="queued",
                attempts=0,
                lease_until=None,
                next_attempt_at=now,
                updated_at=now,
            ).returning(Delivery.id)
        )
    )
    db.session.commit()
    return ids


def relay_forever(app: Flask) -> None:
    """Run `relay_due` every RELAY_INTERVAL_SECONDS for as long as the process lives (a
    background task of `worker.py`, or of the web process in the embedded mode)."""
    while True:
        with app.app_context():
            try:
                relay_due()
            except Exception:
                # Redis or the database is down: the next pass tries again. Nothing is lost,
                # the due deliveries stay in the table.
                log.exception("relay pass failed")
        socketio.sleep(app.config["RELAY_INTERVAL_SECONDS"])
