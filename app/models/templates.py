"""Notification templates: per-channel parts and locale variants, Jinja2 source."""

from datetime import datetime
from typing import Any

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import JsonDocument, UtcDateTime
from app.extensions import db


class Template(db.Model):
    """A template, keyed by the producer's own name for it."""

    __tablename__ = "templates"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    channels: Mapped[dict[str, dict[str, str]]] = mapped_column(JsonDocument, nullable=False)
    locales: Mapped[dict[str, dict[str, dict[str, str]]]] = mapped_column(
        JsonDocument, nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, server_default=func.current_timestamp()
    )

    def parts_for(self, locale: str | None) -> dict[str, dict[str, Any]]:
        """The channel parts for a locale: the most specific variant (`pt-BR`, then `pt`)
        over the defaults, part by part."""
        parts = {channel: dict(fields) for channel, fields in self.channels.items()}
        if locale:
            tags = locale.split("-")
            for length in range(1, len(tags) + 1):
                variant = self.locales.get("-".join(tags[:length])) or {}
                for channel, fields in variant.items():
                    parts.setdefault(channel, {}).update(fields)
        return parts
