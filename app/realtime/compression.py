"""WebSocket compression (permessage-deflate), off unless SOCKET_COMPRESSION is set.

Each compressed socket keeps a zlib compressor and decompressor for its lifetime, about
100 KiB more per connection: with 10,000 idle tabs that is a gigabyte for messages of a few
hundred bytes. Without the client's offer in the handshake, no extension is negotiated.
"""

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

OFFER = "HTTP_SEC_WEBSOCKET_EXTENSIONS"


def init_app(app: Flask) -> None:
    """Unless SOCKET_COMPRESSION is on, drop the client's WebSocket extension offers before
    Socket.IO sees them. Call after Socket.IO has wrapped the app."""
    if app.config["SOCKET_COMPRESSION"]:
        return
    inner = app.wsgi_app

    def without_offers(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        environ.pop(OFFER, None)
        return inner(environ, start_response)

    app.wsgi_app = without_offers  # type: ignore[method-assign]
