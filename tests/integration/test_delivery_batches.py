"""One job works a batch of deliveries: each is claimed, tried and settled on its own terms
(sent, failed for good, retried later), outcomes are written as the batch goes, and what the
job had no time for is handed back untried."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app import defaults
from app.channels.errors import PermanentDeliveryError, TransientDeliveryError
from app.db import utcnow
from app.extensions import db
from app.jobs import deliveries
from app.jobs.outbox import GaveUp
from app.jobs.queue import batch_job_id, job_id
from app.models import Delivery, WebhookEvent

USERS = [f"b{n}" for n in range(6)]


@pytest.fixture
def batch(app, producer) -> list[int]:
    """Six queued SMS deliveries (users b0..b5, all with a phone), their ids in order."""
    recipients = [{"user_id": user, "phone": "+15550100"} for user in USERS]
    sent = producer.post(
        "/notifications", json={"to": recipients, "title": "t", "channels": ["sms"]}
    )
    assert sent.status_code == 201
    created = producer.post(
        "/webhooks",
        json={"url": "http://127.0.0.1:9/in", "events": ["delivery.sent", "delivery.failed"]},
    )
    assert created.status_code == 201
    with app.app_context():
        ids = list(db.session.scalars(select(Delivery.id).order_by(Delivery.id)))
    assert len(ids) == len(USERS)
    return ids


def _rows(app, ids: list[int]) -> list[Delivery]:
    with app.app_context():
        rows = db.session.scalars(
            select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)
        ).all()
        db.session.expunge_all()
        return rows


def _sender(verdicts: dict[str, Exception | None], seen: list[str]):
    def send(notification, user, content):
        seen.append(user.id)
        if verdicts.get(user.id) is not None:
            raise verdicts[user.id]

    return send


def test_a_batch_settles_each_delivery_on_its_own_terms(app, batch, monkeypatch):
    seen: list[str] = []
    verdicts = {
        "b1": PermanentDeliveryError("number refused"),
        "b2": TransientDeliveryError("provider busy"),
        "b4": PermanentDeliveryError("number refused"),
        "b5": RuntimeError("a bug"),
    }
    monkeypatch.setitem(deliveries.SENDERS, "sms", _sender(verdicts, seen))
    queued = []
    queue = app.extensions["job_queue"]
    monkeypatch.setattr(queue, "enqueue", lambda *args: queued.append(args) or True)
    with app.app_context(), pytest.raises(GaveUp) as gave_up:
        deliveries.deliver(*batch)
    assert seen == USERS
    rows = _rows(app, batch)
    assert [(r.status, r.attempts) for r in rows] == [
        ("sent", 1),
        ("failed", 1),
        ("queued", 1),
        ("sent", 1),
        ("failed", 1),
        ("queued", 1),
    ]
    assert rows[0].sent_at is not None
    assert rows[3].sent_at is not None
    assert [r.last_error for r in rows] == [
        None,
        "number refused",
        "provider busy",
        None,
        "number refused",
        "RuntimeError: a bug",
    ]
    assert all(r.lease_until is None for r in rows)
    for retried in (rows[2], rows[5]):
        assert retried.next_attempt_at > utcnow() + timedelta(seconds=1)
    # Each retry is its own job, for the next try, at the notification's priority.
    assert sorted(q[:4] for q in queued) == [
        ("delivery", batch[2], 2, "normal"),
        ("delivery", batch[5], 2, "normal"),
    ]
    assert str(batch[1]) in str(gave_up.value)
    assert str(batch[4]) in str(gave_up.value)
    with app.app_context():
        events = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        reported = sorted((e.type, e.payload["data"]["delivery_id"]) for e in events)
    assert reported == sorted(
        [("delivery.sent", str(batch[i])) for i in (0, 3)]
        + [("delivery.failed", str(batch[i])) for i in (1, 4)]
    )


def test_rows_taken_over_mid_batch_are_left_to_their_new_holder(app, batch, monkeypatch):
    stolen_lease = utcnow() + timedelta(minutes=5)

    def send(notification, user, content):
        if user.id == "b0":
            # Another worker took b3 over (its lease ran out, say) while this job sends.
            db.session.execute(
                update(Delivery).where(Delivery.id == batch[3]).values(lease_until=stolen_lease)
            )
            db.session.commit()

    monkeypatch.setitem(deliveries.SENDERS, "sms", send)
    with app.app_context():
        deliveries.deliver(*batch)
    rows = _rows(app, batch)
    assert [r.status for r in rows] == ["sent", "sent", "sent", "queued", "sent", "sent"]
    assert rows[3].lease_until == stolen_lease
    with app.app_context():
        reported = {
            e.payload["data"]["delivery_id"] for e in db.session.scalars(select(WebhookEvent))
        }
    assert str(batch[3]) not in reported


def test_outcomes_are_written_as_the_batch_goes(app, batch, monkeypatch):
    monkeypatch.setattr(defaults, "OUTCOME_FLUSH_SECONDS", 0)
    statuses_seen = []

    def send(notification, user, content):
        # What another process would see of the batch's earlier rows while this one is sent.
        statuses_seen.append(
            list(
                db.session.scalars(
                    select(Delivery.status).where(Delivery.id.in_(batch)).order_by(Delivery.id)
                )
            )
        )
        db.session.rollback()

    monkeypatch.setitem(deliveries.SENDERS, "sms", send)
    with app.app_context():
        deliveries.deliver(*batch)
    for index, statuses in enumerate(statuses_seen):
        assert statuses == ["sent"] * index + ["queued"] * (len(batch) - index)


def test_a_job_short_of_time_hands_the_rest_back_untried(app, batch, monkeypatch):
    # 0.1 s of budget for starting sends; each send takes 0.06 s, so two go out.
    monkeypatch.setitem(app.config, "DELIVERY_JOB_TIMEOUT_SECONDS", 1)
    monkeypatch.setitem(app.config, "CHANNEL_TIMEOUT_SECONDS", 0.9)
    seen: list[str] = []

    def send(notification, user, content):
        seen.append(user.id)
        time.sleep(0.06)

    monkeypatch.setitem(deliveries.SENDERS, "sms", send)
    queue = app.extensions["job_queue"]
    queue.queues["default"].empty()  # the send's own job for the batch
    with app.app_context():
        deliveries.deliver(*batch)
    assert seen == ["b0", "b1"]
    rows = _rows(app, batch)
    assert [(r.status, r.attempts, r.lease_until) for r in rows[2:]] == [("queued", 0, None)] * 4
    assert [r.status for r in rows[:2]] == ["sent", "sent"]
    [handed_back] = [
        job for job in queue.queues["default"].jobs if job.func_name.endswith(".deliver")
    ]
    assert handed_back.args == tuple(batch[2:])
    assert handed_back.id == batch_job_id("delivery", batch[2:])
    # The next job takes them up where this one stopped, each on its first try.
    monkeypatch.setitem(
        app.config, "DELIVERY_JOB_TIMEOUT_SECONDS", defaults.DELIVERY_JOB_TIMEOUT_SECONDS
    )
    monkeypatch.setitem(app.config, "CHANNEL_TIMEOUT_SECONDS", defaults.CHANNEL_TIMEOUT_SECONDS)
    with app.app_context():
        deliveries.deliver(*handed_back.args)
    assert [(r.status, r.attempts) for r in _rows(app, batch)] == [("sent", 1)] * len(batch)


def test_a_batch_skips_rows_already_done_or_held(app, batch, monkeypatch):
    seen: list[str] = []
    monkeypatch.setitem(deliveries.SENDERS, "sms", _sender({}, seen))
    with app.app_context():
        deliveries.deliver(batch[0])
        held_until = utcnow() + timedelta(minutes=1)
        db.session.execute(
            update(Delivery).where(Delivery.id == batch[1]).values(lease_until=held_until)
        )
        db.session.commit()
        deliveries.deliver(*batch)
    assert seen == ["b0", "b2", "b3", "b4", "b5"]
    rows = _rows(app, batch)
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("queued", 0)] + [
        ("sent", 1)
    ] * 4


def test_a_single_delivery_job_keeps_its_try_id(app, batch):
    queue = app.extensions["job_queue"]
    with app.app_context():
        queue.enqueue_first_tries("delivery", [(batch[0], "high")])
    [job] = queue.queues["high"].jobs
    assert job.id == job_id("delivery", batch[0], 1)
    assert job.args == (batch[0],)
