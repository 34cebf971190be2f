"""`GET /metrics`: this process's counters plus the state every process shares (queue
depths, the failed-job registry, outbox rows waiting), read when Prometheus scrapes."""

import hmac
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, has_app_context, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.api.errors import error_response
from app.extensions import db
from app.jobs.queue import job_queue
from app.models import Delivery, WebhookEvent


class SharedStateCollector(Collector):
    """What every process shares, read at scrape time: only where an app context exists
    (the web process's /metrics), so a worker's own endpoint does not repeat it."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not has_app_context():
            return
        depths = job_queue().depths()
        waiting = GaugeMetricFamily(
            "notify_queue_jobs", "Jobs waiting in each queue.", labels=["queue"]
        )
        for queue, count in depths.waiting.items():
            waiting.add_metric([queue], count)
        yield waiting
        yield GaugeMetricFamily(
            "notify_queue_scheduled_jobs", "Retries waiting for their time.", value=depths.scheduled
        )
        yield GaugeMetricFamily(
            "notify_failed_jobs", "Jobs in the failed registry (given up).", value=depths.failed
        )
        outbox = GaugeMetricFamily(
            "notify_outbox_queued", "Outbox rows not yet sent, by kind.", labels=["kind"]
        )
        for kind, model in (("delivery", Delivery), ("webhook", WebhookEvent)):
            count = db.session.scalar(
                select(func.count()).select_from(model).where(model.status == "queued")
            )
            outbox.add_metric([kind], count or 0)
        db.session.rollback()
        yield outbox


REGISTRY.register(SharedStateCollector())

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format. With METRICS_TOKEN set, only `Authorization: Bearer <it>`."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            refused = error_response(
                401, "invalid_credential", "send `Authorization: Bearer <METRICS_TOKEN>`"
            )
            refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refused
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)
