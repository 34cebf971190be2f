"""Email through Flask-Mail over SMTP, multipart text and HTML; or to the log (`console`)."""

import functools
import html
import logging
import smtplib
import ssl

from flask import current_app
from flask_mail import Connection, Mail, Message

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
    mail: Mail = current_app.extensions["mail"]
    if not user.email:
        raise PermanentDeliveryError("no address: the user has no email")
    connection = TimedConnection(mail)
    try:
        connection.host = connection.configure_host()
        connection.send(message)
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
    finally:
        _quit(connection)


def _quit(connection: TimedConnection) -> None:
    """Say goodbye; a server that drops the line at QUIT has still taken the message."""
    host = getattr(connection, "host", None)
    if host is None:
        return
    try:
        host.quit()
    except (smtplib.SMTPException, OSError):
        host.close()
