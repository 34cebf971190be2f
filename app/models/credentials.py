"""Producer API keys. Only a hash of each key is stored."""

from datetime import datetime

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, UtcDateTime
from app.extensions import db


class ApiKey(db.Model):
    """A producer credential: a public lookup prefix and the SHA-256 of the whole key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    lookup: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
