"""The official JavaScript socket.io-client (from npm, under node) against a real server."""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT, drop_postgres_database, recreate_postgres_database
from tests.servers import (
    Cluster,
    RedisServer,
    TcpProxy,
    call,
    create_api_key,
    migrate,
    proxied_postgres,
    server_environment,
    web_server,
)

JS_DIR = PROJECT_ROOT / "tests" / "js"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Cluster]:
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "socket.io-client").exists():
        raise AssertionError("node and tests/js/node_modules are needed: run scripts/test")
    workdir = tmp_path_factory.mktemp("js-client")
    redis = RedisServer(workdir)
    redis.start()
    name = f"notify_js_{os.getpid()}"
    env = server_environment(recreate_postgres_database(name), redis.url, ASYNC_MODE="eventlet")
    migrate(env)
    try:
        with web_server(env, workdir / "web.log") as url:
            yield Cluster([url], env, create_api_key(env, "js"), redis)
    finally:
        redis.stop()
        drop_postgres_database(name)


class NodeTab:
    """`node listen.mjs`: a socket.io-client connection printing events as JSON lines; with
    `reconnect`, one that reconnects when its connection drops, as a browser's does."""

    def __init__(
        self,
        url: str,
        token: str,
        transport: str,
        count: int,
        last_id: str = "",
        reconnect: bool = False,
    ):
        args = ["node", "listen.mjs", url, token, transport, str(count)]
        self.process = subprocess.Popen(
            [*args, last_id] if last_id else args,
            cwd=JS_DIR,
            env=os.environ | {"RECONNECT": "1" if reconnect else "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def next(self, name: str) -> dict[str, Any]:
        """Events up to and including the next one called `name` (listen.mjs gives up and
        says "timeout" after 30 s, which fails here)."""
        events = []
        for line in self.process.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == name:
                return events
            assert events[-1]["event"] != "timeout", f"no {name!r} event: {events}"
        raise AssertionError(f"no {name!r} event: {events} {self.process.stderr.read()}")

    def wait_connected(self) -> None:
        """Wait for the server's greeting: the unread count it sends on every connect."""
        for line in self.process.stdout:
            event = json.loads(line)["event"]
            assert event in {"connect", "unread_count"}, line + self.process.stderr.read()
            if event == "unread_count":
                return
        raise AssertionError(self.process.stderr.read())

    def finish(self) -> list[dict[str, Any]]:
        out, err = self.process.communicate(timeout=60)
        events = [json.loads(line) for line in out.splitlines() if line]
        assert self.process.returncode in {0, 2}, (events, err)
        return events


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_js_client_receives_live_notifications(server, transport):
    user = f"js-{transport}"
    token = server.token(user)
    tab = NodeTab(server.urls[0], token, transport, count=1)
    tab.wait_connected()
    time.sleep(0.2)
    [notification_id] = server.send(0, to=user, title="to node", data={"n": 1})
    events = tab.finish()
    notifications = [e["data"] for e in events if e["event"] == "notification"]
    assert [n["id"] for n in notifications] == [notification_id]
    assert notifications[0]["data"] == {"n": 1}
    assert events[-1] == {"event": "notification", "data": notifications[0]}


def test_js_client_catches_up_from_last_id_once_in_order(server):
    user = "js-catch-up"
    token = server.token(user)
    [seen] = server.send(0, to=user, title="seen")
    missed = [server.send(0, to=user, title=f"missed {i}")[0] for i in range(3)]
    events = NodeTab(server.urls[0], token, "websocket", count=3, last_id=seen).finish()
    replayed = [e["data"]["id"] for e in events if e["event"] == "notification"]
    assert replayed == missed


def test_js_client_sees_a_refused_connection(server):
    events = NodeTab(server.urls[0], "not-a-token", "websocket", count=1).finish()
    assert events[-1]["event"] == "connect_error"
    assert "invalid_credential" in events[-1]["data"]["message"]
    assert call(server.urls[0], "GET", "/healthz", "x")["status"] == "ok"


@pytest.fixture
def behind_a_proxy(tmp_path) -> Iterator[tuple[Cluster, TcpProxy, Path]]:
    """A server whose Postgres is reached through a TCP proxy that the test can take down;
    the server, the proxy and the server's log."""
    with proxied_postgres(f"notify_js_outage_{os.getpid()}") as (proxied, database):
        env = server_environment(proxied, None, ASYNC_MODE="eventlet")
        migrate(env)
        log = tmp_path / "web.log"
        with web_server(env, log) as url:
            yield Cluster([url], env, create_api_key(env, "outage"), None), database, log


def test_a_connect_during_a_database_outage_is_dropped_and_retried_until_it_gets_in(
    behind_a_proxy,
):
    """Not left waiting unanswered, and not refused for good: the client's own retries get it
    in once the database is back, with nothing missed."""
    server, database, log = behind_a_proxy
    token = server.token("ana")
    database.down()
    tab = NodeTab(server.urls[0], token, "websocket", count=1, reconnect=True)
    dropped = tab.next("disconnect")
    assert "connect_error" not in [event["event"] for event in dropped]
    database.up()
    tab.next("unread_count")
    [notification_id] = server.send(0, to="ana", title="after the outage")
    events = tab.finish()
    assert [e["data"]["id"] for e in events if e["event"] == "notification"] == [notification_id]
    assert "socket connect dropped for the client to retry: the database" in log.read_text()


def test_connects_get_in_after_the_database_restarts_under_the_pool_they_read_through(
    behind_a_proxy,
):
    """The connects' pool pings a connection only after it sat idle for a while, so the one
    it kept from just before the restart may fail one connect, which is dropped and retried;
    every client gets in, refused by none, with nothing missed."""
    server, database, log = behind_a_proxy
    tokens = {user: server.token(user) for user in ("ana", "bo", "cy")}
    before = NodeTab(server.urls[0], tokens["ana"], "websocket", count=1)
    before.wait_connected()
    server.send(0, to="ana", title="before the restart")
    before.finish()
    database.down()
    database.up()
    tabs = {
        user: NodeTab(server.urls[0], token, "websocket", count=1, reconnect=True)
        for user, token in tokens.items()
    }
    for user, tab in tabs.items():
        events = tab.next("unread_count")
        [notification_id] = server.send(0, to=user, title="after the restart")
        events += tab.finish()
        assert "connect_error" not in [event["event"] for event in events]
        notifications = [e["data"]["id"] for e in events if e["event"] == "notification"]
        assert notifications == [notification_id]
    assert log.read_text().count("socket connect dropped for the client to retry") <= 1
