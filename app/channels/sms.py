"""SMS through Twilio's Messages API (or any provider that speaks it, via TWILIO_API_BASE);
or to the log (`console`) when no account is configured."""

import base64
import logging
from urllib.parse import urlencode

from flask import current_app

from app.channels.errors import Content, PermanentDeliveryError
from app.channels.http import post
from app.models import Notification, User

log = logging.getLogger(__name__)
SMS_MAX_LENGTH = 1_600
"""Twilio's limit on one message body; longer text is cut."""


def sms_text(notification: Notification) -> str:
    """The message: title, then body, then link, cut to what one SMS request carries."""
    text = "\n".join(
        part for part in (notification.title, notification.body, notification.action_url) if part
    )
    return text[:SMS_MAX_LENGTH]


def send_sms(notification: Notification, user: User, content: Content) -> None:
    """Deliver one notification by SMS to the user's phone, or raise a delivery error."""
    config = current_app.config
    if not user.phone:
        raise PermanentDeliveryError("no address: the user has no phone")
    text = content["text"][:SMS_MAX_LENGTH] if content else sms_text(notification)
    if config["SMS_BACKEND"] == "console":
        log.info("sms (console backend) to user %s: %s", user.id, notification.title)
        return
    account = config["TWILIO_ACCOUNT_SID"]
    credentials = base64.b64encode(f"{account}:{config['TWILIO_AUTH_TOKEN']}".encode()).decode()
    post(
        f"{config['TWILIO_API_BASE'].rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json",
        urlencode({"To": user.phone, "From": config["TWILIO_FROM_NUMBER"], "Body": text}).encode(),
        {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
