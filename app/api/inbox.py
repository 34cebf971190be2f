"""The inbox of the user a token names: `/me/...` routes."""

from datetime import datetime

from flask import Blueprint, Response, g

from app.api import schemas
from app.api.errors import NotFound, validation_failed
from app.api.operation import operation
from app.api.responses import respond
from app.db import rfc3339, utcnow
from app.extensions import db
from app.jobs.webhooks import enqueue_events, record_events
from app.models import Notification
from app.realtime import events
from app.services import inbox
from app.services.preferences import get_preferences, update_preferences

bp = Blueprint("inbox", __name__, url_prefix="/me")
bp.record_once(schemas.register_id_converter)
ERRORS = (401, 403)
BODY_ERRORS = (*ERRORS, 400, 413, 415, 422)


def inbox_page(user_id: str, query: schemas.InboxQuery) -> Response:
    """The listing response shared by `/me/notifications` and the producer's view of it."""
    try:
        page = inbox.list_inbox(db.session, user_id, query)
    except inbox.InvalidCursor as error:
        raise validation_failed({"cursor": "not a cursor from this server"}) from error
    return respond(schemas.InboxPage, page)


@bp.get("/notifications")
@operation(
    "List my notifications",
    tag="Inbox",
    auth="user",
    query=schemas.InboxQuery,
    responses={200: schemas.InboxPage},
    errors=(*ERRORS, 422),
)
def list_notifications(query: schemas.InboxQuery) -> Response:
    """Newest first, paged with `cursor`; or, with `after`, what came after that id, oldest
    first: a reconnecting client's catch-up, paged on with `after=<last id received>`."""
    return inbox_page(g.user_id, query)


@bp.get("/unread-count")
@operation(
    "Count my unread notifications",
    tag="Inbox",
    auth="user",
    responses={200: schemas.UnreadCount},
    errors=ERRORS,
)
def unread_count() -> Response:
    """Unread and not archived."""
    return respond(schemas.UnreadCount, {"unread_count": inbox.unread_count(db.session, g.user_id)})


def _own_notification(notification_id: str) -> Notification:
    notification = inbox.find_notification(db.session, g.user_id, notification_id)
    if notification is None:
        raise NotFound("notification")
    return notification


@bp.get("/notifications/<id:notification_id>")
@operation(
    "Get one of my notifications",
    tag="Inbox",
    auth="user",
    responses={200: schemas.NotificationOut},
    errors=(*ERRORS, 404),
)
def get_notification(notification_id: str) -> Response:
    """Another user's notification is 404, as if it did not exist."""
    return respond(schemas.NotificationOut, _own_notification(notification_id))


def _read_events(notification_ids: list[int], read_at: datetime) -> list[int]:
    """`notification.read` webhook events for notifications read just now, in this
    transaction; their ids, to queue after the commit."""
    stamp = rfc3339(read_at)
    return record_events(
        db.session,
        "notification.read",
        [
            {"notification_id": str(i), "user_id": g.user_id, "read_at": stamp}
            for i in notification_ids
        ],
        read_at,
    )


def _state_change(summary: str, path: str, change: str) -> None:
    """Register POST /me/notifications/<id>/<change>: read, unread, archive, unarchive."""

    @operation(
        summary,
        tag="Inbox",
        auth="user",
        responses={200: schemas.NotificationOut},
        errors=(*ERRORS, 404),
    )
    def view(notification_id: str) -> Response:
        notification = _own_notification(notification_id)
        now = utcnow()
        first_read = change == "read" and notification.read_at is None
        if change in {"read", "unread"}:
            inbox.set_read(notification, change == "read", now)
        else:
            inbox.set_archived(notification, change == "archive", now)
        webhook_events = _read_events([notification.id], now) if first_read else []
        db.session.commit()
        events.after_commit(events.announce_updated, notification)
        events.after_commit(enqueue_events, webhook_events)
        return respond(schemas.NotificationOut, notification)

    view.__doc__ = f"Returns the updated notification. {summary}; repeating it changes nothing."
    bp.add_url_rule(path, endpoint=f"mark_{change}", view_func=view, methods=["POST"])


_state_change("Mark read", "/notifications/<id:notification_id>/read", "read")
_state_change("Mark unread", "/notifications/<id:notification_id>/unread", "unread")
_state_change("Archive", "/notifications/<id:notification_id>/archive", "archive")
_state_change("Unarchive", "/notifications/<id:notification_id>/unarchive", "unarchive")


@bp.post("/notifications/read-all")
@operation(
    "Mark all read",
    tag="Inbox",
    auth="user",
    body=schemas.ReadAllRequest,
    body_required=False,
    responses={200: schemas.ReadAllResponse},
    errors=BODY_ERRORS,
)
def read_all(body: schemas.ReadAllRequest) -> Response:
    """Every unread notification, or those of one `category`."""
    now = utcnow()
    updated = inbox.read_all(db.session, g.user_id, body.category, now)
    webhook_events = _read_events(updated, now)
    db.session.commit()
    count = inbox.unread_count(db.session, g.user_id)
    events.after_commit(events.announce_many_updated, g.user_id, updated, "read_at", now, count)
    events.after_commit(enqueue_events, webhook_events)
    return respond(schemas.ReadAllResponse, {"updated": len(updated), "unread_count": count})


@bp.post("/notifications/seen")
@operation(
    "Mark seen",
    tag="Inbox",
    auth="user",
    body=schemas.SeenRequest,
    responses={200: schemas.SeenResponse},
    errors=BODY_ERRORS,
)
def seen(body: schemas.SeenRequest) -> Response:
    """Marks those of `ids` that are mine as shown to me; other ids are ignored."""
    now = utcnow()
    updated = inbox.mark_seen(db.session, g.user_id, body.ids, now)
    db.session.commit()
    events.after_commit(events.announce_many_updated, g.user_id, updated, "seen_at", now)
    count = inbox.unread_count(db.session, g.user_id)
    return respond(schemas.SeenResponse, {"updated": len(updated), "unread_count": count})


@bp.get("/preferences")
@operation(
    "Get my preferences",
    tag="Preferences",
    auth="user",
    responses={200: schemas.PreferencesOut},
    errors=ERRORS,
)
def preferences() -> Response:
    """Every channel's global switch, and the categories that override any."""
    return respond(schemas.PreferencesOut, get_preferences(db.session, g.user_id))


@bp.put("/preferences")
@operation(
    "Update my preferences",
    tag="Preferences",
    auth="user",
    body=schemas.PreferencesUpdate,
    responses={200: schemas.PreferencesOut},
    errors=BODY_ERRORS,
)
def put_preferences(body: schemas.PreferencesUpdate) -> Response:
    """A partial update. A channel off globally is off for every category; `critical`
    notifications are delivered anyway."""
    result = update_preferences(db.session, g.user_id, body)
    db.session.commit()
    return respond(schemas.PreferencesOut, result)
