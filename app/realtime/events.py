"""What the server pushes to a user's room. Call these only after the commit, so nothing is
announced that could still roll back.

With REDIS_URL every emit goes through Redis and reaches the user's sockets on every web
process; the same functions work in a worker process, which has no sockets of its own.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from flask_socketio import SocketIO

from app.api.responses import dump
from app.api.schemas import NotificationOut
from app.db import rfc3339
from app.extensions import db
from app.models import Notification
from app.realtime.bus import BatchingRedisManager
from app.services.inbox import unread_count, unread_counts
from app.services.send import StoredNotification

log = logging.getLogger(__name__)


def user_room(user_id: str) -> str:
    """The room every socket of one user joins."""
    return f"user:{user_id}"


def _socketio() -> SocketIO:
    return current_app.extensions["socketio"]


def _emit_all(emits: list[tuple[str, Any, str]]) -> None:
    """Emit each (event, data, room), on the Redis bus in as few messages as it takes."""
    socketio = _socketio()
    manager = socketio.server.manager
    if isinstance(manager, BatchingRedisManager):
        manager.emit_many(emits)
        return
    for event, data, room in emits:
        socketio.emit(event, data, to=room)


def wait_until_published() -> None:
    """Wait until the events emitted so far by this process are on the Redis bus (at once
    without it, or where emits are published as they are made)."""
    manager = _socketio().server.manager
    if isinstance(manager, BatchingRedisManager):
        manager.wait_until_published()


def after_commit(announce: Callable[..., None], *args: Any) -> None:
    """Run an announcement for work already committed. If it fails (Redis down, say) the
    work stands: the failure is logged, and tabs catch up from `last_id` when they reconnect.
    """
    try:
        announce(*args)
    except Exception:
        log.exception("could not announce %s after the commit", announce.__name__)


def _payloads(notifications: list[StoredNotification]) -> list[dict[str, Any]]:
    """Each notification as `NotificationOut` shapes it. A send's notifications differ in
    their id and recipient, and in content only per locale: the schema shapes each distinct
    content once, and the others are its copies with their own id and recipient (for a
    fan-out to 10,000, 8 ms of CPU instead of 65 through the schema for each). `data` is
    keyed by identity: a send's rows share its dict, all of which live until the return."""
    shaped: dict[tuple[Any, ...], dict[str, Any]] = {}
    payloads = []
    for notification in notifications:
        content = (
            notification.category,
            notification.title,
            notification.body,
            id(notification.data),
            notification.action_url,
            notification.priority,
            notification.created_at,
        )
        payload = shaped.get(content)
        if payload is None:
            payload = shaped[content] = dump(NotificationOut, notification)
        else:
            payload = {**payload, "id": str(notification.id), "user_id": notification.user_id}
        payloads.append(payload)
    return payloads


def announce_created(notifications: list[StoredNotification], counts: dict[str, int]) -> None:
    """Push each in-app notification to its recipient, and after a recipient's last one their
    new `unread_count` (`counts`, of those recipients), as a send counted it before its
    commit: no query here, so nothing waits on the database between the commit and the
    events. Notifications not in the inbox are not pushed.

    A recipient's events go next to each other, so that they mostly travel in the same bus
    message: the web process holding the recipient's socket then writes them together, in
    one system call, rather than the notification with one message and the count with a
    later one (a fan-out to 10,000 had 40 messages, all its counts in the last 20)."""
    in_app = [n for n in notifications if n.in_app]
    payloads = _payloads(in_app)
    last_of_recipient = {n.user_id: index for index, n in enumerate(in_app)}
    emits: list[tuple[str, Any, str]] = []
    for index, (notification, payload) in enumerate(zip(in_app, payloads, strict=True)):
        room = user_room(notification.user_id)
        emits.append(("notification", payload, room))
        if last_of_recipient[notification.user_id] == index:
            emits.append(("unread_count", {"unread_count": counts[notification.user_id]}, room))
    _emit_all(emits)


def announce_unread_counts(user_ids: list[str]) -> None:
    """Push each user's current `unread_count`, read in one query."""
    _emit_all(
        [
            ("unread_count", {"unread_count": count}, user_room(user_id))
            for user_id, count in unread_counts(db.session, user_ids).items()
        ]
    )


def announce_updated(notification: Notification) -> None:
    """Push a notification's new read, seen and archive state, and the unread count."""
    state = dump(NotificationOut, notification)
    room = user_room(notification.user_id)
    count = unread_count(db.session, notification.user_id)
    _emit_all(
        [
            (
                "notification_updated",
                {key: state[key] for key in ("id", "seen_at", "read_at", "archived_at")},
                room,
            ),
            ("unread_count", {"unread_count": count}, room),
        ]
    )


def announce_many_updated(
    user_id: str, ids: list[int], field: str, when: datetime, count: int | None = None
) -> None:
    """Push one `notification_updated` for many ids that got the same `field` (`read_at`
    after a read-all, `seen_at` after a seen), then the unread `count` when it changed."""
    if not ids:
        return
    room = user_room(user_id)
    payload = {"ids": [str(i) for i in ids], field: rfc3339(when)}
    emits: list[tuple[str, Any, str]] = [("notification_updated", payload, room)]
    if count is not None:
        emits.append(("unread_count", {"unread_count": count}, room))
    _emit_all(emits)


def forget_user(user_id: str) -> None:
    """Take every socket of an erased user out of their room: nothing more reaches them."""
    _socketio().close_room(user_room(user_id))
