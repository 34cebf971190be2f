"""Web Push with VAPID (pywebpush), to every browser the user subscribed; or to the log
(`console`) when the server has no VAPID keys. A subscription the push service calls gone
(404, 410) is deleted."""

import json
import logging

from flask import current_app
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select

from app.channels.destinations import check_public
from app.channels.errors import (
    Content,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from app.channels.http import without_query
from app.db import rfc3339
from app.extensions import db
from app.models import Notification, PushSubscription, User

log = logging.getLogger(__name__)
GONE = {404, 410}


def push_payload(notification: Notification, content: Content) -> str:
    """What the service worker receives: enough to show the notification and open its link."""
    parts = content or {"title": notification.title, "body": notification.body}
    return json.dumps(
        {
            "id": str(notification.id),
            "title": parts["title"],
            "body": parts.get("body"),
            "action_url": notification.action_url,
            "category": notification.category,
            "data": notification.data,
            "created_at": rfc3339(notification.created_at),
        }
    )


def send_push(notification: Notification, user: User, content: Content) -> None:
    """Deliver one notification to each of the user's push subscriptions. Sent when at least
    one browser took it; retried when none did and a failure was transient."""
    config = current_app.config
    subscriptions = db.session.scalars(
        select(PushSubscription).where(PushSubscription.user_id == user.id)
    ).all()
    if not subscriptions:
        raise PermanentDeliveryError("no address: the user has no push subscription")
    if config["PUSH_BACKEND"] == "console":
        log.info("push (console backend) to user %s: %s", user.id, notification.title)
        return
    payload = push_payload(notification, content)
    delivered, transient, failures, gone = 0, False, [], []
    for subscription in subscriptions:
        try:
            check_public(subscription.endpoint)
            webpush(
                subscription_info={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                data=payload,
                vapid_private_key=config["VAPID_PRIVATE_KEY"],
                vapid_claims={"sub": config["VAPID_SUBJECT"]},
                timeout=config["CHANNEL_TIMEOUT_SECONDS"],
                ttl=config["PUSH_TTL_SECONDS"],
            )
            delivered += 1
        except WebPushException as error:
            status = error.response.status_code if error.response is not None else None
            if status in GONE:
                gone.append(subscription.id)
            transient |= status is None or status >= 500 or status == 429
            failures.append(f"{status or 'no response'}: {error.message[:200]}")
        except DeliveryError as error:
            transient |= isinstance(error, TransientDeliveryError)
            failures.append(str(error))
        except (OSError, ValueError) as error:
            transient = True
            # The error text names the endpoint, query included, which may carry a token.
            failures.append(f"{type(error).__name__} from {without_query(subscription.endpoint)}")
    if gone:
        db.session.execute(delete(PushSubscription).where(PushSubscription.id.in_(gone)))
        db.session.commit()
    if delivered:
        return
    failure = TransientDeliveryError if transient else PermanentDeliveryError
    raise failure("push failed for every subscription: " + "; ".join(failures))
