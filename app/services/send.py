"""Sending: one notification per recipient, written in bulk within the caller's transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.api.schemas import SendRequest
from app.models import Delivery, Notification
from app.services.users import upsert_users


@dataclass(frozen=True)
class NewNotification:
    """A stored notification: its id and its recipient."""

    id: int
    user_id: str


def _recipient_rows(request: SendRequest) -> list[dict[str, Any]]:
    """One upsert row per distinct user, in first-seen order; inline fields merge, later win."""
    rows: dict[str, dict[str, Any]] = {}
    for recipient in request.to:
        row = rows.setdefault(recipient.user_id, {"id": recipient.user_id})
        row.update(recipient.model_dump(include=recipient.model_fields_set - {"user_id"}))
    return list(rows.values())


def send_notifications(
    session: Session, request: SendRequest, now: datetime
) -> list[NewNotification]:
    """Store one notification per distinct recipient (creating unknown users) and a queued
    delivery for each channel other than in-app. Nothing is committed here."""
    recipients = _recipient_rows(request)
    upsert_users(session, recipients, now)
    in_app = "in_app" in request.channels
    rows = [
        {
            "user_id": recipient["id"],
            "category": request.category,
            "title": request.title,
            "body": request.body,
            "data": request.data,
            "action_url": request.action_url,
            "priority": request.priority,
            "in_app": in_app,
            "created_at": now,
        }
        for recipient in recipients
    ]
    statement = insert(Notification.__table__).returning(
        Notification.__table__.c.id, sort_by_parameter_order=True
    )
    ids = list(session.execute(statement, rows).scalars())
    sent = [
        NewNotification(id=notification_id, user_id=row["user_id"])
        for notification_id, row in zip(ids, rows, strict=True)
    ]
    other_channels = [channel for channel in request.channels if channel != "in_app"]
    if other_channels:
        # RETURNING batches the rows into multi-row INSERTs, as for the notifications.
        session.execute(
            insert(Delivery.__table__).returning(Delivery.__table__.c.id),
            [
                {
                    "notification_id": notification.id,
                    "channel": channel,
                    "status": "queued",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for notification in sent
                for channel in other_channels
            ],
        ).all()
    return sent
