"""Prometheus metrics each process counts of its own work: requests, sends, delivery outcomes,
job durations, sockets. The web process serves them at `GET /metrics` (app/api/metrics.py)
with the shared state read at scrape time; a worker serves its own on
WORKER_METRICS_ADDRESS.
"""

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from app.services.send import SendResult

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "notify_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "notify_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
NOTIFICATIONS_CREATED = Counter(
    "notify_notifications_created", "Notifications stored, by priority.", ["priority"]
)
DELIVERIES = Counter(
    "notify_deliveries",
    "Channel deliveries by status: queued or skipped when created, sent or failed when done "
    "(webhook events count as channel 'webhook').",
    ["channel", "status"],
)
RETRIES = Counter(
    "notify_delivery_retries",
    "Tries that failed transiently and were scheduled again (webhooks as channel 'webhook').",
    ["channel"],
)
JOB_DURATION = Histogram(
    "notify_job_duration_seconds",
    "Time one try of one outbox job took, by kind and outcome.",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
RATE_LIMITED = Counter(
    "notify_rate_limited", "Requests and socket events refused by a rate limit.", ["limit"]
)
CONNECTED_SOCKETS = Gauge("notify_connected_sockets", "Socket.IO connections to this process.")
SOCKET_CONNECTS_WAITING = Gauge(
    "notify_socket_connects_waiting",
    "Socket.IO connects waiting for their turn (past SOCKET_CONNECTS_IN_FLIGHT at once).",
)


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request; paths that matched no route share one label."""
    label = route or "unmatched"
    HTTP_REQUESTS.labels(method, label, str(status)).inc()
    HTTP_LATENCY.labels(method, label).observe(seconds)


def count_send(result: "SendResult") -> None:
    """Count a committed send: its notifications and the deliveries it stored."""
    NOTIFICATIONS_CREATED.labels(result.priority).inc(len(result.notifications))
    for (channel, status), count in result.deliveries_by_status.items():
        DELIVERIES.labels(channel, status).inc(count)
