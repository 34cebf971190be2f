"""The same delivery jobs in the embedded mode (in the web process, no Redis), a worker's RQ
scheduler, and a worker that is asked to stop while it sends."""

import signal
from pathlib import Path

import pytest

from app import defaults
from tests.servers import create_api_key, migrate, server_environment, web_server
from tests.stack import FAST_RETRIES, Stack

pytestmark = pytest.mark.timeout(300)


def test_the_embedded_mode_delivers_in_process_with_retries(tmp_path: Path, smtp):
    """No REDIS_URL and no worker: `python wsgi.py` runs the jobs and the relay itself."""
    env = server_environment(
        f"sqlite:///{tmp_path / 'notify.db'}",
        None,
        EMAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        **FAST_RETRIES,
    )
    migrate(env)
    stack = Stack(tmp_path, "unused")
    stack.env = env
    stack.api_key = create_api_key(env, "embedded")
    smtp.mailbox.refuse_next = 1
    with web_server(env, tmp_path / "web.log") as url:
        stack.url = url
        stack.call("PUT", "/users/emb", {"email": "emb@example.com"})
        [notification_id] = stack.send(to="emb", title="in-process", channels=["email"])
        delivery = stack.settled(notification_id, "email")
    assert (delivery["status"], delivery["attempts"]) == ("sent", 2)
    assert [m["Subject"] for m in smtp.mailbox.to("emb@example.com")] == ["in-process"]


def test_sigterm_lets_the_job_in_hand_finish(tmp_path: Path):
    stack = Stack(tmp_path, "notify_sigterm").start()
    try:
        stack.smtp.mailbox.delay_seconds = 2
        stack.call("PUT", "/users/slow", {"email": "slow@example.com"})
        [notification_id] = stack.send(to="slow", title="finish me", channels=["email"])
        worker = stack.start_worker()
        stack.wait_for(lambda: stack.smtp.mailbox.attempts >= 1, what="the send to begin")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        email = stack.deliveries(notification_id)["email"]
        assert (email["status"], email["attempts"]) == ("sent", 1)
        assert len(stack.smtp.mailbox.to("slow@example.com")) == 1
        # Stopped from the signal handler while busy: the scheduler still let go of its locks.
        assert stack.scheduler_locks() == []
    finally:
        stack.close()


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def test_the_scheduler_is_a_thread_that_queues_retries_and_stops_with_the_worker(tmp_path):
    """RQ forks its scheduler, from a process that has threads by then; a child forked while
    one of them was importing a module hung for good on that module's lock, and retries
    waited a minute for the relay. The worker runs it as a thread instead."""
    stack = Stack(tmp_path, "notify_scheduler").start()
    try:
        worker = stack.start_worker()
        stack.wait_for(
            lambda: len(stack.scheduler_locks()) == len(defaults.QUEUES),
            what="the scheduler to hold every queue's lock",
        )
        assert _children(worker.pid) == []
        stack.call("PUT", "/users/again", {"email": "again@example.com"})
        stack.smtp.mailbox.refuse_next = 1
        [notification_id] = stack.send(to="again", title="retried", channels=["email"])
        email = stack.settled(notification_id, "email")
        assert (email["status"], email["attempts"]) == ("sent", 2)
        # The scheduler queued it: the relay leaves a retry alone while a scheduler holds the
        # queue's lock.
        log = (stack.workdir / "worker1.log").read_text()
        assert "overdue in the scheduled registry" not in log
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        assert stack.scheduler_locks() == []
    finally:
        stack.close()
