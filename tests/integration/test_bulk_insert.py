"""`insert_rows` stores exactly the rows it is given and answers in their order, whether it
binds a VALUES list or (many rows on Postgres) one array or value per column."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.db import ARRAY_INSERT_MIN_ROWS, insert_rows
from app.extensions import db
from app.models import Delivery, Notification, User

COLUMNS = ("user_id", "category", "title", "body", "data", "action_url", "priority", "in_app")


def _rows(count: int, now: datetime) -> list[dict]:
    """Notification rows: some columns alike in every row, some different in each, NULLs in a
    column of both kinds, JSON of several shapes."""
    return [
        {
            "user_id": f"bulk{n % 7}",
            "category": "general",
            "title": f"title {n} 'quoted' \"and\" {{braces}}, commas",
            "body": None if n % 3 == 0 else f"line one\nline two\t{n}",
            "data": {"n": n, "tags": ["a", "b"]} if n % 2 else {},
            "action_url": None,
            "priority": "normal",
            "in_app": n % 4 != 0,
            "created_at": now + timedelta(microseconds=n),
        }
        for n in range(count)
    ]


@pytest.mark.parametrize("count", [1, ARRAY_INSERT_MIN_ROWS - 1, ARRAY_INSERT_MIN_ROWS, 1_200])
def test_rows_are_stored_as_given_and_answered_in_order(app, count):
    now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    rows = _rows(count, now)
    table = Notification.__table__
    with app.app_context():
        db.session.add_all(User(id=f"bulk{n}") for n in range(7))
        db.session.flush()
        returned = insert_rows(db.session, table, rows, table.c.id, table.c.user_id)
        db.session.commit()
        stored = {
            row.id: row
            for row in db.session.execute(select(table).where(table.c.user_id.like("bulk%")))
        }
    assert [row.user_id for row in returned] == [row["user_id"] for row in rows]
    ids = [row.id for row in returned]
    assert ids == sorted(ids)
    assert len(stored) == count
    for row_id, row in zip(ids, rows, strict=True):
        got = stored[row_id]
        assert {name: getattr(got, name) for name in COLUMNS} == {
            name: row[name] for name in COLUMNS
        }
        assert got.created_at == row["created_at"]


def test_columns_alike_and_apart_mix_in_one_insert(app):
    """Deliveries of many notifications: the same channel and status, different ids and
    contents, a NULL content in every row but one."""
    now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    with app.app_context():
        db.session.add(User(id="bulk"))
        table = Notification.__table__
        rows = [{**row, "user_id": "bulk"} for row in _rows(ARRAY_INSERT_MIN_ROWS, now)]
        notification_ids = [r.id for r in insert_rows(db.session, table, rows, table.c.id)]
        deliveries = Delivery.__table__
        delivery_rows = [
            {
                "notification_id": notification_id,
                "channel": "email",
                "content": {"subject": "only one"} if n == 3 else None,
                "status": "queued",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "next_attempt_at": now,
            }
            for n, notification_id in enumerate(notification_ids)
        ]
        written = insert_rows(
            db.session, deliveries, delivery_rows, deliveries.c.id, deliveries.c.status
        )
        db.session.commit()
        contents = dict(
            db.session.execute(select(Delivery.notification_id, Delivery.content)).all()
        )
    assert [row.status for row in written] == ["queued"] * len(delivery_rows)
    assert contents == {
        notification_id: ({"subject": "only one"} if n == 3 else None)
        for n, notification_id in enumerate(notification_ids)
    }
