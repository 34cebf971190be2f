"""Each user's unread count is a column the database's triggers keep (migration 7d3e9a41c2b8):
it must equal a real count of the unread rows after every kind of write, whoever makes it (the
API, retention, erasure, a raw SQL session), after the migration's backfill, and under
concurrent sends that share users."""

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import Select, create_engine, inspect, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from app import create_app
from app.api.schemas import SendRequest
from app.db import utcnow
from app.extensions import db
from app.jobs.retention import purge
from app.models import Notification
from app.services import send as send_service
from app.services.send import Send, send_notifications
from tests.conftest import (
    PROJECT_ROOT,
    TEST_DATABASE,
    app_config,
    drop_postgres_database,
    recreate_postgres_database,
    send,
)

MIGRATIONS = str(PROJECT_ROOT / "migrations")
BEFORE_COUNTS = "5e1c0a7d9b42"
"""The revision just before the unread counts."""
UNREAD = "in_app AND read_at IS NULL AND archived_at IS NULL"
STORED_AND_COUNTED = text(
    "SELECT id, unread_count, (SELECT count(*) FROM notifications"
    f" WHERE notifications.user_id = users.id AND {UNREAD}) FROM users ORDER BY id"
)


def true_counts(connection) -> dict[str, int]:
    """Each user's stored unread count, asserting that it is the real count of their rows."""
    rows = connection.execute(STORED_AND_COUNTED).all()
    wrong = {user_id: (stored, counted) for user_id, stored, counted in rows if stored != counted}
    assert not wrong, f"(stored, counted) per user: {wrong}"
    return {user_id: stored for user_id, stored, _ in rows}


def assert_counts(app: Flask, readers: dict, expected: dict[str, int]) -> None:
    """The stored counts are the real ones and `expected`; the API reports the same."""
    with app.app_context():
        assert true_counts(db.session) == expected
    for user_id, reader in readers.items():
        if user_id in expected:
            assert reader.get("/me/unread-count").get_json() == {"unread_count": expected[user_id]}
            assert reader.get("/me/notifications").get_json()["unread_count"] == expected[user_id]


def act(reader, notification_id: str, action: str) -> None:
    """POST /me/notifications/{id}/{action}, asserting 200."""
    response = reader.post(f"/me/notifications/{notification_id}/{action}")
    assert response.status_code == 200, response.get_data(as_text=True)


def test_the_stored_count_is_the_real_count_after_every_kind_of_write(
    app, database_url, producer, user_client, monkeypatch
):
    # Every step reads four inboxes through the API: more than a user's budget allows.
    monkeypatch.setitem(app.config, "RATE_LIMIT_USER", "100000 per second")
    monkeypatch.setitem(app.config, "RETENTION_DAYS", 30)
    readers = {name: user_client(name) for name in ("ana", "bob", "cara", "dan")}
    ana, bob = readers["ana"], readers["bob"]
    assert producer.put("/users/ana", json={"email": "ana@example.com"}).status_code == 200
    off = readers["cara"].put("/me/preferences", json={"channels": {"in_app": False}})
    assert off.status_code == 200

    # Cara's notifications and the email-only one are stored outside the inbox.
    comments = [
        send(producer, to=["ana", "bob", "cara"], title=f"c{n}", category="comment")
        for n in range(3)
    ]
    ana_like, bob_like = send(producer, to=["ana", "bob"], title="l", category="like")
    send(producer, to="ana", title="mail", channels=["email"])
    with app.app_context():
        outside = db.session.scalar(text("SELECT count(*) FROM notifications WHERE NOT in_app"))
    assert outside == 4
    assert_counts(app, readers, {"ana": 4, "bob": 4, "cara": 0, "dan": 0})

    first, second = comments[0][0], comments[1][0]
    steps = [
        (first, "read", 3),
        (first, "read", 3),
        (first, "unread", 4),
        (second, "archive", 3),
        # Read and unread while archived change nothing; unarchived it counts again.
        (second, "read", 3),
        (second, "unread", 3),
        (second, "unarchive", 4),
    ]
    for notification_id, action, ana_unread in steps:
        act(ana, notification_id, action)
        assert_counts(app, readers, {"ana": ana_unread, "bob": 4, "cara": 0, "dan": 0})

    seen = ana.post("/me/notifications/seen", json={"ids": [comments[2][0], ana_like]})
    assert seen.get_json() == {"updated": 2, "unread_count": 4}
    assert_counts(app, readers, {"ana": 4, "bob": 4, "cara": 0, "dan": 0})
    read_comments = ana.post("/me/notifications/read-all", json={"category": "comment"})
    assert read_comments.get_json() == {"updated": 3, "unread_count": 1}
    assert_counts(app, readers, {"ana": 1, "bob": 4, "cara": 0, "dan": 0})
    assert bob.post("/me/notifications/read-all").get_json() == {"updated": 4, "unread_count": 0}
    act(bob, bob_like, "unread")
    assert_counts(app, readers, {"ana": 1, "bob": 1, "cara": 0, "dan": 0})

    # Retention takes the likes (both unread), a read comment and one of Cara's.
    with app.app_context():
        aged = [int(i) for i in (ana_like, bob_like, first, comments[0][2])]
        then = utcnow() - timedelta(days=31)
        db.session.execute(
            update(Notification).where(Notification.id.in_(aged)).values(created_at=then)
        )
        db.session.commit()
        assert purge(utcnow()).notifications == 4
    assert_counts(app, readers, {"ana": 0, "bob": 0, "cara": 0, "dan": 0})

    # A session outside the app, as psql would be: the triggers keep the count all the same.
    send(producer, to=["ana", "bob", "dan"], title="again")
    send(producer, to=["ana", "bob", "dan"], title="and again")
    outsider = create_engine(database_url, poolclass=NullPool)
    raw_writes = [
        (
            "UPDATE notifications SET read_at = CURRENT_TIMESTAMP WHERE user_id IN ('ana', 'bob')",
            {"ana": 0, "bob": 0, "cara": 0, "dan": 2},
        ),
        # Everything back in the inbox for the readers: Cara's rows are still not in_app.
        (
            "UPDATE notifications SET read_at = NULL, archived_at = NULL",
            {"ana": 4, "bob": 5, "cara": 0, "dan": 2},
        ),
        (
            "UPDATE notifications SET user_id = 'cara' WHERE user_id = 'dan'",
            {"ana": 4, "bob": 5, "cara": 2, "dan": 0},
        ),
        # Four rows move, in and out of the inbox: the count stays.
        (
            "UPDATE notifications SET in_app = NOT in_app WHERE user_id = 'cara'",
            {"ana": 4, "bob": 5, "cara": 2, "dan": 0},
        ),
        # Bob's two are unread, Cara's two are now outside the inbox.
        (
            "DELETE FROM notifications WHERE user_id IN ('bob', 'cara') AND title LIKE '%again'",
            {"ana": 4, "bob": 3, "cara": 2, "dan": 0},
        ),
        (
            "INSERT INTO notifications (user_id, category, title, data, priority, in_app)"
            " VALUES ('dan', 'raw', 'r1', '{}', 'normal', TRUE),"
            " ('dan', 'raw', 'r2', '{}', 'normal', TRUE),"
            " ('dan', 'raw', 'r3', '{}', 'normal', FALSE)",
            {"ana": 4, "bob": 3, "cara": 2, "dan": 2},
        ),
    ]
    for statement, expected in raw_writes:
        with outsider.begin() as connection:
            connection.execute(text(statement))
        assert_counts(app, readers, expected)
    outsider.dispose()

    # Erasing a user deletes their unread rows by cascade, after the user's own row.
    assert producer.delete("/users/ana").status_code == 204
    assert_counts(app, readers, {"bob": 3, "cara": 2, "dan": 2})


@pytest.fixture
def empty_database_url(engine: str, tmp_path) -> Iterator[str]:
    """A database of the engine under test with no schema at all, for the migrations."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"{TEST_DATABASE}_unread_migration"
    yield recreate_postgres_database(name).replace("postgresql://", "postgresql+psycopg2://")
    drop_postgres_database(name)


@pytest.fixture
def migrating_app(empty_database_url: str) -> Iterator[Flask]:
    """An app on the empty database, its connections closed afterwards, pass or fail."""
    application = create_app(app_config(empty_database_url))
    yield application
    with application.app_context():
        for database in db.engines.values():
            database.dispose()


NOTIFICATION_INSERT = text(
    "INSERT INTO notifications (user_id, category, title, data, priority, in_app, read_at,"
    " archived_at) VALUES (:user_id, 'c', 't', '{}', 'normal', :in_app, :read_at, :archived_at)"
)


def test_the_migration_counts_existing_rows_and_its_downgrade_drops_the_column(
    migrating_app,
):
    with migrating_app.app_context():
        upgrade(directory=MIGRATIONS, revision=BEFORE_COUNTS)
        db.session.execute(text("INSERT INTO users (id) VALUES ('ana'), ('bob'), ('cara')"))
        now = utcnow()
        # (user, in_app, read, archived, how many): only unread, unarchived in-app count.
        kinds = [
            ("ana", True, False, False, 3),
            ("ana", True, True, False, 2),
            ("ana", True, False, True, 1),
            ("ana", False, False, False, 2),
            ("bob", True, False, False, 1),
            ("bob", True, True, True, 1),
            ("cara", False, False, False, 1),
        ]
        rows = [
            {
                "user_id": user_id,
                "in_app": in_app,
                "read_at": now if read else None,
                "archived_at": now if archived else None,
            }
            for user_id, in_app, read, archived, times in kinds
            for _ in range(times)
        ]
        db.session.execute(NOTIFICATION_INSERT, rows)
        # Committed: the migration's ALTER TABLE would wait on an open transaction.
        db.session.commit()

        upgrade(directory=MIGRATIONS)
        assert true_counts(db.session) == {"ana": 3, "bob": 1, "cara": 0}
        db.session.commit()

        downgrade(directory=MIGRATIONS, revision=BEFORE_COUNTS)
        columns = {column["name"] for column in inspect(db.engine).get_columns("users")}
        assert "unread_count" not in columns
        assert {"id", "email", "created_at"} <= columns
        # Nothing is lost with the column (rebuilding users on SQLite would cascade).
        assert db.session.scalar(text("SELECT count(*) FROM notifications")) == len(rows)
        # No trigger is left to write the dropped column: every kind of write still works.
        db.session.execute(NOTIFICATION_INSERT, rows[:2])
        db.session.execute(text("UPDATE notifications SET read_at = NULL"))
        db.session.execute(text("DELETE FROM notifications WHERE user_id = 'bob'"))
        db.session.commit()
        remaining = db.session.execute(
            text("SELECT user_id, count(*) FROM notifications GROUP BY user_id ORDER BY user_id")
        ).all()
        assert remaining == [("ana", 10), ("cara", 1)]
        db.session.rollback()


def crossing_sends(app: Flask, users: list[str], threads: int, rounds: int) -> Counter:
    """`threads` threads send to all of `users` at once, `rounds` times, from alternate ends
    and mostly with the first recipient inline; how many were stored, and why others failed."""
    barrier = threading.Barrier(threads, timeout=30)
    outcomes = [Counter() for _ in range(threads)]

    def sender(number: int) -> None:
        with app.app_context():
            for round_number in range(rounds):
                order = users if (number + round_number) % 2 == 0 else users[::-1]
                # An inline email makes the upsert lock that user's row first and the trigger
                # the others after it: threads that start from opposite ends cross. Every
                # third round has none, so the trigger alone locks.
                first = (
                    order[0]
                    if round_number % 3 == 2
                    else {"user_id": order[0], "email": f"{order[0]}@example.com"}
                )
                to = [first, *order[1:]]
                request = SendRequest(to=to, title=f"{number}-{round_number}")
                barrier.wait()
                try:
                    send_notifications(db.session, [Send(request, utcnow())])
                    db.session.commit()
                    outcomes[number]["stored"] += 1
                except SQLAlchemyError as error:
                    db.session.rollback()
                    # A deadlock is psycopg2's DeadlockDetected inside an OperationalError.
                    outcomes[number][type(getattr(error, "orig", error)).__name__] += 1

    workers = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return sum(outcomes, Counter())


def unlocked_recipient_queries(monkeypatch) -> dict[tuple[bool, bool], Select]:
    """The send's recipients queries on Postgres built by its own code, minus the row lock."""
    with monkeypatch.context() as patched:
        patched.setattr(Select, "with_for_update", lambda query, **_: query)
        return {
            (push, True): send_service._stored_recipients_query(push, postgres=True)
            for push in (False, True)
        }


def known_users(app: Flask, users: list[str]) -> None:
    """Store these users, with no fields and nothing unread."""
    with app.app_context():
        db.session.execute(text("INSERT INTO users (id) VALUES (:id)"), [{"id": u} for u in users])
        db.session.commit()


@pytest.mark.postgres_only
def test_concurrent_sends_sharing_users_in_opposite_orders_do_not_deadlock(app):
    users = ["ana", "bob", "cara"]
    known_users(app, users)
    outcomes = crossing_sends(app, users, threads=4, rounds=60)
    assert outcomes == {"stored": 240}
    with app.app_context():
        assert true_counts(db.session) == dict.fromkeys(users, 240)


@pytest.mark.postgres_only
def test_without_the_recipients_lock_the_same_sends_deadlock(app, monkeypatch):
    # The control for the test above: it proves those sends do cross, so that its passing
    # means the lock works. Without the lock every round with an inline recipient deadlocked
    # (20 of 20 in 30 rounds, none of the 10 without); each deadlock waits out
    # deadlock_timeout (1 s), hence two rounds, both inline.
    for kind, query in unlocked_recipient_queries(monkeypatch).items():
        monkeypatch.setitem(send_service.STORED_RECIPIENTS, kind, query)
    users = ["ana", "bob"]
    known_users(app, users)
    outcomes = crossing_sends(app, users, threads=2, rounds=2)
    assert outcomes["DeadlockDetected"] >= 1, outcomes
    assert set(outcomes) <= {"stored", "DeadlockDetected"}, outcomes
    # The aborted sends took their count changes with them.
    with app.app_context():
        assert true_counts(db.session) == dict.fromkeys(users, outcomes["stored"])


@pytest.mark.postgres_only
def test_a_fan_out_to_500_users_counts_each_once(app, producer):
    users = [f"user-{n:03d}" for n in range(500)]
    # Half already have one unread; the other half are created by the fan-out itself, and a
    # fifth of all are given inline, so the upsert locks rows before the trigger does.
    send(producer, to=users[:250], title="before")
    to = [
        {"user_id": u, "email": f"{u}@example.com"} if n % 5 == 0 else u
        for n, u in enumerate(users)
    ]
    assert len(send(producer, to=to[::-1], title="everyone")) == 500
    with app.app_context():
        counts = true_counts(db.session)
    assert counts == {u: 2 if n < 250 else 1 for n, u in enumerate(users)}


def pages_of_users(app: Flask) -> dict[str, int]:
    """The heap page each user's current row version is on."""
    with app.app_context():
        rows = db.session.execute(text("SELECT id, (ctid::text::point)[0]::int FROM users"))
        return dict(rows.all())


@pytest.mark.postgres_only
def test_a_fan_out_changes_every_count_on_the_rows_own_page(app, producer):
    # Migration 62c42248f1b7 keeps half of each users page free, so that the trigger's new row
    # versions fit beside the old ones (an update PostgreSQL makes without touching the index)
    # even when one send changes every row on a page. On full pages each would move.
    users = [f"user-{n:03d}" for n in range(300)]
    known_users(app, users)
    pages = pages_of_users(app)
    assert len(set(pages.values())) > 2
    send(producer, to=users, title="everyone")
    assert pages_of_users(app) == pages
    with app.app_context():
        assert true_counts(db.session) == dict.fromkeys(users, 1)
