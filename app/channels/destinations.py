"""Where the server may send: anywhere public, never into its own network unless allowed.

Webhook URLs come from producers and push endpoints from browsers, so either could point a
worker at an internal service (a metadata endpoint, an admin port on localhost). Each
destination's host is resolved just before sending and refused when any of its addresses
is not a public one, unless ALLOW_PRIVATE_DESTINATIONS is on (development, tests, an
intranet webhook).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app

from app.channels.errors import PermanentDeliveryError, TransientDeliveryError


def check_public(url: str) -> None:
    """Raise a permanent delivery error when `url`'s host is, or resolves to, an address
    that is not public (loopback, private, link-local, reserved, multicast)."""
    if current_app.config["ALLOW_PRIVATE_DESTINATIONS"]:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise PermanentDeliveryError("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except ValueError as error:
        raise PermanentDeliveryError(f"unusable URL host {host}: {error}") from error
    except OSError as error:
        raise TransientDeliveryError(f"cannot resolve {host}: {error}") from error
    for address in addresses:
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise PermanentDeliveryError(
                f"{host} resolves to {address}, which is not a public address "
                "(set ALLOW_PRIVATE_DESTINATIONS to send there)"
            )
