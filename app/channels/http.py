"""One HTTP POST to a provider, with a timeout, its failures sorted into transient (network,
5xx, 429) and permanent (other 4xx)."""

import urllib.error
import urllib.request
from http.client import HTTPException

from flask import current_app

from app.channels.errors import PermanentDeliveryError, TransientDeliveryError


def post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """POST `body` to `url`; the response body, or a delivery error."""
    if not url.startswith(("http://", "https://")):
        raise PermanentDeliveryError(f"not an http(s) URL: {url[:100]}")
    # The scheme is checked above, so urllib's file: and custom schemes cannot be reached.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    timeout = current_app.config["CHANNEL_TIMEOUT_SECONDS"]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.read()
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace")
        message = f"HTTP {error.code} from {error.url}: {detail}"
        if error.code >= 500 or error.code == 429:
            raise TransientDeliveryError(message) from error
        raise PermanentDeliveryError(message) from error
    except (urllib.error.URLError, HTTPException, OSError) as error:
        raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error
