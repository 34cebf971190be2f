"""Every table, imported here so Alembic and the app see the whole schema."""

from app.models.credentials import ApiKey
from app.models.idempotency import IdempotencyRecord
from app.models.notifications import Delivery, Notification
from app.models.templates import Template
from app.models.users import Preference, PushSubscription, User
from app.models.webhooks import Webhook, WebhookEvent

__all__ = [
    "ApiKey",
    "Delivery",
    "IdempotencyRecord",
    "Notification",
    "Preference",
    "PushSubscription",
    "Template",
    "User",
    "Webhook",
    "WebhookEvent",
]
