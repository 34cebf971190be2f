"""Email through Flask-Mail over SMTP, multipart text and HTML; or to the log (`console`).

A job keeps one SMTP connection for the emails of its batch (opened for the first, closed
with the job's app context): a connection, greeting and QUIT per email cost more than the
email. A connection that failed in any way is dropped and the next email opens a new one.
"""

import functools
import html
import logging
import smtplib
import ssl

from flask import Flask, current_app, g
from flask_mail import Connection, Message

from app.channels.errors import (
    Content,
    PermanentDeliveryError,
    TransientDeliveryError,
    without_addresses,
)
from app.models import Notification, User

log = logging.getLogger(__name__)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA store takes tens of milliseconds: once per process, not per email.
    return ssl.create_default_context()


class TimedConnection(Connection):
    """Flask-Mail's SMTP connection with a timeout (a silent server cannot hang a job) and a
    verified TLS certificate (the password goes to the real server or nowhere)."""

    def configure_host(self) -> smtplib.SMTP | smtplib.SMTP_SSL:
        timeout = current_app.config["CHANNEL_TIMEOUT_SECONDS"]
        if self.mail.use_ssl:
            host: smtplib.SMTP = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=timeout, context=_tls_context()
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=timeout)
        if self.mail.use_tls:
            host.starttls(context=_tls_context())
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


def _default_parts(notification: Notification) -> dict[str, str]:
    text = "\n\n".join(part for part in (notification.body, notification.action_url) if part)
    paragraphs = [f"<p>{html.escape(notification.body)}</p>"] if notification.body else []
    if notification.action_url:
        link = html.escape(notification.action_url, quote=True)
        paragraphs.append(f'<p><a href="{link}">{link}</a></p>')
    return {
        "subject": notification.title,
        "text": text or notification.title,
        "html": f"<h1>{html.escape(notification.title)}</h1>{''.join(paragraphs)}",
    }


def build_message(notification: Notification, user: User, content: Content) -> Message:
    """The email: a template's rendered parts, or subject, text and HTML made from the
    notification; List-Unsubscribe when PREFERENCES_URL is set."""
    parts = content or _default_parts(notification)
    headers = {}
    if current_app.config["PREFERENCES_URL"]:
        headers["List-Unsubscribe"] = f"<{current_app.config['PREFERENCES_URL']}>"
    return Message(
        subject=parts["subject"],
        recipients=[user.email],
        body=parts.get("text"),
        html=parts.get("html"),
        extra_headers=headers,
    )


def send_email(notification: Notification, user: User, content: Content) -> None:
    """Deliver one notification by email, or raise a delivery error."""
    message = build_message(notification, user, content)
    if current_app.config["EMAIL_BACKEND"] == "console":
        log.info("email (console backend) to user %s: %s", user.id, message.subject)
        return
    if not user.email:
        raise PermanentDeliveryError("no address: the user has no email")
    try:
        _send(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        failure = PermanentDeliveryError if min(codes) >= 500 else TransientDeliveryError
        raise failure(f"recipient refused: {codes}") from error
    except smtplib.SMTPResponseException as error:
        failure = PermanentDeliveryError if error.smtp_code >= 500 else TransientDeliveryError
        reason = without_addresses(repr(error.smtp_error))
        raise failure(f"SMTP {error.smtp_code}: {reason}") from error
    except (smtplib.SMTPException, OSError) as error:
        raise TransientDeliveryError(
            f"SMTP unreachable: {type(error).__name__}: {error}"
        ) from error


def _send(message: Message) -> None:
    """Send over the job's connection; a server that dropped a kept connection gets the
    message once more over a new one. A connection that failed is closed."""
    kept = g.get(_CONNECTION) is not None
    try:
        try:
            _connection().send(message)
        except smtplib.SMTPServerDisconnected:
            if not kept:
                raise
            close_connection()
            _connection().send(message)
    except BaseException:
        close_connection()
        raise


_CONNECTION = "smtp_connection"


def _connection() -> TimedConnection:
    connection = g.get(_CONNECTION)
    if connection is None:
        connection = TimedConnection(current_app.extensions["mail"])
        connection.host = connection.configure_host()
        setattr(g, _CONNECTION, connection)
    return connection


def close_connection(_error: BaseException | None = None) -> None:
    """Say goodbye on the job's connection, if it has one; a server that drops the line at
    QUIT has still taken the messages."""
    connection = g.pop(_CONNECTION, None)
    host = getattr(connection, "host", None)
    if host is None:
        return
    try:
        host.quit()
    except (smtplib.SMTPException, OSError):
        host.close()


def init_app(app: Flask) -> None:
    """Close a job's SMTP connection with its app context."""
    app.teardown_appcontext(close_connection)
