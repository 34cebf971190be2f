"""The inbox queries stay on indexes for a user with 100,000 notifications among many more.

Postgres only: the plans are the point. The table is filled with generate_series and
ANALYZEd so the planner sees realistic statistics.
"""

import json

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


def _plans(query: InboxQuery) -> list[str]:
    """EXPLAIN of every SELECT the listing runs (the page, then the unread count)."""
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        inbox.list_inbox(db.session, HEAVY_USER, query)
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
            plans = _plans(InboxQuery.model_validate(params))
            assert len(plans) == 2, name
            page, count = plans
            for plan in plans:
                assert "Seq Scan" not in plan, (name, plan)
            assert '"Index Name": "ix_notifications' in page, (name, page)
            # The count is read from the user's row, where the triggers keep it.
            assert '"Index Name": "users_pkey"' in count, (name, count)
        assert inbox.unread_count(db.session, HEAVY_USER) == TOTAL_ROWS // (
            HEAVY_EVERY * UNREAD_EVERY
        )
