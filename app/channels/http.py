"""One HTTP POST to a provider, with a timeout and no redirects, its failures sorted into
transient (network, 5xx, 408, 429) and permanent (3xx, other 4xx, a URL that cannot work)."""

import urllib.error
import urllib.request
from http.client import HTTPException
from urllib.parse import urlsplit, urlunsplit

from flask import current_app

from app.channels.destinations import check_public
from app.channels.errors import (
    PermanentDeliveryError,
    TransientDeliveryError,
    without_addresses,
)


def post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """POST `body` to `url`; the response body, or a delivery error."""
    if not url.startswith(("http://", "https://")):
        raise PermanentDeliveryError(f"not an http(s) URL: {url[:100]}")
    check_public(url)
    # The scheme is checked above, so urllib's file: and custom schemes cannot be reached.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    timeout = current_app.config["CHANNEL_TIMEOUT_SECONDS"]
    where = without_query(url)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        detail = without_addresses(error.read()[:300].decode(errors="replace"))
        message = f"HTTP {error.code} from {where}: {detail}"
        if error.code >= 500 or error.code in {408, 429}:
            raise TransientDeliveryError(message) from error
        raise PermanentDeliveryError(message) from error
    except ValueError as error:
        raise PermanentDeliveryError(f"unusable URL {where}: {error}") from error
    except (urllib.error.URLError, HTTPException, OSError) as error:
        raise TransientDeliveryError(f"{type(error).__name__} from {where}: {error}") from error


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a body-less GET: report the 3xx instead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def without_query(url: str) -> str:
    """The URL for messages and logs: no query string, which may carry a token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
