"""A socket does not outlive its user token: the server disconnects it, and the same token
cannot reconnect."""

import threading
from pathlib import Path

import pytest
import socketio

from tests.servers import create_api_key, migrate, server_environment, web_server
from tests.stack import Stack

pytestmark = pytest.mark.timeout(120)


def test_an_expired_token_ends_the_socket(tmp_path: Path):
    env = server_environment(
        f"sqlite:///{tmp_path / 'notify.db'}", None, SOCKET_EXPIRY_SWEEP_SECONDS="0.5"
    )
    migrate(env)
    stack = Stack(tmp_path, "unused")
    stack.env = env
    stack.api_key = create_api_key(env, "expiry")
    with web_server(env, tmp_path / "web.log") as url:
        stack.url = url
        stack.call("PUT", "/users/brief", {})
        token = stack.call("POST", "/users/brief/tokens", {"ttl_seconds": 2})["token"]
        ended = threading.Event()
        client = socketio.Client(reconnection=False)
        client.on("disconnect", lambda *_: ended.set())
        client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        assert client.connected
        assert ended.wait(timeout=30), "the server kept a socket whose token had expired"

        refusals = []
        again = socketio.Client(reconnection=False)
        again.on("connect_error", refusals.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            again.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        assert "token_expired" in refusals[0]["message"]
