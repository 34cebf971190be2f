"""Producer webhook events: recorded in the transaction of what they report, then POSTed by
a job, signed, retried with backoff; each carries an id the receiver dedupes by."""

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.channels.http import post
from app.db import rfc3339
from app.extensions import db
from app.jobs import outbox
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
    outbox.enqueue_first_tries("webhook", [(event_id, "normal") for event_id in event_ids])


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The `Notify-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256>` of
    `"<t>.<raw body>"` under the webhook's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass
class WebhookWork:
    """A loaded event and the webhook it goes to."""

    event: WebhookEvent
    webhook: Webhook
    priority: str = "normal"
    channel: str = "webhook"

    @property
    def row_id(self) -> int:
        return self.event.id

    def send(self) -> None:
        raw = json.dumps(self.event.payload, separators=(",", ":")).encode()
        post(
            self.webhook.url,
            raw,
            {
                "Content-Type": "application/json",
                "User-Agent": "notify-webhooks/1",
                SIGNATURE_HEADER: sign(self.webhook.secret, int(time.time()), raw),
            },
        )

    def report(self, status: str, attempt: int, error: str | None) -> None:
        return None


def _load(event_row_ids: Sequence[int]) -> list[WebhookWork]:
    rows = db.session.execute(
        select(WebhookEvent, Webhook)
        .join(Webhook, WebhookEvent.webhook_id == Webhook.id)
        .where(WebhookEvent.id.in_(event_row_ids))
        .order_by(WebhookEvent.id)
    ).all()
    return [WebhookWork(event, webhook) for event, webhook in rows]


WEBHOOK_EVENTS = outbox.Kind("webhook", WebhookEvent, _load)
"""Webhook events as outbox rows; nothing reports on them."""


def send_webhook_event(*event_row_ids: int) -> None:
    """One try of each event (the RQ job); retried with backoff like a delivery."""
    outbox.run(WEBHOOK_EVENTS, event_row_ids)
