"""What a channel sender is given, and how it says a delivery failed."""

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
