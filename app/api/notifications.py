"""Producer routes for sending and for reading a notification's deliveries and receipt."""

import re

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select

from app import defaults, metrics
from app.api import schemas
from app.api.errors import ApiError, NotFound, validation_failed
from app.api.operation import operation
from app.api.responses import dump, respond
from app.db import parse_id, utcnow
from app.extensions import db
from app.jobs.deliveries import enqueue_new
from app.models import Delivery, Notification, Template
from app.realtime import events
from app.services import idempotency
from app.services.send import Send, SendResult, send_notifications
from app.services.templates import TemplateRenderError

bp = Blueprint("notifications", __name__)
bp.record_once(schemas.register_id_converter)
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(schemas.IDEMPOTENCY_KEY_PATTERN)


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise validation_failed(
            {
                IDEMPOTENCY_HEADER: f"1 to {defaults.IDEMPOTENCY_KEY_MAX_LENGTH} printable "
                "ASCII characters"
            }
        )
    return key


def _template_of(body: schemas.SendRequest) -> Template | None:
    """The stored template a send names (None without one); 422 for a send that gives both
    or neither of `template` and `title`, or names no stored template."""
    if body.template is None:
        if body.title is None:
            raise validation_failed({"title": "required unless `template` is given"})
        if body.context:
            raise validation_failed({"context": "only used with `template`"})
        return None
    if body.title is not None or body.body is not None:
        raise validation_failed({"template": "give `template` or `title` and `body`, not both"})
    template = db.session.get(Template, body.template)
    if template is None:
        raise validation_failed({"template": f"no template {body.template!r}"})
    return template


def push_sends(results: list[SendResult]) -> None:
    """After the commit of one or more sends: push their in-app events, all at once. In a
    web process this only queues them (for the bus, or for the sockets when embedded), so the
    sends' coalescer may call it in commit order before the next group commits. It may fail
    (Redis down) without undoing the sends: tabs catch up."""
    counts: dict[str, int] = {}
    for result in results:
        # In commit order, so a user in several sends gets the count after the last.
        counts.update(result.unread_counts)
    notifications = [n for result in results for n in result.notifications]
    events.after_commit(events.announce_created, notifications, counts)


def queue_sends(results: list[SendResult]) -> None:
    """After the commit of one or more sends, and `push_sends`: count them, queue their
    channel deliveries in one pipeline (that may fail, Redis down, without undoing the sends:
    the relay queues them), and wait until their events are on the bus, so that a 201 means
    they are."""
    for result in results:
        metrics.count_send(result)
    events.after_commit(enqueue_new, [d for result in results for d in result.queued_deliveries])
    events.wait_until_published()


@bp.post("/notifications")
@operation(
    "Send a notification",
    tag="Sending",
    auth="api_key",
    body=schemas.SendRequest,
    headers={
        IDEMPOTENCY_HEADER: "Replays the first response for the same key and body within "
        "24 hours; the same key with another body is 409."
    },
    responses={201: schemas.SendResponse},
    errors=(400, 401, 403, 409, 413, 415, 422),
)
def send(body: schemas.SendRequest) -> Response:
    """One notification per recipient, committed before the response. Unknown user ids are
    created; a recipient object also sets that user's fields."""
    now = utcnow()
    key = _idempotency_key()
    if key is not None:
        request_hash = idempotency.fingerprint(request.get_data(cache=True))
        try:
            replay = idempotency.claim(db.session, g.api_key.id, key, request_hash, now)
        except idempotency.IdempotencyConflict as error:
            db.session.rollback()
            raise ApiError(
                409,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different body",
            ) from error
        if replay is not None:
            db.session.rollback()
            response = respond(schemas.SendResponse, replay.body, replay.status)
            response.headers["Idempotent-Replayed"] = "true"
            return response
    outgoing = Send(body, now, _template_of(body))
    try:
        if key is None:
            # Stored, committed and announced with whichever sends wait beside it.
            result = current_app.extensions["send_coalescer"].send(db.session, outgoing)
        else:
            # Claimed in this request's transaction: the send must commit in that same one.
            [result] = send_notifications(db.session, [outgoing])
    except TemplateRenderError as error:
        db.session.rollback()
        raise validation_failed({error.field: error.message}) from error
    payload = dump(schemas.SendResponse, {"notifications": result.notifications})
    if key is not None:
        idempotency.record(db.session, g.api_key.id, key, 201, payload)
        db.session.commit()
        push_sends([result])
        queue_sends([result])
    # Already shaped by the schema: not validated a second time (10,000 items, for a big send).
    response = jsonify(payload)
    response.status_code = 201
    return response


@bp.get("/notifications/<id:notification_id>")
@operation(
    "Get a notification with its deliveries",
    tag="Sending",
    auth="api_key",
    responses={200: schemas.NotificationDetail},
    errors=(401, 403, 404),
)
def get(notification_id: str) -> Response:
    """`read_at` and `seen_at` are the read receipt; `deliveries` has one entry per channel."""
    row_id = parse_id(notification_id)
    notification = db.session.get(Notification, row_id) if row_id is not None else None
    if notification is None:
        raise NotFound("notification")
    deliveries = db.session.scalars(
        select(Delivery).where(Delivery.notification_id == notification.id).order_by(Delivery.id)
    ).all()
    in_app = (
        [
            {
                "channel": "in_app",
                "status": "sent",
                "attempts": 1,
                "last_error": None,
                "updated_at": notification.created_at,
            }
        ]
        if notification.in_app
        else []
    )
    detail = dump(schemas.NotificationOut, notification) | {
        "channels": [entry["channel"] for entry in in_app] + [d.channel for d in deliveries],
        "deliveries": in_app + [dump(schemas.DeliveryOut, d) for d in deliveries],
    }
    return respond(schemas.NotificationDetail, detail)
