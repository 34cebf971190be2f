"""Web Push: the browser's subscriptions and the server's public VAPID key."""

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import delete, select

from app.api import schemas
from app.api.errors import ApiError, NotFound
from app.api.operation import operation
from app.api.responses import no_content, respond
from app.db import utcnow
from app.extensions import db
from app.models import PushSubscription

bp = Blueprint("push", __name__)
BODY_ERRORS = (400, 401, 403, 413, 415, 422)


def _subscription_out(subscription: PushSubscription) -> dict[str, object]:
    return {
        "endpoint": subscription.endpoint,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        "created_at": subscription.created_at,
    }


@bp.post("/me/push-subscriptions")
@operation(
    "Add a Web Push subscription",
    tag="Push",
    auth="user",
    body=schemas.PushSubscriptionIn,
    responses={200: schemas.PushSubscriptionOut, 201: schemas.PushSubscriptionOut},
    errors=BODY_ERRORS,
)
def subscribe(body: schemas.PushSubscriptionIn) -> Response:
    """Send the browser's `PushSubscription.toJSON()`. An endpoint already stored moves to
    this user with the new keys (200); a new one is 201."""
    subscription = db.session.scalar(
        select(PushSubscription).where(PushSubscription.endpoint == body.endpoint).with_for_update()
    )
    created = subscription is None
    if subscription is None:
        subscription = PushSubscription(endpoint=body.endpoint, created_at=utcnow())
        db.session.add(subscription)
    subscription.user_id = g.user_id
    subscription.p256dh = body.keys.p256dh
    subscription.auth = body.keys.auth
    subscription.user_agent = request.headers.get("User-Agent", "")[:512] or None
    db.session.commit()
    return respond(
        schemas.PushSubscriptionOut, _subscription_out(subscription), 201 if created else 200
    )


@bp.delete("/me/push-subscriptions")
@operation(
    "Remove a Web Push subscription",
    tag="Push",
    auth="user",
    body=schemas.PushUnsubscribe,
    responses={204: None},
    errors=(*BODY_ERRORS, 404),
)
def unsubscribe(body: schemas.PushUnsubscribe) -> Response:
    """Only the caller's own subscription can be removed."""
    removed = db.session.execute(
        delete(PushSubscription).where(
            PushSubscription.endpoint == body.endpoint, PushSubscription.user_id == g.user_id
        )
    )
    if removed.rowcount == 0:
        raise NotFound("push subscription")
    db.session.commit()
    return no_content()


@bp.get("/push/vapid-public-key")
@operation(
    "Get the VAPID public key",
    tag="Push",
    auth=None,
    responses={200: schemas.VapidKey},
    errors=(404,),
)
def vapid_public_key() -> Response:
    """For the browser's `pushManager.subscribe({applicationServerKey})`. 404 when this
    server has no VAPID keys configured."""
    key = current_app.config["VAPID_PUBLIC_KEY"]
    if not key:
        raise ApiError(404, "push_not_configured", "this server has no VAPID keys configured")
    return respond(schemas.VapidKey, {"key": key})
