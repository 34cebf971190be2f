"""Producer webhook endpoints."""

from datetime import datetime

from sqlalchemy import String, Text, func
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
