"""Notifications and their per-channel deliveries. Deliveries are written with the
notification, so the channel workers (still to come) find every one that is due."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, JsonDocument, UtcDateTime
from app.extensions import db

UNREAD_PREDICATE = "in_app AND read_at IS NULL AND archived_at IS NULL"
ARCHIVED_PREDICATE = "in_app AND archived_at IS NOT NULL"


class Notification(db.Model):
    """One message to one user. Ids grow with creation, so they are the cursor."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    category: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    action_url: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(8), nullable=False)
    # False for a notification sent only through other channels: it is tracked, not listed.
    in_app: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        # Inbox pages, `after=` catch-up and erasure: one user's rows by id.
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_user_id_category_id", "user_id", "category", "id"),
        # The Unread tab stays small however long the history is.
        Index(
            "ix_notifications_unread",
            "user_id",
            "id",
            postgresql_where=text(UNREAD_PREDICATE),
            sqlite_where=text(UNREAD_PREDICATE),
        ),
        Index(
            "ix_notifications_archived",
            "user_id",
            "id",
            postgresql_where=text(ARCHIVED_PREDICATE),
            sqlite_where=text(ARCHIVED_PREDICATE),
        ),
        # The admin dashboard's hourly in-app counts read one window, not the whole history.
        Index("ix_notifications_created_at", "created_at"),
        # Without AUTOINCREMENT SQLite may hand a deleted newest id out again.
        {"sqlite_autoincrement": True},
    )


class Delivery(db.Model):
    """One channel's delivery of one notification: status, attempts and the last error."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notifications.id", ondelete="CASCADE"), nullable=False
    )
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # What this channel sends when a template made it (email subject, html and text, ...);
    # without one the channel builds its message from the notification.
    content: Mapped[dict[str, str] | None] = mapped_column(JsonDocument)
    # When the next attempt is due (now at first, later after a transient failure).
    next_attempt_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    # Set while a worker holds the delivery; a lease that ran out means that worker died.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_deliveries_notification_channel"),
        # What the relay looks at: due deliveries still queued, never the delivered history.
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # The admin dashboard: hourly counts and delivery times over one window, and the
        # failed deliveries newest first (few among many, hence partial).
        Index("ix_deliveries_created_at", "created_at"),
        Index(
            "ix_deliveries_failed",
            "updated_at",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
        {"sqlite_autoincrement": True},
    )
