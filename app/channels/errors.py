"""What a channel sender is given, and how it says a delivery failed."""

import re

# A provider's error may quote the recipient ("<ana@example.com>: mailbox unavailable", "The
# 'To' number +1555... is not valid"); errors end up in logs and on the dashboard, which must
# not hold anyone's address.
_EMAIL_ADDRESS = re.compile(r"[^\s<>()\[\]'\",;:@]+@[^\s<>()\[\]'\",;:@]+")
_PHONE_NUMBER = re.compile(r"\+\d[\d ().-]{5,}\d|\b\d{9,15}\b")

Content = dict[str, str] | None
"""A template's rendered parts for one channel, or None to build from the notification."""


class DeliveryError(Exception):
    """A delivery did not happen; the message says why, for `last_error`."""


class TransientDeliveryError(DeliveryError):
    """It may work later: timeouts, connection errors, 5xx or 429 from an HTTP provider,
    4xx from an SMTP server."""


class PermanentDeliveryError(DeliveryError):
    """It will not work however often it is tried: a bad address, a 4xx from an HTTP
    provider, a 5xx from an SMTP server."""


def without_addresses(text: str) -> str:
    """A provider's error text with email addresses and phone numbers blanked out."""
    return _PHONE_NUMBER.sub("[number]", _EMAIL_ADDRESS.sub("[address]", text))
