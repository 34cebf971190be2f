"""Producer webhook endpoints, and the events queued for them."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Identity, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, JsonDocument, UtcDateTime
from app.extensions import db


class Webhook(db.Model):
    """A URL that receives signed event POSTs for the events it subscribed to."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[list[str]] = mapped_column(JsonDocument, nullable=False)
    # Kept in the clear: each event is signed with it.
    secret: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )


class WebhookEvent(db.Model):
    """One event for one webhook: the exact body to POST, and its delivery state (an outbox
    row, worked like a channel delivery)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False, index=True
    )
    event_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (
        Index(
            "ix_webhook_events_due",
            "next_attempt_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # What retention deletes: events that were sent or failed, by age.
        Index(
            "ix_webhook_events_settled",
            "updated_at",
            postgresql_where=text("status <> 'queued'"),
            sqlite_where=text("status <> 'queued'"),
        ),
        {"sqlite_autoincrement": True},
    )
