"""Recipients and what belongs to each of them: preferences and Web Push subscriptions."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, JsonDocument, UtcDateTime
from app.extensions import db


class User(db.Model):
    """A recipient, keyed by the producer's own user id."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp()
    )
    # Unread, unarchived in-app notifications. Kept by the database's triggers on
    # notifications (migration 7d3e9a41c2b8), whoever writes them; never set it here. On
    # PostgreSQL half of each page stays free for their updates (migration 62c42248f1b7).
    unread_count: Mapped[int] = mapped_column(Integer, server_default="0")


class Preference(db.Model):
    """A user's channel switches: globally and per category. Absent means on."""

    __tablename__ = "preferences"

    user_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channels: Mapped[dict[str, bool]] = mapped_column(JsonDocument, default=dict)
    categories: Mapped[dict[str, dict[str, bool]]] = mapped_column(JsonDocument, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp()
    )


class PushSubscription(db.Model):
    """One browser's Web Push subscription."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(String(256))
    auth: Mapped[str] = mapped_column(String(256))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp()
    )
