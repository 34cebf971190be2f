"""Email end to end: the API queues, a real `python worker.py` sends to a real SMTP server."""

from collections.abc import Iterator

import psycopg2
import pytest
from redis import Redis
from rq.registry import FailedJobRegistry

from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("email"), "notify_email").start()
    running.start_worker()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def _fresh_mailbox(stack):
    stack.smtp.mailbox.refuse_next = 0
    stack.smtp.mailbox.refusal = "451 4.3.0 try again later"


def test_an_email_arrives_multipart_with_list_unsubscribe(stack):
    stack.call("PUT", "/users/ana", {"email": "ana@example.com", "name": "Ana"})
    [notification_id] = stack.send(
        to="ana",
        title="New comment <3",
        body="Ben replied to you",
        action_url="https://app.example/posts/1",
        channels=["in_app", "email"],
    )
    delivery = stack.settled(notification_id, "email")
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert delivery["last_error"] is None
    [message] = stack.smtp.mailbox.to("ana@example.com")
    assert message["Subject"] == "New comment <3"
    assert message["From"] == "notify@example.com"
    assert message["List-Unsubscribe"] == "<https://app.example/settings/notifications>"
    text = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    assert "Ben replied to you" in text
    assert "https://app.example/posts/1" in text
    assert "<h1>New comment &lt;3</h1>" in page
    assert 'href="https://app.example/posts/1"' in page


def test_no_address_and_opt_outs_are_skipped_with_the_reason(stack):
    stack.call("PUT", "/users/noaddress", {})
    [no_address] = stack.send(to="noaddress", title="x", channels=["email"])
    assert stack.deliveries(no_address)["email"]["status"] == "skipped"
    assert stack.deliveries(no_address)["email"]["last_error"] == (
        "no address: the user has no email"
    )

    stack.call("PUT", "/users/quiet", {"email": "quiet@example.com"})
    token = stack.call("POST", "/users/quiet/tokens", {})["token"]
    preferences = stack.call(
        "PUT", "/me/preferences", {"categories": {"digest": {"email": False}}}, token
    )
    assert preferences["categories"] == {"digest": {"email": False}}
    [opted_out] = stack.send(to="quiet", title="digest", category="digest", channels=["email"])
    email = stack.deliveries(opted_out)["email"]
    assert (email["status"], email["last_error"]) == (
        "skipped",
        "opted out: email is off for digest",
    )
    [critical] = stack.send(
        to="quiet", title="security", category="digest", priority="critical", channels=["email"]
    )
    assert stack.settled(critical, "email")["status"] == "sent"
    assert [m["Subject"] for m in stack.smtp.mailbox.to("quiet@example.com")] == ["security"]


def test_a_server_that_refuses_twice_then_accepts_gets_the_message_once(stack):
    stack.call("PUT", "/users/retry", {"email": "retry@example.com"})
    stack.smtp.mailbox.refuse_next = 2
    [notification_id] = stack.send(to="retry", title="third time lucky", channels=["email"])
    delivery = stack.settled(notification_id, "email")
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 3
    assert len(stack.smtp.mailbox.to("retry@example.com")) == 1


def test_a_permanent_refusal_fails_at_once_and_can_be_retried(stack):
    stack.call("PUT", "/users/bounce", {"email": "bounce@example.com"})
    stack.smtp.mailbox.refuse_next = 1
    stack.smtp.mailbox.refusal = "550 5.1.1 <bounce@example.com>: no such mailbox"
    [notification_id] = stack.send(to="bounce", title="bounced", channels=["email"])
    delivery = stack.settled(notification_id, "email")
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1
    # The server's words, without the address it quoted (errors reach logs and dashboards).
    assert delivery["last_error"] == "SMTP 550: b'5.1.1 <[address]>: no such mailbox'"

    listed = stack.flask("deliveries", "failed")
    assert listed.returncode == 0, listed.stderr
    [line] = [row for row in listed.stdout.splitlines() if f"\t{notification_id}\t" in row]
    delivery_id = line.split("\t")[0]
    retried = stack.flask("deliveries", "retry", delivery_id)
    assert retried.returncode == 0, retried.stderr
    stack.wait_for(
        lambda: stack.deliveries(notification_id)["email"]["status"] == "sent",
        what="the retried delivery to be sent",
    )
    assert len(stack.smtp.mailbox.to("bounce@example.com")) == 1


def test_transient_failures_past_the_last_try_fail_the_delivery(stack):
    stack.call("PUT", "/users/down", {"email": "down@example.com"})
    stack.smtp.mailbox.refuse_next = 100
    [notification_id] = stack.send(to="down", title="never", channels=["email"])
    delivery = stack.settled(notification_id, "email")
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 4
    assert "451" in delivery["last_error"]
    assert stack.smtp.mailbox.to("down@example.com") == []
    with psycopg2.connect(stack.env["DATABASE_URL"]) as connection, connection.cursor() as cur:
        cur.execute("SELECT id FROM deliveries WHERE notification_id = %s", (int(notification_id),))
        [(delivery_id,)] = cur.fetchall()
    connection.close()
    failed = FailedJobRegistry("default", connection=Redis.from_url(stack.redis.url))
    assert f"delivery-{delivery_id}-4" in failed.get_job_ids()


def test_a_template_email_uses_its_rendered_parts(stack):
    stack.call(
        "PUT",
        "/templates/welcome",
        {
            "channels": {
                "in_app": {"title": "Welcome {{ name }}"},
                "email": {
                    "subject": "Welcome, {{ name }}",
                    "html": "<p>Hello {{ name }}</p>",
                    "text": "Hello {{ name }}",
                },
            },
            "locales": {"de": {"email": {"subject": "Willkommen, {{ name }}"}}},
        },
    )
    stack.call("PUT", "/users/tpl", {"email": "tpl@example.com", "locale": "de-CH"})
    [notification_id] = stack.send(
        to="tpl", template="welcome", context={"name": "<Zoë>"}, channels=["in_app", "email"]
    )
    assert stack.settled(notification_id, "email")["status"] == "sent"
    [message] = stack.smtp.mailbox.to("tpl@example.com")
    assert message["Subject"] == "Willkommen, <Zoë>"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello &lt;Zoë&gt;</p>"
    assert message.get_body(("plain",)).get_content().strip() == "Hello <Zoë>"


def test_an_unexpected_error_is_retried_then_fails_instead_of_staying_queued(stack):
    """A newline in a title makes Flask-Mail refuse the header: not a channel verdict, still
    a try that counts, so the delivery ends `failed` rather than looping."""
    stack.call("PUT", "/users/header", {"email": "header@example.com"})
    [notification_id] = stack.send(to="header", title="line one\nline two", channels=["email"])
    delivery = stack.settled(notification_id, "email")
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 4
    assert "BadHeaderError" in delivery["last_error"]
