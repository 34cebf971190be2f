"""A send's deliveries are queued after its commit in one Redis pipeline: first tries in
jobs of up to DELIVERY_BATCH deliveries, each in its priority's queue."""

from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from sqlalchemy import select

from app.extensions import db
from app.jobs.queue import batch_job_id, batches, job_id
from app.models import Delivery


def test_batches_keep_order_within_a_priority_and_never_mix_priorities():
    rows = [(1, "high"), (2, "low"), (3, "high"), (4, "high"), (5, "low")]
    assert batches(rows, 2) == [("high", [1, 3]), ("high", [4]), ("low", [2, 5])]
    assert batches(rows, 100) == [("high", [1, 3, 4]), ("low", [2, 5])]


def test_a_batch_of_one_keeps_the_try_id_the_relay_checks():
    assert batch_job_id("delivery", [7]) == job_id("delivery", 7, 1)
    assert batch_job_id("delivery", [7, 9]) not in {
        job_id("delivery", 7, 1),
        job_id("delivery", 9, 1),
    }


def test_first_tries_go_in_one_pipeline_to_their_priority_queues(app, producer, monkeypatch):
    queue = app.extensions["job_queue"]
    pipelines = []
    make_pipeline = queue.connection.pipeline

    def counted(*args, **kwargs):
        pipelines.append(args)
        return make_pipeline(*args, **kwargs)

    monkeypatch.setattr(queue.connection, "pipeline", counted)
    monkeypatch.setattr(queue, "batch_size", 2)
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
    jobs = [Job.fetch(i, connection=queue.connection) for i in queue.queues["high"].job_ids]
    assert [job.args for job in jobs] == [
        tuple(high_ids[0:2]),
        tuple(high_ids[2:4]),
        (high_ids[4],),
    ]
    assert [job.id for job in jobs] == [batch_job_id("delivery", list(job.args)) for job in jobs]
    assert {job.func_name for job in jobs} == {"app.jobs.deliveries.deliver"}
    [critical_delivery] = [
        delivery_id
        for notification_id, delivery_id in ids.items()
        if str(notification_id) == critical.get_json()["notifications"][0]["id"]
    ]
    # q0 has no phone: the SMS is skipped, only the email waits.
    assert queue.queues["critical"].job_ids == [job_id("delivery", critical_delivery, 1)]
    assert queue.queues["default"].job_ids == []


def test_a_due_try_left_in_the_scheduled_registry_is_queued_by_the_relays_call(app):
    queue = app.extensions["job_queue"]
    identifier = job_id("delivery", 41, 2)
    assert queue.enqueue("delivery", 41, 2, "high", delay_seconds=600)
    scheduled = queue.queues["high"].scheduled_job_registry
    assert scheduled.get_job_ids() == [identifier]
    # A retry that waits for its time is left alone when asked for again with a delay.
    assert not queue.enqueue("delivery", 41, 2, "high", delay_seconds=600)
    assert queue.queues["high"].job_ids == []

    # The relay asks for it with no delay once the row is due, and no scheduler holds the
    # queue's lock.
    assert queue.enqueue("delivery", 41, 2, "high")
    assert scheduled.get_job_ids() == []
    assert queue.queues["high"].job_ids == [identifier]
    assert Job.fetch(identifier, connection=queue.connection).args == (41,)
    assert not queue.enqueue("delivery", 41, 2, "high")
    assert queue.queues["high"].job_ids == [identifier]


def test_a_due_try_is_left_to_a_scheduler_that_holds_its_queues_lock(app):
    queue = app.extensions["job_queue"]
    identifier = job_id("delivery", 42, 2)
    assert queue.enqueue("delivery", 42, 2, "high", delay_seconds=600)
    queue.connection.set(RQScheduler.get_locking_key("high"), "a live scheduler", ex=60)
    assert not queue.enqueue("delivery", 42, 2, "high")
    assert queue.queues["high"].scheduled_job_registry.get_job_ids() == [identifier]
    assert queue.queues["high"].job_ids == []


def test_a_try_the_scheduler_queues_first_is_not_queued_twice(app, monkeypatch):
    queue = app.extensions["job_queue"]
    identifier = job_id("webhook", 7, 3)
    assert queue.enqueue("webhook", 7, 3, delay_seconds=600)
    scheduled = queue.queues["default"].scheduled_job_registry
    get_status = Job.get_status
    moved = []

    def scheduler_moves_it_meanwhile(job, *args, **kwargs):
        # Between the queue's read of the status and its move, once.
        status = get_status(job, *args, **kwargs)
        if status == JobStatus.SCHEDULED and not moved:
            moved.append(job.id)
            scheduled.requeue(job.id)
        return status

    monkeypatch.setattr(Job, "get_status", scheduler_moves_it_meanwhile)
    assert not queue.enqueue("webhook", 7, 3)
    assert moved == [identifier]
    assert queue.queues["default"].job_ids == [identifier]
