"""A send's deliveries are queued after its commit in one Redis pipeline, each first try in
its priority's queue under its own job id."""

from sqlalchemy import select

from app.extensions import db
from app.jobs.queue import job_id
from app.models import Delivery


def test_first_tries_go_in_one_pipeline_to_their_priority_queues(app, producer, monkeypatch):
    queue = app.extensions["job_queue"]
    pipelines = []
    make_pipeline = queue.connection.pipeline

    def counted(*args, **kwargs):
        pipelines.append(args)
        return make_pipeline(*args, **kwargs)

    monkeypatch.setattr(queue.connection, "pipeline", counted)
    users = [{"user_id": f"q{n}", "email": f"q{n}@example.com"} for n in range(5)]
    high = producer.post(
        "/notifications",
        json={"to": users, "title": "t", "channels": ["email"], "priority": "high"},
    )
    assert high.status_code == 201
    assert len(pipelines) == 1
    critical = producer.post(
        "/notifications",
        json={"to": "q0", "title": "t", "channels": ["email", "sms"], "priority": "critical"},
    )
    assert critical.status_code == 201
    with app.app_context():
        ids = {
            row.notification_id: row.id
            for row in db.session.scalars(select(Delivery).where(Delivery.status == "queued"))
        }
    high_ids = [ids[int(n["id"])] for n in high.get_json()["notifications"]]
    assert queue.queues["high"].job_ids == [job_id("delivery", i, 1) for i in high_ids]
    [critical_delivery] = [
        delivery_id
        for notification_id, delivery_id in ids.items()
        if str(notification_id) == critical.get_json()["notifications"][0]["id"]
    ]
    # q0 has no phone: the SMS is skipped, only the email waits.
    assert queue.queues["critical"].job_ids == [job_id("delivery", critical_delivery, 1)]
    assert queue.queues["default"].job_ids == []
