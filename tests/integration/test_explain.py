"""The inbox queries stay on indexes for a user with 100,000 notifications among many more.

Postgres only: the plans are the point. The table is filled with generate_series and
ANALYZEd so the planner sees realistic statistics.
"""

import json
from collections.abc import Callable

import pytest
from sqlalchemy import event, text

from app.api.schemas import InboxQuery
from app.extensions import db
from app.services import inbox

pytestmark = pytest.mark.postgres_only

HEAVY_USER = "heavy"
HEAVY_EVERY = 15  # one row in 15 is the heavy user's: 100,000 of 1,500,000
UNREAD_EVERY = 11
TOTAL_ROWS = 1_500_000
OTHER_USERS = 20_000
QUERIES = {
    "first-page": {},
    "unread": {"status": "unread"},
    "read": {"status": "read"},
    "category": {"category": "comment"},
    "archived": {"archived": True},
    "after": {"after": "1400000"},
    "deep-cursor": {"cursor": inbox.Cursor(750_000, inbox.OLDER).encode()},
}


def _fill(app) -> None:
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO users (id, created_at, updated_at) "
                "SELECT 'u' || g, now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": OTHER_USERS},
        )
        db.session.execute(
            text("INSERT INTO users (id, created_at, updated_at) VALUES (:u, now(), now())"),
            {"u": HEAVY_USER},
        )
        # The heavy user's rows are spread through time; one in eleven of all rows is unread.
        db.session.execute(
            text(
                "INSERT INTO notifications (user_id, category, title, data, priority, in_app,"
                " created_at, read_at) "
                "SELECT CASE WHEN g % :every = 0 THEN :heavy ELSE 'u' || (g % :users + 1) END,"
                " CASE WHEN g % 7 = 0 THEN 'comment' ELSE 'general' END, 'title', '{}',"
                " 'normal', true, now(), CASE WHEN g % :unread = 0 THEN NULL ELSE now() END "
                "FROM generate_series(1, :total) g"
            ),
            {
                "heavy": HEAVY_USER,
                "every": HEAVY_EVERY,
                "unread": UNREAD_EVERY,
                "users": OTHER_USERS,
                "total": TOTAL_ROWS,
            },
        )
        db.session.execute(text("ANALYZE notifications"))
        db.session.commit()


def _plans(read: Callable[[], object]) -> list[str]:
    """EXPLAIN of every SELECT that `read` runs."""
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        read()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    plans = []
    cursor = db.session.connection().connection.cursor()
    for statement, parameters in statements:
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plans.append(json.dumps(cursor.fetchone()[0]))
    cursor.close()
    return plans


def test_inbox_queries_use_indexes(app):
    """One test, so the three million rows are written once."""
    _fill(app)
    with app.app_context():
        for name, params in QUERIES.items():
            query = InboxQuery.model_validate(params)
            # The page, then the unread count.
            plans = _plans(lambda query=query: inbox.list_inbox(db.session, HEAVY_USER, query))
            assert len(plans) == 2, name
            page, count = plans
            for plan in plans:
                assert "Seq Scan" not in plan, (name, plan)
            assert '"Index Name": "ix_notifications' in page, (name, page)
            # The count is read from the user's row, where the triggers keep it.
            assert '"Index Name": "users_pkey"' in count, (name, count)
        unread = TOTAL_ROWS // (HEAVY_EVERY * UNREAD_EVERY)
        assert inbox.unread_count(db.session, HEAVY_USER) == unread
        # A reconnect's catch-up: the page and the count in one query, walking the index in
        # order (no sort of all the user's rows).
        [plan] = _plans(
            lambda: inbox.missed_since(db.session.connection(), HEAVY_USER, 1_400_000, 100)
        )
        assert "Seq Scan" not in plan, plan
        assert '"Node Type": "Sort"' not in plan, plan
        assert '"Index Name": "ix_notifications_user_id_id"' in plan, plan
        assert '"Index Name": "users_pkey"' in plan, plan
        page = inbox.missed_since(db.session.connection(), HEAVY_USER, 1_400_000, 100)
        assert page.unread_count == unread
        ids = [row.id for row in page.items]
        assert len(ids) == 100
        assert ids == sorted(ids)
        assert ids[0] > 1_400_000
        assert {row.user_id for row in page.items} == {HEAVY_USER}
        assert page.next_cursor is not None
