"""Nothing acknowledged is lost: kill -9 a worker mid-batch or the one running RQ's scheduler,
stop Redis mid-send."""

import os
import signal
from collections import Counter
from collections.abc import Iterator

import pytest
from redis import Redis

from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)
BATCH = 40


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    running = Stack(
        tmp_path, "notify_fault", DELIVERY_LEASE_SECONDS="4", DELIVERY_JOB_TIMEOUT_SECONDS="3"
    ).start()
    yield running
    running.close()


def _recipients(prefix: str) -> list[dict[str, str]]:
    return [{"user_id": f"{prefix}{i}", "email": f"{prefix}{i}@example.com"} for i in range(BATCH)]


def _arrivals(stack: Stack, prefix: str) -> Counter:
    return Counter(m["To"] for m in list(stack.smtp.mailbox.messages) if m["To"].startswith(prefix))


def test_killing_a_worker_mid_batch_loses_nothing(stack):
    stack.smtp.mailbox.delay_seconds = 0.1
    first = stack.start_worker()
    stack.send(to=_recipients("k"), title="batch", channels=["email"])
    stack.wait_for(lambda: len(_arrivals(stack, "k")) >= 8, what="the batch to start")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert len(_arrivals(stack, "k")) < BATCH

    stack.start_worker()
    stack.wait_for(
        lambda: stack.statuses() == {"sent": BATCH},
        timeout=120,
        what="every delivery to be sent by the second worker",
    )
    arrivals = _arrivals(stack, "k")
    assert set(arrivals) == {f"k{i}@example.com" for i in range(BATCH)}
    # At least once; at most the one message in flight when the worker died comes twice.
    assert sum(arrivals.values()) <= BATCH + 1
    assert all(count <= 2 for count in arrivals.values())


def test_sending_while_redis_is_down_is_acknowledged_and_delivered_later(stack):
    stack.start_worker()
    stack.redis.stop()
    ids = stack.send(to=_recipients("r"), title="while Redis is down", channels=["email"])
    assert len(ids) == BATCH
    assert stack.statuses() == {"queued": BATCH}
    stack.redis.start()
    stack.wait_for(
        lambda: stack.statuses() == {"sent": BATCH},
        timeout=120,
        what="the relay to queue and the worker to send every delivery",
    )
    assert Counter(_arrivals(stack, "r").values()) == {1: BATCH}


def test_a_retry_is_tried_when_the_worker_running_the_scheduler_is_gone(stack):
    first = stack.start_worker()
    # RQ's scheduler runs in one worker at a time; the others look for it to be gone only at
    # their maintenance, every 10 minutes.
    stack.wait_for(stack.scheduler_locks, what="the first worker's scheduler")
    stack.start_worker()
    # Up, so it has tried the locks (before RQ's loop starts) and found them held.
    second_log = stack.workdir / "worker2.log"
    stack.wait_for(lambda: "Listening on" in second_log.read_text(), what="the second worker")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # Its locks would expire within a minute; gone now, to spare the wait.
    connection = Redis.from_url(stack.redis.url)
    connection.delete(*stack.scheduler_locks())
    connection.close()
    stack.smtp.mailbox.refuse_next = 1
    [notification_id] = stack.send(to=_recipients("s")[:1], title="retried", channels=["email"])
    stack.wait_for(
        lambda: stack.deliveries(notification_id)["email"]["status"] == "sent",
        timeout=30,
        what="the relay to queue the retry left in the scheduled registry",
    )
    assert stack.deliveries(notification_id)["email"]["attempts"] == 2
    assert _arrivals(stack, "s") == {"s0@example.com": 1}
    assert "overdue in the scheduled registry" in second_log.read_text()
