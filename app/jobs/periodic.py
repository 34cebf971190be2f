"""The periodic jobs of a worker (or of the web process in the embedded mode): the relay,
which queues outbox rows whose job was lost, and retention. Each runs in a loop of its own,
every interval, and a failed pass only waits for the next one."""

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask

from app.extensions import socketio
from app.jobs.deliveries import relay_due
from app.jobs.retention import purge_now

log = logging.getLogger(__name__)


def _every(app: Flask, interval_setting: str, job: Callable[[], Any]) -> None:
    while True:
        with app.app_context():
            try:
                job()
            except Exception:
                # Redis or the database is down: the next pass tries again. Nothing is lost,
                # the rows stay in their tables.
                log.exception("periodic %s failed", job.__name__)
        socketio.sleep(app.config[interval_setting])


def start(app: Flask) -> None:
    """Run the relay every RELAY_INTERVAL_SECONDS and retention every
    RETENTION_INTERVAL_SECONDS, as background tasks, for as long as the process lives."""
    socketio.start_background_task(_every, app, "RELAY_INTERVAL_SECONDS", relay_due)
    socketio.start_background_task(_every, app, "RETENTION_INTERVAL_SECONDS", purge_now)
