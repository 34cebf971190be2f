"""The delivery job and the relay. A job takes a delivery id, claims the row with a lease,
sends, and records the outcome; it does nothing for a delivery already sent, so running it
twice is harmless. The relay re-queues outbox rows that are due but have no job."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from app.channels.email import send_email
from app.channels.errors import Content
from app.channels.push import send_push
from app.channels.sms import send_sms
from app.db import utcnow
from app.extensions import db
from app.jobs import outbox
from app.jobs.queue import job_queue
from app.jobs.webhooks import enqueue_events, record_events
from app.models import Delivery, Notification, User, WebhookEvent

log = logging.getLogger(__name__)
Sender = Callable[[Notification, User, Content], None]
SENDERS: dict[str, Sender] = {"email": send_email, "sms": send_sms, "push": send_push}


@dataclass
class DeliveryWork:
    """A loaded delivery: the notification and user it sends to."""

    delivery: Delivery
    notification: Notification
    user: User

    @property
    def row_id(self) -> int:
        return self.delivery.id

    @property
    def priority(self) -> str:
        return self.notification.priority

    @property
    def channel(self) -> str:
        return self.delivery.channel

    def send(self) -> None:
        SENDERS[self.delivery.channel](self.notification, self.user, self.delivery.content)

    def report(self, status: str, attempt: int, error: str | None) -> dict[str, Any]:
        """The data of its `delivery.sent` or `delivery.failed` webhook event."""
        return {
            "delivery_id": str(self.delivery.id),
            "notification_id": str(self.notification.id),
            "user_id": self.notification.user_id,
            "channel": self.delivery.channel,
            "status": status,
            "attempts": attempt,
            "last_error": error,
        }


def _load(delivery_ids: Sequence[int]) -> list[DeliveryWork]:
    rows = db.session.execute(
        select(Delivery, Notification, User)
        .join(Notification, Delivery.notification_id == Notification.id)
        .join(User, Notification.user_id == User.id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.id)
    ).all()
    return [DeliveryWork(delivery, notification, user) for delivery, notification, user in rows]


DELIVERIES = outbox.Kind(
    "delivery",
    Delivery,
    _load,
    sent_values=lambda now: {"sent_at": now},
    record=lambda event_type, reports, now: record_events(db.session, event_type, reports, now),
    after_commit=enqueue_events,
)
"""Channel deliveries as outbox rows: sent ones get `sent_at`, and sent or failed ones are
reported to the webhooks that want them."""


def deliver(*delivery_ids: int) -> None:
    """One try of each delivery (the RQ job); see `outbox.run`."""
    outbox.run(DELIVERIES, delivery_ids)


def enqueue_new(deliveries: list[tuple[int, str]]) -> None:
    """After the send's commit: queue the first try of each new (delivery id, priority)."""
    outbox.enqueue_first_tries("delivery", deliveries)


def relay_due() -> int:
    """Queue every delivery and webhook event that is due, not held, and older than the
    grace period; the queue skips those whose try already waits, and queues at once those
    whose retry still waits for an RQ scheduler that is gone. How many were queued."""
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


def retry_failed(delivery_ids: list[int] | None) -> list[int]:
    """Give failed deliveries (these ids, or all) a fresh set of tries and queue the first
    at their notification's priority (the relay would otherwise). Returns their ids; ids
    that are not failed are left alone."""
    requeued = _requeue_failed(delivery_ids)
    priorities = dict(
        db.session.execute(
            select(Delivery.id, Notification.priority)
            .join(Notification, Delivery.notification_id == Notification.id)
            .where(Delivery.id.in_(requeued))
        ).all()
    )
    db.session.rollback()
    enqueue_new([(delivery_id, priorities[delivery_id]) for delivery_id in requeued])
    return requeued


def _requeue_failed(delivery_ids: list[int] | None) -> list[int]:
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
