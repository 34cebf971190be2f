"""Web Push: the browser's subscriptions and the server's public VAPID key."""

import re

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import delete

from app.api import schemas
from app.api.errors import ApiError, NotFound
from app.api.operation import operation
from app.api.responses import no_content, respond
from app.db import insert_for, utcnow
from app.extensions import db
from app.models import PushSubscription

bp = Blueprint("push", __name__)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
BODY_ERRORS = (400, 401, 403, 413, 415, 422)


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
    now = utcnow()
    values = {
        "user_id": g.user_id,
        "p256dh": body.keys.p256dh,
        "auth": body.keys.auth,
        "user_agent": CONTROL_CHARACTERS.sub("", request.headers.get("User-Agent", ""))[:512]
        or None,
    }
    # One statement, so two first subscriptions of one endpoint at once cannot collide.
    insert = insert_for(db.session, PushSubscription.__table__)
    stored = db.session.execute(
        insert.values(endpoint=body.endpoint, created_at=now, **values)
        .on_conflict_do_update(index_elements=["endpoint"], set_=values)
        .returning(PushSubscription.__table__.c.created_at)
    ).one()
    db.session.commit()
    subscription = {
        "endpoint": body.endpoint,
        "keys": {"p256dh": body.keys.p256dh, "auth": body.keys.auth},
        "created_at": stored.created_at,
    }
    return respond(
        schemas.PushSubscriptionOut, subscription, 201 if stored.created_at == now else 200
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
