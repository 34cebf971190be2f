"""What the server pushes to a user's room. Call these only after the commit, so nothing is
announced that could still roll back.

With REDIS_URL every emit goes through Redis and reaches the user's sockets on every web
process; the same functions work in a worker process, which has no sockets of its own.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import current_app
from flask_socketio import SocketIO
from pydantic import TypeAdapter
from sqlalchemy import func, select

from app.api.responses import dump
from app.api.schemas import NotificationOut
from app.extensions import db
from app.models import Notification
from app.services.inbox import unread_condition


def user_room(user_id: str) -> str:
    """The room every socket of one user joins."""
    return f"user:{user_id}"


def _socketio() -> SocketIO:
    return current_app.extensions["socketio"]


def unread_counts(user_ids: Iterable[str]) -> dict[str, int]:
    """Unread counts of many users in one query; users with none are 0."""
    wanted = list(dict.fromkeys(user_ids))
    counts = dict.fromkeys(wanted, 0)
    if wanted:
        rows = db.session.execute(
            select(Notification.user_id, func.count())
            .where(Notification.user_id.in_(wanted), *unread_condition())
            .group_by(Notification.user_id)
        )
        counts.update({user_id: count for user_id, count in rows})
    return counts


def announce_created(notification_ids: list[int]) -> None:
    """Push `notification` and then the new `unread_count` to each recipient: two queries
    however many recipients there are. Notifications not in the inbox are not pushed."""
    if not notification_ids:
        return
    notifications = db.session.scalars(
        select(Notification)
        .where(Notification.id.in_(notification_ids), Notification.in_app)
        .order_by(Notification.id)
    ).all()
    counts = unread_counts(n.user_id for n in notifications)
    socketio = _socketio()
    for notification in notifications:
        socketio.emit(
            "notification", dump(NotificationOut, notification), to=user_room(notification.user_id)
        )
    for user_id, count in counts.items():
        socketio.emit("unread_count", {"unread_count": count}, to=user_room(user_id))


def announce_count(user_id: str, count: int) -> None:
    """Push the user's unread count."""
    _socketio().emit("unread_count", {"unread_count": count}, to=user_room(user_id))


def announce_updated(notification: Notification) -> None:
    """Push a notification's new read, seen and archive state."""
    state = dump(NotificationOut, notification)
    _socketio().emit(
        "notification_updated",
        {key: state[key] for key in ("id", "seen_at", "read_at", "archived_at")},
        to=user_room(notification.user_id),
    )


def announce_many_updated(user_id: str, ids: list[int], field: str, when: datetime) -> None:
    """Push one `notification_updated` for many ids that got the same `field` (`read_at`
    after a read-all, `seen_at` after a seen)."""
    if not ids:
        return
    payload: dict[str, Any] = {"ids": [str(i) for i in ids], field: _rfc3339(when)}
    _socketio().emit("notification_updated", payload, to=user_room(user_id))


def _rfc3339(moment: datetime) -> str:
    return _TIMESTAMP.dump_python(moment, mode="json")


_TIMESTAMP = TypeAdapter(datetime)
