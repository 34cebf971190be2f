"""The raw ceilings: what Redis and PostgreSQL do on their own on this machine, in the same
run as the product, with their own tools.

- `redis_publish`: `redis-benchmark` PUBLISH of a notification-sized message, per second;
- `pg_insert`: `pgbench` with a one-row INSERT per transaction into a throwaway copy of the
  notifications table (same columns, defaults and indexes; no foreign key), per second;
- `pg_copy`: COPY of rows into the notifications table itself, rows per second.
"""

import csv
import io
import re
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

import psycopg2

CHANNEL = "notify-bench-raw"
"""Nobody subscribes to it: the product's channel would make its processes decode the noise."""
MESSAGE = "x" * 400
"""About the size of one of the product's `notification` emits (no quotes or commas, which
redis-benchmark's CSV would repeat unescaped)."""
INSERT = (
    "INSERT INTO bench_raw_insert (user_id, category, title, body, data, priority, in_app) "
    "VALUES ('raw-' || (random() * 1000)::int, 'general', 'Ingest', 'one recipient', '{}', "
    "'normal', true);\n"
)


def redis_publish(redis_url: str, requests: int, clients: int) -> float:
    """PUBLISH commands per second from `clients` connections, no pipelining."""
    address = urlsplit(redis_url)
    output = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            address.hostname or "127.0.0.1",
            "-p",
            str(address.port or 6379),
            "-n",
            str(requests),
            "-c",
            str(clients),
            "--csv",
            "PUBLISH",
            CHANNEL,
            MESSAGE,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    return float(rows[-1]["rps"])


def pg_insert(database_url: str, seconds: int, clients: int) -> float:
    """One-row INSERT transactions per second from `clients` pgbench connections."""
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_raw_insert (LIKE notifications INCLUDING DEFAULTS "
            "INCLUDING IDENTITY INCLUDING INDEXES)"
        )
    connection.close()
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write(INSERT)
            script.flush()
            output = subprocess.run(
                [
                    "pgbench",
                    "--no-vacuum",
                    "--file",
                    script.name,
                    "--client",
                    str(clients),
                    "--jobs",
                    "2",
                    "--time",
                    str(seconds),
                    database_url,
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=seconds + 60,
            ).stdout
    finally:
        with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_raw_insert")
        connection.close()
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{output}")
    return float(found.group(1))


def pg_copy(database_url: str, rows: int) -> float:
    """Rows per second of one COPY into notifications (one user's, committed), timed from the
    first byte to the commit."""
    lines = "".join(
        f"raw-copy\tgeneral\tIngest {i}\tone recipient\t{{}}\tnormal\tt\n" for i in range(rows)
    )
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO users (id) VALUES ('raw-copy') ON CONFLICT DO NOTHING")
        connection.commit()
        started = time.perf_counter()
        cursor.copy_expert(
            "COPY notifications (user_id, category, title, body, data, priority, in_app) "
            "FROM STDIN",
            io.StringIO(lines),
        )
        connection.commit()
        elapsed = time.perf_counter() - started
    connection.close()
    return rows / elapsed
