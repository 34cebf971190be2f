"""The web server as `python wsgi.py` runs it (serving.py): requests much larger than its
read buffer (READ_BUFFER_BYTES), arriving in small pieces, on one kept-alive connection."""

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.defaults import MAX_BODY_LENGTH
from serving import READ_BUFFER_BYTES
from tests.servers import call, create_api_key, migrate, server_environment, web_server

PIECE_BYTES = 100
"""How much of a request is sent at a time, so the server's reads find parts of it."""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """`python wsgi.py` on embedded SQLite; its base URL and an API key."""
    workdir = tmp_path_factory.mktemp("serving")
    env = server_environment(f"sqlite:///{workdir / 'notify.db'}", None)
    migrate(env)
    api_key = create_api_key(env, "serving")
    with web_server(env, Path(workdir) / "web.log") as url:
        yield url, api_key


def read_response(connection: socket.socket, buffered: bytearray) -> tuple[int, dict]:
    """One HTTP/1.1 response with a Content-Length from the connection: its status and JSON
    body; what came after it stays in `buffered`."""
    while b"\r\n\r\n" not in buffered:
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection: {bytes(buffered)!r}"
        buffered += chunk
    head, _, _ = bytes(buffered).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)
    }
    length = int(headers["content-length"])
    start = len(head) + 4
    while len(buffered) < start + length:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        buffered += chunk
    body = bytes(buffered[start : start + length])
    del buffered[: start + length]
    return int(status_line.split()[1]), json.loads(body)


def send_in_pieces(connection: socket.socket, request: bytes) -> None:
    for start in range(0, len(request), PIECE_BYTES):
        connection.sendall(request[start : start + PIECE_BYTES])
        time.sleep(0.001)


def test_requests_far_larger_than_the_read_buffer_arrive_whole(server):
    url, api_key = server
    address = urlsplit(url)
    filler = [f"X-Filler-{n}: {'h' * 200}\r\n" for n in range(30)]
    sent = []
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        buffered = bytearray()
        for n in range(3):
            body = json.dumps(
                {"to": f"ana-{n}", "title": f"large {n}", "body": "b" * MAX_BODY_LENGTH}
            ).encode()
            request = (
                "POST /notifications HTTP/1.1\r\n"
                f"Host: {address.netloc}\r\n"
                f"Authorization: Bearer {api_key}\r\n"
                "Content-Type: application/json\r\n"
                + "".join(filler)
                + f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            assert len(request) > 10 * READ_BUFFER_BYTES
            send_in_pieces(connection, request)
            status, answer = read_response(connection, buffered)
            assert status == 201, answer
            sent.append(answer["notifications"][0]["id"])
        assert buffered == b""
    for n, notification_id in enumerate(sent):
        stored = call(url, "GET", f"/notifications/{notification_id}", api_key)
        assert stored["user_id"] == f"ana-{n}"
        assert stored["title"] == f"large {n}"
        assert stored["body"] == "b" * MAX_BODY_LENGTH
