"""Runs an RQ worker on the app's queues, with the app context, until stopped.

Usage: `python worker.py [QUEUE ...]` (default: the `default` queue). Needs REDIS_URL.
"""

import sys

from redis import Redis
from rq import Queue, Worker

from app import create_app

DEFAULT_QUEUES = ("default",)


def main(queue_names: list[str]) -> None:
    """Work the named queues until SIGTERM or SIGINT."""
    app = create_app()
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        sys.exit("worker.py needs REDIS_URL; without it jobs run inside the web process")
    connection = Redis.from_url(redis_url)
    with app.app_context():
        queues = [Queue(name, connection=connection) for name in queue_names or DEFAULT_QUEUES]
        Worker(queues, connection=connection).work(with_scheduler=True)


if __name__ == "__main__":
    main(sys.argv[1:])
