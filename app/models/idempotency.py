"""Idempotency records: the first response to each (API key, Idempotency-Key)."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, JsonDocument, UtcDateTime
from app.extensions import db


class IdempotencyRecord(db.Model):
    """Written in the same transaction as the send it guards, so both commit or neither."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp(), index=True
    )
