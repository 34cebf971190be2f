"""WebSocket compression is off unless SOCKET_COMPRESSION is set: a real server, offered
permessage-deflate in a real handshake, accepts it only when told to."""

import base64
import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.servers import migrate, server_environment, web_server

OFFER = "permessage-deflate; client_max_window_bits"


def handshake_headers(url: str) -> dict[str, str]:
    """Open a WebSocket to the engine.io endpoint offering permessage-deflate; the headers
    of the server's 101 answer, lower-cased."""
    address = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {OFFER}\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(4096)
            assert chunk, f"the server closed the handshake: {answer!r}"
            answer += chunk
    status, *lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert " 101 " in status, status
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }


@pytest.mark.parametrize(
    ("setting", "negotiated"), [(None, False), ("false", False), ("true", True)]
)
def test_websocket_compression_only_when_enabled(tmp_path, setting, negotiated):
    extra = {"SOCKET_COMPRESSION": setting} if setting else {}
    env = server_environment(f"sqlite:///{tmp_path / 'notify.db'}", None, **extra)
    migrate(env)
    with web_server(env, tmp_path / "web.log") as url:
        headers = handshake_headers(url)
    extension = headers.get("sec-websocket-extensions", "")
    assert ("permessage-deflate" in extension) is negotiated, headers
