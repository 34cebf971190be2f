"""Socket.IO connections: only a valid user token gets in, into that user's room only, and
a reconnecting client gets what it missed since `last_id`."""

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_socketio import ConnectionRefusedError, emit, join_room
from redis.exceptions import RedisError
from sqlalchemy import Connection

from app import defaults, rate_limits
from app.api.errors import DEPENDENCY_ERRORS, dependency_name
from app.api.responses import dump_many
from app.api.schemas import NotificationOut
from app.config import CONNECT_READS
from app.db import parse_id
from app.extensions import db, socketio
from app.realtime import presence
from app.realtime.events import user_room
from app.services.credentials import ExpiredToken, InvalidToken, VerifiedToken, user_of_token
from app.services.inbox import missed_since, unread_count

log = logging.getLogger(__name__)


def _without_routing_error(handler: Callable[..., None]) -> Callable[..., None]:
    """`handler`, freeing its request context by reference counting.

    Flask-SocketIO runs each event in a Flask request context for the Socket.IO path, which
    matches no route: the NotFound kept on the request holds a traceback whose frames hold
    the context, a cycle of 53 objects per event that only a full garbage collection frees
    (with thousands of sockets, those collections were a fifth of the CPU of connecting)."""

    @functools.wraps(handler)
    def handle(*args: Any) -> None:
        request.routing_exception = None
        handler(*args)

    return handle


def _authenticated_user(auth: Any, reads: Connection) -> VerifiedToken:
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise ConnectionRefusedError("missing_credential: send auth {token: <user token>}")
    try:
        return user_of_token(reads, current_app.config["USER_TOKEN_SECRET"], token)
    except ExpiredToken as error:
        raise ConnectionRefusedError("token_expired: the user token has expired") from error
    except InvalidToken as error:
        raise ConnectionRefusedError("invalid_credential: not a valid user token") from error


def _last_id(auth: dict[str, Any]) -> int | None:
    value = auth.get("last_id")
    if value is None:
        return None
    row_id = parse_id(str(value)) if isinstance(value, str | int) else None
    if row_id is None:
        raise ConnectionRefusedError("invalid_last_id: last_id must be a notification id")
    return row_id


@socketio.on("connect")
@_without_routing_error
def connect(auth: Any = None) -> None:
    """Refuse without a valid user token; join the user's room, then replay what the user
    missed since `last_id` and send the unread count (joining first, so nothing falls
    between the two). Connects take turns past SOCKET_CONNECTS_IN_FLIGHT at once; one
    whose database or Redis fails is dropped at the transport, which a Socket.IO client
    retries on its own (a refusal it would take as final)."""
    with current_app.extensions["connect_gate"].slot():
        try:
            _admit(auth)
        except DEPENDENCY_ERRORS as error:
            log.warning(
                "socket connect dropped for the client to retry: the %s is unavailable (%s)",
                dependency_name(error),
                type(error).__name__,
            )
            socketio.server.eio.disconnect(
                socketio.server.manager.eio_sid_from_sid(request.sid, "/")
            )
            # Only so python-socketio does not count the socket as connected: with the
            # transport closed, the refusal never reaches the client.
            raise ConnectionRefusedError("service_unavailable: try again shortly") from error


def _admit(auth: Any) -> None:
    # The connects' own pool has a connection for each connect the gate lets in. Read
    # through the connection itself where no ORM object is loaded: the session's execution
    # path costs about as much again.
    with db.engines[CONNECT_READS].connect() as reads:
        token = _authenticated_user(auth, reads)
        user_id = token.user_id
        last_id = _last_id(auth)
        if not rate_limits.allow("RATE_LIMIT_SOCKET_CONNECTS", user_id):
            raise ConnectionRefusedError("rate_limited: too many connections for this user")
        join_room(user_room(user_id))
        count = (
            unread_count(reads, user_id) if last_id is None else _replay(reads, user_id, last_id)
        )
    # Counted only once nothing can fail: a refused connect gets no disconnect handler.
    _expire_at(request.sid, token.expires_at.timestamp())
    presence.connected(request.sid)
    _to_this_socket("unread_count", {"unread_count": count})


@socketio.on("*")
@_without_routing_error
def client_event(_event: str, *_data: Any) -> None:
    """Clients have nothing to send: their events are ignored, and a socket that keeps
    sending past RATE_LIMIT_SOCKET_EVENTS is dropped."""
    if not rate_limits.allow("RATE_LIMIT_SOCKET_EVENTS", request.sid):
        socketio.server.disconnect(request.sid)


@socketio.on("disconnect")
@_without_routing_error
def disconnect(*_reason: Any) -> None:
    """Forget the connection's expiry and stop counting it."""
    _EXPIRING.pop(request.sid, None)
    presence.disconnected(request.sid)


# The sockets of this process and when their tokens run out: a socket must not outlive its
# token, so a sweeper disconnects them (the client needs a fresh token to come back).
_EXPIRING: dict[str, float] = {}
_SWEEPER: list[bool] = []


def _expire_at(sid: str, expires_at: float) -> None:
    _EXPIRING[sid] = expires_at
    if not _SWEEPER:
        _SWEEPER.append(True)
        socketio.start_background_task(_sweep_forever, current_app._get_current_object())


def _sweep_forever(app: Flask) -> None:
    """Every interval: disconnect expired sockets and share this process's socket count."""
    interval = app.config["SOCKET_EXPIRY_SWEEP_SECONDS"]
    while True:
        with app.app_context():
            try:
                presence.publish(interval)
            except RedisError:
                log.warning("could not publish the socket count: Redis is unreachable")
        socketio.sleep(interval)
        now = time.time()
        for sid, expires_at in list(_EXPIRING.items()):
            if expires_at <= now:
                _EXPIRING.pop(sid, None)
                socketio.server.disconnect(sid)


def _to_this_socket(event: str, data: Any) -> None:
    # The socket is connected here: through Redis, every other web process would decode the
    # emit only to find it has no such socket.
    emit(event, data, to=request.sid, ignore_queue=True)


def _replay(reads: Connection, user_id: str, last_id: int) -> int:
    """Emit what the user missed since `last_id`; the unread count, as read with it."""
    page = missed_since(reads, user_id, last_id, defaults.CATCH_UP_MAX)
    for notification in dump_many(NotificationOut, page.items):
        _to_this_socket("notification", notification)
    if page.next_cursor is not None:
        # More was missed than one connect replays: the client pages with ?after= from here.
        _to_this_socket("resync", {"after": str(page.items[-1].id)})
    return page.unread_count
