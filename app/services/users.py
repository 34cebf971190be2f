"""Recipients: upsert one or many, erase with everything that belongs to them."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db import insert_for
from app.models import User

USER_FIELDS = ("email", "phone", "name", "locale", "timezone")


def upsert_users(session: Session, rows: Iterable[Mapping[str, Any]], now: datetime) -> None:
    """Create or update users in bulk. Each row has `id` and only the fields it sets;
    fields a row leaves out keep their stored value."""
    by_fields: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    # In id order: two sends that create the same users in different orders would otherwise
    # wait on each other's rows and deadlock.
    for row in sorted(rows, key=lambda row: row["id"]):
        fields = tuple(sorted(name for name in row if name in USER_FIELDS))
        values = {"id": row["id"], **{name: row[name] for name in fields}}
        by_fields.setdefault(fields, []).append(values | {"created_at": now, "updated_at": now})
    for fields, values in by_fields.items():
        insert = insert_for(session, User.__table__)
        if fields:
            statement = insert.on_conflict_do_update(
                index_elements=["id"],
                set_={name: insert.excluded[name] for name in (*fields, "updated_at")},
            )
        else:
            statement = insert.on_conflict_do_nothing(index_elements=["id"])
        # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs ("insertmanyvalues")
        # instead of one statement per row.
        session.execute(statement.returning(User.__table__.c.id), values).all()


def put_user(session: Session, user_id: str, fields: Mapping[str, Any], now: datetime) -> bool:
    """Create or update one user with `fields`; True when it was created."""
    upsert_users(session, [{"id": user_id, **fields}], now)
    session.expire_all()
    user = session.get(User, user_id)
    assert user is not None
    return user.created_at == user.updated_at == now


def erase_user(session: Session, user_id: str) -> None:
    """Delete a user and, by cascade, every notification, delivery, preference and push
    subscription of theirs."""
    session.execute(delete(User).where(User.id == user_id))


def user_exists(session: Session, user_id: str) -> bool:
    """True when the user is stored."""
    return session.scalar(select(User.id).where(User.id == user_id)) is not None
