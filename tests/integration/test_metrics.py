"""Prometheus metrics: `GET /metrics` of the web app, scraped and parsed, and a real worker's
own endpoint after it delivered. Counters are per process, so tests compare before and after.
"""

import json
import re
import urllib.request
from pathlib import Path

import socketio as socketio_client
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.job import Job

from app.redis_client import redis_client
from tests.conftest import PROJECT_ROOT, ApiClient, assert_error
from tests.servers import free_port
from tests.stack import Stack

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text page, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_send_is_counted_by_priority_channel_and_status(app, client, producer):
    assert producer.put("/users/ana", json={"email": "ana@example.com"}).status_code == 201
    before = scrape(client)
    response = producer.post(
        "/notifications",
        json={"to": ["ana", "bob"], "title": "Hi", "channels": ["in_app", "email", "sms"]},
    )
    assert response.status_code == 201
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("notify_notifications_created_total", priority="normal") == 2
    assert delta("notify_deliveries_total", channel="email", status="queued") == 1
    # bob has no email address, and nobody has a phone number.
    assert delta("notify_deliveries_total", channel="email", status="skipped") == 1
    assert delta("notify_deliveries_total", channel="sms", status="skipped") == 2
    route = {"method": "POST", "route": "/notifications"}
    assert delta("notify_http_requests_total", status="201", **route) == 1
    assert delta("notify_http_request_duration_seconds_count", **route) == 1
    assert value(after, "notify_http_request_duration_seconds_sum", **route) > 0


def test_requests_are_labelled_by_route_template_not_path(client, producer):
    producer.get("/users/ana")
    producer.get("/users/bob")
    client.get("/no/such/page")
    samples = scrape(client)
    assert (
        value(
            samples,
            "notify_http_requests_total",
            method="GET",
            route="/users/<user_id>",
            status="404",
        )
        >= 2
    )
    assert (
        value(samples, "notify_http_requests_total", method="GET", route="unmatched", status="404")
        >= 1
    )
    assert not any("ana" in str(labels) for _, labels in samples)


def test_queue_depths_failed_jobs_and_waiting_outbox_rows(app, client, producer):
    assert producer.put("/users/ana", json={"email": "ana@example.com"}).status_code == 201
    for _ in range(3):
        producer.post("/notifications", json={"to": "ana", "title": "Hi", "channels": ["email"]})
    producer.post(
        "/notifications",
        json={"to": "ana", "title": "Now", "channels": ["email"], "priority": "critical"},
    )
    with app.app_context():
        connection = redis_client()
        dead = Job.create("app.jobs.deliveries.deliver", args=(999,), connection=connection)
        dead.save()
        Queue("default", connection=connection).failed_job_registry.add(dead, ttl=60)
    samples = scrape(client)
    assert value(samples, "notify_queue_jobs", queue="default") == 3
    assert value(samples, "notify_queue_jobs", queue="critical") == 1
    assert value(samples, "notify_queue_jobs", queue="low") == 0
    assert value(samples, "notify_failed_jobs") == 1
    assert value(samples, "notify_outbox_queued", kind="delivery") == 4
    assert value(samples, "notify_outbox_queued", kind="webhook") == 0


def test_rate_limited_requests_are_counted(app, client, producer, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_API_KEY", "1 per minute")
    before = value(scrape(client), "notify_rate_limited_total", limit="api_key")
    assert producer.get("/templates").status_code == 200
    assert producer.get("/templates").status_code == 429
    assert value(scrape(client), "notify_rate_limited_total", limit="api_key") == before + 1


def test_metrics_token_guards_the_page_when_set(app_with):
    guarded = app_with(METRICS_TOKEN="scrape-me-0123456789")
    client = guarded.test_client()
    assert_error(client.get("/metrics"), 401, "invalid_credential")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "invalid_credential")
    scrape(ApiClient(client, "scrape-me-0123456789"))


def _scrape_url(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        return parse(response.read().decode())


def test_a_real_worker_and_web_process_report_their_own_work(tmp_path: Path):
    worker_port = free_port()
    stack = Stack(tmp_path, "metrics", WORKER_METRICS_ADDRESS=f"127.0.0.1:{worker_port}")
    try:
        stack.start()
        stack.start_worker()
        stack.call("PUT", "/users/ana", {"email": "ana@example.com"})
        [notification_id] = stack.send(to="ana", title="Measured", channels=["email"])
        stack.wait_for(
            lambda: stack.deliveries(notification_id)["email"]["status"] == "sent",
            what="the email to be sent",
        )
        worker = _scrape_url(f"http://127.0.0.1:{worker_port}/metrics")
        assert value(worker, "notify_deliveries_total", channel="email", status="sent") == 1
        duration = ("notify_job_duration_seconds_count", {"kind": "delivery", "outcome": "sent"})
        assert value(worker, duration[0], **duration[1]) == 1
        # The worker's page has its own counters only; queue depths are the web's to report.
        assert not any(name == "notify_queue_jobs" for name, _ in worker)

        token = stack.call("POST", "/users/ana/tokens", {})["token"]
        tab = socketio_client.Client(reconnection=False)
        tab.connect(stack.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        try:
            web = _scrape_url(f"{stack.url}/metrics")
            assert value(web, "notify_connected_sockets") == 1
            assert value(web, "notify_outbox_queued", kind="delivery") == 0
            assert value(web, "notify_notifications_created_total", priority="normal") == 1
        finally:
            tab.disconnect()
    finally:
        stack.close()


def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(client, producer):
    dashboard = json.loads((PROJECT_ROOT / "docs" / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:notify|process)_[a-z_]+)", target["expr"])
    }
    assert len(queried) >= 10
    producer.post("/notifications", json={"to": "ana", "title": "Hi"})
    exported = set()
    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        # A labelled metric with nothing counted yet has no samples, only its family.
        exported |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count")}
    assert queried <= exported, queried - exported
