"""A user's inbox: keyset pages, catch-up, the unread count and read/seen/archive state."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Row,
    Select,
    bindparam,
    func,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from app.api.schemas import InboxQuery
from app.db import parse_id
from app.models import Notification, User

CURSOR_PREFIX = "n1"
NEWER = "a"
OLDER = "d"


class InvalidCursor(ValueError):
    """The cursor was not made by this server."""


@dataclass(frozen=True)
class Cursor:
    """Where a listing resumes: after `notification_id`, going to newer or older ones."""

    notification_id: int
    direction: str

    def encode(self) -> str:
        """The opaque form handed to clients."""
        text = f"{CURSOR_PREFIX}:{self.direction}:{self.notification_id}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def decode(cls, cursor: str) -> "Cursor":
        """The cursor `encode` made; raises `InvalidCursor`."""
        try:
            text = base64.urlsafe_b64decode(cursor.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as error:
            raise InvalidCursor(cursor) from error
        prefix, _, rest = text.partition(":")
        direction, _, number = rest.partition(":")
        row_id = parse_id(number)
        if prefix != CURSOR_PREFIX or direction not in {NEWER, OLDER} or row_id is None:
            raise InvalidCursor(cursor)
        return cls(row_id, direction)


def _inbox_of(user_id: str | BindParameter[str]) -> list[ColumnElement[bool]]:
    # A range rather than `=` on purpose: with `user_id = x` Postgres treats the ORDER BY
    # user_id as settled and may walk the primary key backwards instead, which reads the whole
    # table's newer rows for a user whose notifications are old. The range keeps every page
    # on the per-user indexes.
    return [Notification.user_id.between(user_id, user_id), Notification.in_app]


@dataclass(frozen=True)
class InboxPage:
    """One page of a listing: its notifications as rows of the table's columns."""

    items: list[Row[Any]]
    next_cursor: str | None
    unread_count: int


def _listing(user_id: str | BindParameter[str], query: InboxQuery) -> Select[Any]:
    conditions = _inbox_of(user_id)
    if query.status == "unread":
        conditions.append(Notification.read_at.is_(None))
    elif query.status == "read":
        conditions.append(Notification.read_at.is_not(None))
    if query.archived:
        conditions.append(Notification.archived_at.is_not(None))
    else:
        conditions.append(Notification.archived_at.is_(None))
    if query.category is not None:
        conditions.append(Notification.category == query.category)
    # Rows, not ORM objects: a listing only shows them, and loading objects into a session
    # cost a socket's catch-up more than the query itself.
    return select(Notification.__table__).where(*conditions)


def list_inbox(session: Session | Connection, user_id: str, query: InboxQuery) -> InboxPage:
    """Newest first, or oldest first after the id `after` (catch-up); `next_cursor` goes on
    in the same direction. Through a session, or a connection where nothing unflushed could
    matter. Raises `InvalidCursor`."""
    if query.cursor is not None:
        start = Cursor.decode(query.cursor)
    elif query.after is not None:
        start = Cursor(int(query.after), NEWER)
    else:
        start = None
    statement = _listing(user_id, query)
    direction = start.direction if start else OLDER
    if direction == NEWER:
        statement = statement.order_by(Notification.user_id.asc(), Notification.id.asc())
        if start:
            statement = statement.where(Notification.id > start.notification_id)
    else:
        statement = statement.order_by(Notification.user_id.desc(), Notification.id.desc())
        if start:
            statement = statement.where(Notification.id < start.notification_id)
    rows = list(session.execute(statement.limit(query.limit + 1)))
    items = rows[: query.limit]
    has_more = len(rows) > query.limit
    return InboxPage(
        items=items,
        next_cursor=Cursor(items[-1].id, direction).encode() if has_more else None,
        unread_count=unread_count(session, user_id),
    )


def _missed_since() -> Select[Any]:
    user_id = bindparam("user_id")
    # The user's id is given to both sides rather than correlated: with `users.id` in the
    # range, Postgres guessed a handful of rows and sorted all of the user's instead of
    # walking the index (2 ms against 0.2 for a user with 3,000).
    missed = (
        _listing(user_id, InboxQuery())
        .where(Notification.id > bindparam("after"))
        .order_by(Notification.user_id.asc(), Notification.id.asc())
        .limit(bindparam("limit"))
        .subquery("missed")
    )
    # Outer, so the user's row (and count) comes back when nothing was missed.
    return (
        select(User.unread_count, missed)
        .select_from(User)
        .outerjoin(missed, true())
        .where(User.id == user_id)
    )


# Built once, as the other statements a socket connect runs: each reconnect runs it.
_MISSED_SINCE = _missed_since()


def missed_since(connection: Connection, user_id: str, after: int, limit: int) -> InboxPage:
    """What a reconnecting socket missed: the user's inbox after the id `after`, oldest first,
    as `list_inbox` with `after=` lists it, and the unread count, in one query (and so as of
    one moment). `next_cursor` is set when more than `limit` were missed."""
    rows = list(
        connection.execute(_MISSED_SINCE, {"user_id": user_id, "after": after, "limit": limit + 1})
    )
    if not rows:  # the user was erased meanwhile
        return InboxPage(items=[], next_cursor=None, unread_count=0)
    # With nothing missed, the outer join's one row has no notification.
    items = [row for row in rows[:limit] if row.id is not None]
    has_more = len(rows) > limit
    return InboxPage(
        items=items,
        next_cursor=Cursor(items[-1].id, NEWER).encode() if has_more else None,
        unread_count=rows[0].unread_count,
    )


def unread_counts(session: Session, user_ids: list[str]) -> dict[str, int]:
    """Unread, unarchived in-app notifications of each user, in one query (0 for none)."""
    counts = dict.fromkeys(user_ids, 0)
    if counts:
        rows = session.execute(select(User.id, User.unread_count).where(User.id.in_(list(counts))))
        counts.update({user_id: count for user_id, count in rows})
    return counts


# Built once: a socket connect spent more on building this statement than on running it.
_UNREAD_COUNT = select(User.unread_count).where(User.id == bindparam("user_id"))


def unread_count(session: Session | Connection, user_id: str) -> int:
    """Unread, unarchived in-app notifications of the user (0 for an unknown one); through a
    session, or a connection where nothing unflushed could matter (half the CPU)."""
    return session.scalar(_UNREAD_COUNT, {"user_id": user_id}) or 0


def find_notification(session: Session, user_id: str, notification_id: str) -> Notification | None:
    """The user's own in-app notification with this id, or None (also for anyone else's)."""
    row_id = parse_id(notification_id)
    if row_id is None:
        return None
    return session.scalar(
        select(Notification).where(Notification.id == row_id, *_inbox_of(user_id))
    )


def set_read(notification: Notification, read: bool, now: datetime) -> None:
    """Mark read (keeping the first read time; reading implies seen) or unread."""
    if read:
        notification.read_at = notification.read_at or now
        notification.seen_at = notification.seen_at or now
    else:
        notification.read_at = None


def set_archived(notification: Notification, archived: bool, now: datetime) -> None:
    """Archive (keeping the first archive time) or unarchive."""
    notification.archived_at = (notification.archived_at or now) if archived else None


def read_all(session: Session, user_id: str, category: str | None, now: datetime) -> list[int]:
    """Mark every unread in-app notification read (of one category if given); the ids."""
    conditions = [*_inbox_of(user_id), Notification.read_at.is_(None)]
    if category is not None:
        conditions.append(Notification.category == category)
    statement = (
        update(Notification)
        .where(*conditions)
        .values(read_at=now, seen_at=func.coalesce(Notification.seen_at, now))
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(statement))


def mark_seen(session: Session, user_id: str, ids: list[str], now: datetime) -> list[int]:
    """Set `seen_at` on those of `ids` that are the user's and not yet seen; their ids."""
    statement = (
        update(Notification)
        .where(
            Notification.id.in_([int(value) for value in ids]),
            Notification.seen_at.is_(None),
            *_inbox_of(user_id),
        )
        .values(seen_at=now)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(statement))
