"""A delivery job sends the emails of its batch over one SMTP connection, and gets a new one
when the server refused or dropped the one it had."""

import socket

import pytest
from sqlalchemy import select

from app.channels import email
from app.extensions import db
from app.jobs.deliveries import deliver
from app.models import Delivery

RECIPIENTS = [{"user_id": f"mail{n}", "email": f"mail{n}@example.com"} for n in range(5)]


@pytest.fixture
def mail_app(app_with, smtp):
    return app_with(EMAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)


def _queued_batch(mail_app, producer) -> list[int]:
    sent = producer.post(
        "/notifications", json={"to": RECIPIENTS, "title": "batch", "channels": ["email"]}
    )
    assert sent.status_code == 201
    with mail_app.app_context():
        return list(db.session.scalars(select(Delivery.id).order_by(Delivery.id)))


def _statuses(mail_app) -> list[str]:
    with mail_app.app_context():
        return list(db.session.scalars(select(Delivery.status).order_by(Delivery.id)))


def test_a_batch_goes_over_one_connection(mail_app, producer, smtp):
    ids = _queued_batch(mail_app, producer)
    with mail_app.app_context():
        deliver(*ids)
    assert _statuses(mail_app) == ["sent"] * len(RECIPIENTS)
    assert sorted(m["To"] for m in smtp.mailbox.messages) == sorted(r["email"] for r in RECIPIENTS)
    assert len(smtp.mailbox.sessions) == 1


def test_after_a_refusal_the_next_email_gets_a_new_connection(mail_app, producer, smtp):
    ids = _queued_batch(mail_app, producer)
    smtp.mailbox.refuse_next = 1
    smtp.mailbox.refusal = "421 4.4.2 closing connection"
    with mail_app.app_context():
        deliver(*ids)
    assert _statuses(mail_app) == ["queued"] + ["sent"] * (len(RECIPIENTS) - 1)
    assert sorted(m["To"] for m in smtp.mailbox.messages) == sorted(
        r["email"] for r in RECIPIENTS[1:]
    )
    assert len(smtp.mailbox.sessions) == 2


def test_a_dropped_connection_is_opened_again_for_the_same_email(
    mail_app, producer, smtp, monkeypatch
):
    ids = _queued_batch(mail_app, producer)
    send = email.TimedConnection.send
    sent = []

    def drop_after_the_first(connection, message):
        if len(sent) == 1 and connection.host.sock is not None:
            # The line went down between two emails of the batch.
            connection.host.sock.shutdown(socket.SHUT_RDWR)
            sent.append("dropped")
        send(connection, message)
        sent.append(message)

    monkeypatch.setattr(email.TimedConnection, "send", drop_after_the_first)
    with mail_app.app_context():
        deliver(*ids)
    assert _statuses(mail_app) == ["sent"] * len(RECIPIENTS)
    assert len(smtp.mailbox.messages) == len(RECIPIENTS)
    assert len(smtp.mailbox.sessions) == 2
