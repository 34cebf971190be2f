"""Inbox at scale: one user's inbox queries among millions of notifications, in the database
and over HTTP, with their plans.

The tables are filled once per size and kept between runs: a filled database named by a digest
of the migrations, this file and the size's settings (any change to them makes a new one and
drops the old), of which each run takes a fresh copy (CREATE DATABASE ... TEMPLATE, a file
copy: seconds where the fill takes minutes at 10 million rows). They are filled with COPY:
many users whose activity follows a power law (a few busy,
most quiet), and one measured user whose rows are every `rows / measured_rows`-th id, spread
through the whole table and its history as a long-lived heavy user's are. The shares of
read, unread and archived rows are below; a few of the others' notifications are email-only
(not in the inbox). As in any bulk load, the secondary indexes and the foreign key are
dropped for the COPY and rebuilt after it; the rows are written frozen (COPY FREEZE), so the
visibility map is set as VACUUM leaves a settled table; then ANALYZE.

- In the database: the exact SQL `app/services/inbox.py` issues for the measured user
  (captured from the SQLAlchemy engine while the service runs in an app context), run on one
  psycopg2 connection `database_calls` times each after a warm-up, each round trip (execute
  and fetch) timed: the first page, a page DEEP_SHARE * measured_rows into the inbox (by
  cursor), the unread count, and an `after=` catch-up CATCH_UP_BACK notifications back.
- Over HTTP: the same four as `GET /me/notifications`, `?cursor=`, `GET /me/unread-count`
  and `?after=` with the user's token, `http_calls` times each after a warm-up, one request
  at a time on one keep-alive connection to one web process. A listing request also runs
  the unread count, as the service does.
- Plans: EXPLAIN (ANALYZE, BUFFERS) of each query, in `details["plans"]`.
"""

import hashlib
import http.client
import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg2
from sqlalchemy import event

from bench.harness import (
    ROOT,
    SECRET,
    Bench,
    Stack,
    create_database,
    drop_database,
    existing_databases,
    migrate,
    postgres_url,
    rename_database,
)
from bench.in_process import app_for
from bench.report import ScenarioResult, percentiles

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "rows": 30_000,
        "measured_rows": 3_000,
        "users": 1_000,
        "database_calls": 50,
        "http_calls": 30,
    },
    "quick": {
        "rows": 300_000,
        "measured_rows": 30_000,
        "users": 10_000,
        "database_calls": 500,
        "http_calls": 200,
    },
    "full": {
        "rows": 10_000_000,
        "measured_rows": 100_000,
        "users": 200_000,
        "database_calls": 1_000,
        "http_calls": 1_000,
    },
}
"""`rows` notifications in all, `measured_rows` of them the measured user's, spread over
`users` other users; each query timed `database_calls` times in the database and
`http_calls` times over HTTP."""
DATABASE_TARGET_MS = 5.0
HTTP_TARGET_MS = 10.0
MEASURED_USER = "power-user"
DEEP_SHARE = 0.9
"""The deep cursor page starts this share of the measured user's rows into their inbox:
90,000 rows in at the full size (their inbox holds about 95,000, the rest are archived)."""
CATCH_UP_BACK = 50
"""The `after=` catch-up starts this many of the measured user's notifications back."""
WARM_UP_CALLS = 10
ACTIVITY_EXPONENT = 0.6
"""Other users' activity falls off as rank^-0.6: at the full size the busiest has about
30,000 notifications, the median about 30."""
HISTORY_DAYS = 180
CHUNK_ROWS = 20_000
"""Rows per COPY chunk; each chunk shares one created_at, ids still order them."""
CATEGORIES = {
    "comment": (40, "Ana replied to your comment", "Looks good to me, merging after lunch."),
    "mention": (15, "Ben mentioned you", "@you can you take a look at the migration?"),
    "follow": (15, "Chloe started following you", "You have a new follower."),
    "digest": (20, "Your weekly digest", "12 new posts in the projects you follow."),
    "billing": (5, "Your invoice is ready", "Invoice 2026-11 for 42.00 EUR is ready."),
    "security": (5, "New sign-in from Firefox on Linux", "If this was not you, reset it now."),
}
"""Category: weight, title and body of its notifications."""
OTHERS_STATES = {"read": 72, "unread": 15, "archived": 10, "email_only": 3}
MEASURED_STATES = {"read": 90, "unread": 5, "archived": 5}
"""How many in a hundred notifications are read, unread, archived (read, then archived), or
email-only (not in the inbox)."""
FILLED_PREFIX = "notify_bench_inbox_filled_"
"""Filled databases are named FILLED_PREFIX + size + "_" + digest."""
NOTIFICATION_COLUMNS = (
    "id, user_id, category, title, body, data, action_url, priority, in_app,"
    " created_at, seen_at, read_at, archived_at"
)


def _variants(states: dict[str, int], created: datetime) -> tuple[list[str], list[int]]:
    """Every (category, state) row tail after `id` and `user_id`, made at `created`, and
    their cumulative weights."""
    read = created + timedelta(hours=1)
    stamps = {
        "read": (True, read, read, None),
        "unread": (True, None, None, None),
        "archived": (True, read, read, read + timedelta(days=1)),
        "email_only": (False, None, None, None),
    }
    lines, weights = [], []
    for number, (category, (weight, title, body)) in enumerate(CATEGORIES.items()):
        for state, share in states.items():
            in_app, seen, read_at, archived = stamps[state]
            cells = [
                category,
                title,
                body,
                f'{{"ref": {1000 + number}}}',
                f"https://app.example.com/{category}/{1000 + number}",
                "normal",
                "t" if in_app else "f",
                created.isoformat(),
                *(stamp.isoformat() if stamp else r"\N" for stamp in (seen, read_at, archived)),
            ]
            lines.append("\t".join(cells))
            weights.append(weight * share)
    return lines, list(accumulate(weights))


class Chunks:
    """A file-like object for COPY FROM STDIN: each `read` returns the next chunk of rows
    (psycopg2 sends whatever `read` returns, whatever size it asked for)."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self.chunks = chunks

    def read(self, _size: int = -1) -> str:
        return next(self.chunks, "")


def _notification_chunks(settings: dict[str, Any]) -> Iterator[str]:
    """The notifications, CHUNK_ROWS at a time, ids 1 to `rows`, oldest first."""
    rows, measured = settings["rows"], settings["measured_rows"]
    stride = rows // measured
    # Seeded: every run of a size loads the same table.
    randomness = random.Random(6)
    users = [f"user-{rank}" for rank in range(1, settings["users"] + 1)]
    activity = list(accumulate(rank**-ACTIVITY_EXPONENT for rank in range(1, len(users) + 1)))
    start_time = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
    step = timedelta(days=HISTORY_DAYS) / (rows / CHUNK_ROWS + 1)
    for first in range(1, rows + 1, CHUNK_ROWS):
        last = min(rows, first + CHUNK_ROWS - 1)
        created = start_time + step * (first // CHUNK_ROWS)
        others, others_weights = _variants(OTHERS_STATES, created)
        mine, mine_weights = _variants(MEASURED_STATES, created)
        count = last - first + 1
        owners = randomness.choices(users, cum_weights=activity, k=count)
        tails = randomness.choices(others, cum_weights=others_weights, k=count)
        lines = [
            f"{row_id}\t{owner}\t{tail}"
            for row_id, owner, tail in zip(range(first, last + 1), owners, tails, strict=True)
        ]
        for row_id in range(first + (-first) % stride, last + 1, stride):
            tail = randomness.choices(mine, cum_weights=mine_weights)[0]
            lines[row_id - first] = f"{row_id}\t{MEASURED_USER}\t{tail}"
        yield "\n".join(lines) + "\n"


def _user_chunks(settings: dict[str, Any]) -> Iterator[str]:
    """The users: the measured one and `users` others, in one chunk."""
    now = datetime.now(UTC).isoformat()
    ids = [MEASURED_USER, *(f"user-{rank}" for rank in range(1, settings["users"] + 1))]
    yield "".join(f"{user}\t{user}@example.com\t{now}\t{now}\n" for user in ids)


def _fill(database_url: str, settings: dict[str, Any]) -> dict[str, float]:
    """Load users and notifications with COPY, rebuild the indexes and the foreign key,
    ANALYZE; the seconds each step took."""
    connection = psycopg2.connect(database_url)
    seconds = {}
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'notifications'"
            " AND indexname <> 'notifications_pkey'"
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'notifications'::regclass AND contype = 'f'"
        )
        foreign_keys = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE notifications DROP CONSTRAINT "{name}"')
        # FREEZE needs the tables truncated in this transaction; they are empty, and so are
        # the tables that refer to them, which CASCADE truncates too.
        cursor.execute("TRUNCATE users, notifications CASCADE")
        started = time.monotonic()
        cursor.copy_expert(
            "COPY users (id, email, created_at, updated_at) FROM STDIN WITH (FREEZE)",
            Chunks(_user_chunks(settings)),
        )
        cursor.copy_expert(
            f"COPY notifications ({NOTIFICATION_COLUMNS}) FROM STDIN WITH (FREEZE)",
            Chunks(_notification_chunks(settings)),
        )
        seconds["copy"] = time.monotonic() - started
        # Index builds sort: give them room (this session only).
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in indexes:
            started = time.monotonic()
            cursor.execute(definition)
            seconds[name] = time.monotonic() - started
        for name, definition in foreign_keys:
            started = time.monotonic()
            cursor.execute(f'ALTER TABLE notifications ADD CONSTRAINT "{name}" {definition}')
            seconds[name] = time.monotonic() - started
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('notifications', 'id'), %s)", (settings["rows"],)
        )
        started = time.monotonic()
        connection.commit()
        seconds["commit"] = time.monotonic() - started
    connection.autocommit = True
    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute("ANALYZE users, notifications")
        seconds["analyze"] = time.monotonic() - started
    connection.close()
    return {step: round(value, 2) for step, value in seconds.items()}


def _filled_database(size: str, settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The filled database of this size's runs, made when missing (after dropping the
    size's older ones): its name, and the seconds each step of a fill took (empty when it
    was there already)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in [*sorted((ROOT / "migrations" / "versions").glob("*.py")), Path(__file__)]:
        digest.update(path.read_bytes())
    name = f"{FILLED_PREFIX}{size}_{digest.hexdigest()[:12]}"
    if name in existing_databases(name):
        return name, {}
    # Older fills of this size, and any fill that was cut short.
    for stale in existing_databases(f"{FILLED_PREFIX}{size}_%"):
        drop_database(stale)
    # Filled under another name, so a fill cut short is never taken for a whole one.
    filling = f"{name}_filling"
    create_database(filling)
    migrate(os.environ | {"DATABASE_URL": postgres_url(filling), "SECRET_KEY": SECRET})
    seconds = _fill(postgres_url(filling), settings)
    rename_database(filling, name)
    return name, seconds


def _facts(database_url: str) -> dict[str, Any]:
    """The measured user's inbox ids (newest first) and counts, and the table's size."""
    connection = psycopg2.connect(database_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, read_at IS NULL FROM notifications"
            " WHERE user_id = %s AND in_app AND archived_at IS NULL ORDER BY id DESC",
            (MEASURED_USER,),
        )
        inbox = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM notifications WHERE user_id = %s", (MEASURED_USER,))
        [measured] = cursor.fetchone()
        cursor.execute(
            "SELECT pg_size_pretty(pg_table_size('notifications')),"
            " pg_size_pretty(pg_indexes_size('notifications')),"
            " relallvisible::float / greatest(relpages, 1)"
            " FROM pg_class WHERE relname = 'notifications'"
        )
        table, indexes, all_visible = cursor.fetchone()
    connection.close()
    return {
        "inbox": [row_id for row_id, _ in inbox],
        "measured_rows": measured,
        "measured_inbox": len(inbox),
        "measured_unread": sum(unread for _, unread in inbox),
        "table_size": table,
        "indexes_size": indexes,
        "all_visible_share": round(all_visible, 3),
    }


def _cases(inbox_ids: list[int], measured_rows: int) -> dict[str, dict[str, str] | None]:
    """Each case's listing query (as `GET /me/notifications` takes it), or None for the
    unread count. `inbox_ids` are the measured user's, newest first."""
    from app.services import inbox

    deep = inbox_ids[min(len(inbox_ids) - 1, int(measured_rows * DEEP_SHARE))]
    return {
        "first page": {},
        "deep cursor page": {"cursor": inbox.Cursor(deep, inbox.OLDER).encode()},
        "unread count": None,
        "after= catch-up": {"after": str(inbox_ids[CATCH_UP_BACK])},
    }


def _statements(
    stack: Stack, cases: dict[str, dict[str, str] | None]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """The SQL and parameters the inbox service issues for each case, captured from its
    engine while it runs."""
    from app.api.schemas import InboxQuery
    from app.extensions import db
    from app.services import inbox

    app = app_for(stack.env)
    captured: list[tuple[str, dict[str, Any]]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        # The pool's pre-ping is not the service's.
        if statement.strip() != "SELECT 1":
            captured.append((statement, parameters))

    statements = {}
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            for case, query in cases.items():
                captured.clear()
                if query is None:
                    inbox.unread_count(db.session, MEASURED_USER)
                else:
                    inbox.list_inbox(db.session, MEASURED_USER, InboxQuery.model_validate(query))
                # A listing runs the page, then its unread count: the page is the first.
                statements[case] = captured[0]
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
            db.session.remove()
    return statements


def _time_database(
    database_url: str, statements: dict[str, tuple[str, dict[str, Any]]], calls: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Each statement `calls` times after a warm-up: each round trip in ms; and each one's
    EXPLAIN (ANALYZE, BUFFERS)."""
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    samples, plans = {}, {}
    with connection.cursor() as cursor:
        for case, (statement, parameters) in statements.items():
            for _ in range(WARM_UP_CALLS):
                cursor.execute(statement, parameters)
                cursor.fetchall()
            timings = []
            for _ in range(calls):
                started = time.perf_counter()
                cursor.execute(statement, parameters)
                cursor.fetchall()
                timings.append((time.perf_counter() - started) * 1000)
            samples[case] = timings
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans[case] = "\n".join(row[0] for row in cursor.fetchall())
    connection.close()
    return samples, plans


def _time_http(
    stack: Stack, cases: dict[str, dict[str, str] | None], calls: int
) -> dict[str, list[float]]:
    """Each case's request `calls` times after a warm-up, one at a time on one keep-alive
    connection with the measured user's token: each request's time in ms."""
    token = stack.call("POST", f"/users/{MEASURED_USER}/tokens", {"ttl_seconds": 3600})["token"]
    address = urlsplit(stack.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    samples = {}
    for case, query in cases.items():
        if query is None:
            path = "/me/unread-count"
        else:
            path = "/me/notifications" + (f"?{urlencode(query)}" if query else "")
        timings = []
        for call in range(WARM_UP_CALLS + calls):
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
            if call >= WARM_UP_CALLS:
                timings.append(elapsed)
        samples[case] = timings
    connection.close()
    return samples


def run(bench: Bench) -> ScenarioResult:
    """Fill the table, then time the four queries in the database and over HTTP."""
    settings = bench.settings
    result = ScenarioResult("inbox")
    filled, load_seconds = _filled_database(bench.size, settings)
    started = time.monotonic()
    with bench.stack("inbox", web=1, template=filled) as stack:
        copy_seconds = time.monotonic() - started
        database_url = stack.env["DATABASE_URL"]
        facts = _facts(database_url)
        cases = _cases(facts.pop("inbox"), settings["measured_rows"])
        statements = _statements(stack, cases)
        database, plans = _time_database(database_url, statements, settings["database_calls"])
        over_http = _time_http(stack, cases, settings["http_calls"])
    for layer, samples, target in (
        ("database", database, DATABASE_TARGET_MS),
        ("HTTP", over_http, HTTP_TARGET_MS),
    ):
        for case, timings in samples.items():
            spread = percentiles(timings)
            result.add(f"{case}, {layer}", "p50", spread["p50"], "ms")
            result.add(
                f"{case}, {layer}",
                "p99",
                spread["p99"],
                "ms",
                f"<= {target:g} ms",
                spread["p99"] <= target,
            )
            result.distributions[f"{layer}: {case}"] = timings
    result.details.update(
        {
            "filled_database": filled,
            "load_seconds": load_seconds,
            "copy_and_start_seconds": round(copy_seconds, 2),
            **facts,
            "rows": settings["rows"],
            "users": settings["users"],
            "database_calls": settings["database_calls"],
            "http_calls": settings["http_calls"],
            "queries": cases,
            "plans": plans,
            "plans_without_seq_scan": {
                case: "Seq Scan" not in plan for case, plan in plans.items()
            },
            "sql": {case: statement for case, (statement, _) in statements.items()},
        }
    )
    return result
