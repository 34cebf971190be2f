"""each user's unread count, kept by triggers

Revision ID: 7d3e9a41c2b8
Revises: 5e1c0a7d9b42
Create Date: 2026-12-04 18:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d3e9a41c2b8'
down_revision = '5e1c0a7d9b42'
branch_labels = None
depends_on = None

# The inbox's unread predicate (app/models/notifications.py), as this revision knows it.
UNREAD = "in_app AND read_at IS NULL AND archived_at IS NULL"

# Counting a user's unread rows cost every send in proportion to that user's unread history
# (in the database, 0.4 ms at 1,600 rows; at 100,000, 13 ms after a VACUUM and 100 ms before
# one): the count is kept instead, by the database, so that every writer of notifications
# (the API, retention, erasure, a psql session) keeps it true. Statement triggers on
# PostgreSQL: a fan-out to 10,000 users changes their counts in one UPDATE, not in 10,000.
# One statement per firing: gathering the changes into arrays and locking the users in id
# order before the UPDATE cost the database 210 us of CPU more per one-recipient send than
# counting did; this costs 10 to 50. The order is kept by the sends instead, the only
# writers that run concurrently with others: they lock their recipients in id order in their
# first statement (app/services/send.py), so no send waits on a user row after it.
POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION notifications_count_unread() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET unread_count = users.unread_count + added.change
        FROM (SELECT user_id, count(*) AS change FROM new_rows WHERE {UNREAD}
              GROUP BY user_id) AS added
        WHERE users.id = added.user_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE users SET unread_count = users.unread_count - removed.change
        FROM (SELECT user_id, count(*) AS change FROM old_rows WHERE {UNREAD}
              GROUP BY user_id) AS removed
        WHERE users.id = removed.user_id;
    ELSE
        UPDATE users SET unread_count = users.unread_count + moved.change
        FROM (SELECT user_id, sum(change) AS change
              FROM (SELECT user_id, 1 AS change FROM new_rows WHERE {UNREAD}
                    UNION ALL
                    SELECT user_id, -1 FROM old_rows WHERE {UNREAD}) AS moves
              GROUP BY user_id HAVING sum(change) <> 0) AS moved
        WHERE users.id = moved.user_id;
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGERS = {
    "notifications_unread_inserted": "AFTER INSERT ON notifications"
    " REFERENCING NEW TABLE AS new_rows",
    "notifications_unread_deleted": "AFTER DELETE ON notifications"
    " REFERENCING OLD TABLE AS old_rows",
    "notifications_unread_updated": "AFTER UPDATE ON notifications"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _sqlite_unread(row: str) -> str:
    return " AND ".join(f"{row}.{term}" for term in UNREAD.split(" AND "))


# SQLite has row triggers only; the embedded mode's sends are small.
SQLITE_TRIGGERS = {
    "notifications_unread_inserted": f"""
        AFTER INSERT ON notifications WHEN {_sqlite_unread('NEW')} BEGIN
            UPDATE users SET unread_count = unread_count + 1 WHERE id = NEW.user_id;
        END""",
    "notifications_unread_deleted": f"""
        AFTER DELETE ON notifications WHEN {_sqlite_unread('OLD')} BEGIN
            UPDATE users SET unread_count = unread_count - 1 WHERE id = OLD.user_id;
        END""",
    "notifications_unread_updated": f"""
        AFTER UPDATE OF user_id, in_app, read_at, archived_at ON notifications BEGIN
            UPDATE users SET unread_count = unread_count - 1
            WHERE id = OLD.user_id AND {_sqlite_unread('OLD')};
            UPDATE users SET unread_count = unread_count + 1
            WHERE id = NEW.user_id AND {_sqlite_unread('NEW')};
        END""",
}


def upgrade():
    op.add_column('users', sa.Column('unread_count', sa.Integer(), server_default='0', nullable=False))
    postgresql = op.get_bind().dialect.name == 'postgresql'
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
        for name, timing in POSTGRESQL_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {timing} FOR EACH STATEMENT EXECUTE FUNCTION notifications_count_unread()")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    # After the triggers, in the same transaction: on PostgreSQL creating them holds off every
    # write to notifications until the commit, so no send falls between the count and them.
    op.execute(
        f"UPDATE users SET unread_count = (SELECT count(*) FROM notifications"
        f" WHERE notifications.user_id = users.id AND {UNREAD})"
    )


def downgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for name in POSTGRESQL_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON notifications" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION notifications_count_unread()")
    # Not batch mode: on SQLite that rebuilds users, and dropping the old table with foreign
    # keys on deletes every user's notifications by cascade. SQLite drops columns since 3.35.
    op.execute("ALTER TABLE users DROP COLUMN unread_count")
