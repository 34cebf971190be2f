"""Request ids and access logs: one line per request, JSON when LOG_FORMAT=json."""

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from app import metrics

REQUEST_ID_HEADER = "X-Request-ID"
ACCEPTED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("notify.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self.STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(app: Flask) -> None:
    """Send logs to stderr as text or JSON lines, at LOG_LEVEL."""
    handler = logging.StreamHandler()
    if app.config["LOG_FORMAT"] == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(app.config["LOG_LEVEL"].upper())
    # At DEBUG urllib3 logs every request line, push endpoints' tokens included.
    logging.getLogger("urllib3").setLevel(max(root.level, logging.INFO))


def init_app(app: Flask) -> None:
    """Give each request an id (the caller's `X-Request-ID` when sane) and log it once."""

    @app.before_request
    def start_request() -> None:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = supplied if ACCEPTED_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id is None:
            return response
        response.headers[REQUEST_ID_HEADER] = request_id
        seconds = time.perf_counter() - g.request_started
        duration_ms = round(seconds * 1000, 2)
        route = request.url_rule.rule if request.url_rule else None
        metrics.observe_request(request.method, route, response.status_code, seconds)
        access_log.info(
            "%s %s %s %.2fms",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
