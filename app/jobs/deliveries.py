"""The delivery job and the relay. A job takes a delivery id, claims the row with a lease,
sends, and records the outcome; it does nothing for a delivery already sent, so running it
twice is harmless. The relay re-queues outbox rows that are due but have no job."""

import logging
from collections.abc import Callable

from flask import Flask
from sqlalchemy import select, update

from app.channels.email import send_email
from app.channels.errors import Content, DeliveryError, PermanentDeliveryError
from app.channels.push import send_push
from app.channels.sms import send_sms
from app.db import utcnow
from app.extensions import db, socketio
from app.jobs import outbox
from app.jobs.queue import job_queue
from app.jobs.webhooks import enqueue_events, record_events
from app.models import Delivery, Notification, User, WebhookEvent

log = logging.getLogger(__name__)
Sender = Callable[[Notification, User, Content], None]
SENDERS: dict[str, Sender] = {"email": send_email, "sms": send_sms, "push": send_push}


def deliver(delivery_id: int) -> None:
    """One try of one delivery. Transient failures schedule the next try with backoff; a
    permanent failure, or the last try, leaves the delivery `failed` and raises. Sent and
    failed deliveries are reported to the webhooks that want them."""
    attempt = outbox.claim(Delivery, delivery_id)
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
    except PermanentDeliveryError as error:
        _finish(delivery, notification, attempt, "failed", str(error))
        raise outbox.GaveUp(f"{channel} delivery {delivery_id}: {error}") from error
    except DeliveryError as error:
        delay = outbox.retry_later(Delivery, delivery_id, attempt, str(error))
        if delay is None:
            _report(delivery, notification, attempt, "failed", str(error))
            raise outbox.GaveUp(f"{channel} delivery {delivery_id}: {error}") from error
        job_queue().enqueue("delivery", delivery_id, attempt + 1, notification.priority, delay)
        log.warning(
            "%s delivery %s try %s failed, retrying in %.0fs: %s",
            channel,
            delivery_id,
            attempt,
            delay,
            error,
        )
        return
    _finish(delivery, notification, attempt, "sent", None)


def _finish(
    delivery: Delivery, notification: Notification, attempt: int, status: str, error: str | None
) -> None:
    values: dict[str, object] = {"status": status, "last_error": error}
    if status == "sent":
        values["sent_at"] = utcnow()
    outbox.settle(Delivery, delivery.id, **values)
    _report(delivery, notification, attempt, status, error)


def _report(
    delivery: Delivery, notification: Notification, attempt: int, status: str, error: str | None
) -> None:
    """Commit the outcome with its webhook events (`delivery.sent`, `delivery.failed`), then
    queue them."""
    events = record_events(
        db.session,
        f"delivery.{status}",
        [
            {
                "delivery_id": str(delivery.id),
                "notification_id": str(notification.id),
                "user_id": notification.user_id,
                "channel": delivery.channel,
                "status": status,
                "attempts": attempt,
                "last_error": error,
            }
        ],
        utcnow(),
    )
    db.session.commit()
    enqueue_events(events)


def enqueue_new(deliveries: list[tuple[int, str]]) -> None:
    """After the send's commit: queue the first try of each new (delivery id, priority).
    If this fails (Redis is down), the relay queues them later."""
    queue = job_queue()
    for delivery_id, priority in deliveries:
        queue.enqueue("delivery", delivery_id, 1, priority)


def relay_due() -> int:
    """Queue every delivery and webhook event that is due, not held, and older than the
    grace period; the queue skips those whose try already waits. How many were queued."""
    now = utcnow()
    deliveries = db.session.execute(
        outbox.due(
            select(Delivery.id, Delivery.attempts, Notification.priority).join(
                Notification, Delivery.notification_id == Notification.id
            ),
            Delivery,
            now,
        )
    ).all()
    events = db.session.execute(
        outbox.due(select(WebhookEvent.id, WebhookEvent.attempts), WebhookEvent, now)
    ).all()
    db.session.rollback()
    queue = job_queue()
    queued = sum(
        queue.enqueue("delivery", row.id, row.attempts + 1, row.priority) for row in deliveries
    ) + sum(queue.enqueue("webhook", row.id, row.attempts + 1) for row in events)
    if queued:
        log.info("relay queued %s due jobs", queued)
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
                # the due rows stay in their tables.
                log.exception("relay pass failed")
        socketio.sleep(app.config["RELAY_INTERVAL_SECONDS"])
