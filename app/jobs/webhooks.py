"""Producer webhook events: recorded in the transaction of what they report, then POSTed by
a job, signed, retried with backoff; each carries an id the receiver dedupes by."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.channels.errors import DeliveryError, PermanentDeliveryError
from app.channels.http import post
from app.db import rfc3339
from app.extensions import db
from app.jobs import outbox
from app.jobs.queue import job_queue
from app.models import Webhook, WebhookEvent

SIGNATURE_HEADER = "Notify-Signature"


def record_events(
    session: Session, event_type: str, payloads: list[dict[str, Any]], now: datetime
) -> list[int]:
    """One event per payload for every webhook subscribed to `event_type`, in the caller's
    transaction; the new rows' ids, to queue after the commit."""
    webhooks = [w for w in session.scalars(select(Webhook)) if event_type in w.events]
    if not webhooks or not payloads:
        return []
    rows = []
    for webhook in webhooks:
        for data in payloads:
            event_id = f"evt_{uuid.uuid4().hex}"
            rows.append(
                {
                    "webhook_id": webhook.id,
                    "event_id": event_id,
                    "type": event_type,
                    "payload": {
                        "id": event_id,
                        "type": event_type,
                        "created_at": rfc3339(now),
                        "data": data,
                    },
                    "status": "queued",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_attempt_at": now,
                }
            )
    return list(
        session.execute(
            insert(WebhookEvent.__table__).returning(WebhookEvent.__table__.c.id), rows
        ).scalars()
    )


def enqueue_events(event_ids: list[int]) -> None:
    """After the commit: queue the first try of each event (the relay covers a failure)."""
    queue = job_queue()
    for event_id in event_ids:
        queue.enqueue("webhook", event_id, 1)


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The `Notify-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256>` of
    `"<t>.<raw body>"` under the webhook's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def send_webhook_event(event_row_id: int) -> None:
    """One try of one event; transient failures retry with backoff, a permanent one (a 4xx
    other than 408 and 429) or the last try leaves it `failed` and raises."""
    attempt = outbox.claim(WebhookEvent, event_row_id)
    if attempt is None:
        return
    event, webhook = db.session.execute(
        select(WebhookEvent, Webhook)
        .join(Webhook, WebhookEvent.webhook_id == Webhook.id)
        .where(WebhookEvent.id == event_row_id)
    ).one()
    raw = json.dumps(event.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "notify-webhooks/1",
        SIGNATURE_HEADER: sign(webhook.secret, int(time.time()), raw),
    }
    try:
        post(webhook.url, raw, headers)
    except PermanentDeliveryError as error:
        outbox.settle(WebhookEvent, event_row_id, status="failed", last_error=str(error))
        db.session.commit()
        raise outbox.GaveUp(f"webhook event {event.event_id}: {error}") from error
    except DeliveryError as error:
        delay = outbox.retry_later(WebhookEvent, event_row_id, attempt, str(error))
        if delay is None:
            raise outbox.GaveUp(f"webhook event {event.event_id}: {error}") from error
        job_queue().enqueue("webhook", event_row_id, attempt + 1, delay_seconds=delay)
        return
    outbox.settle(WebhookEvent, event_row_id, status="sent", last_error=None)
    db.session.commit()
