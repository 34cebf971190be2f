"""Real time across real processes: two web servers and a worker sharing PostgreSQL and a
private Redis, under eventlet and gevent, over websocket and long-polling."""

import json
import os
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest
import websocket
from redis import Redis
from rq import Queue

from app.realtime.bus import EMITS_PER_MESSAGE
from tests.conftest import drop_postgres_database, recreate_postgres_database
from tests.realtime_client import Tab
from tests.servers import (
    Cluster,
    RedisServer,
    call,
    create_api_key,
    migrate,
    server_environment,
    web_server,
    worker,
)

pytestmark = pytest.mark.timeout(180)

PING_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module", params=["eventlet", "gevent"])
def cluster(request, tmp_path_factory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    redis = RedisServer(workdir)
    redis.start()
    name = f"notify_cluster_{os.getpid()}"
    env = server_environment(
        recreate_postgres_database(name),
        redis.url,
        ASYNC_MODE=request.param,
        # Pings every second: a quiet tab lives on them within one test.
        SOCKET_PING_INTERVAL_SECONDS="1",
        SOCKET_PING_TIMEOUT_SECONDS=str(PING_TIMEOUT_SECONDS),
        # Some tests send hundreds at once from several threads.
        RATE_LIMIT_API_KEY="5000 per second",
    )
    migrate(env)
    api_key = create_api_key(env, "cluster")
    try:
        with (
            web_server(env, workdir / "web1.log") as first,
            web_server(env, workdir / "web2.log") as second,
        ):
            yield Cluster([first, second], env, api_key, redis)
    finally:
        redis.stop()
        drop_postgres_database(name)


@pytest.fixture(params=["websocket", "polling"])
def transport(request) -> str:
    return request.param


@pytest.fixture
def tabs() -> Iterator[list[Tab]]:
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        tab.close()


def open_tab(tabs: list[Tab], url: str, token: str, transport: str, **kwargs: Any) -> Tab:
    tab = Tab(url, token, transport, **kwargs)
    tabs.append(tab)
    tab.next("unread_count")
    return tab


def test_send_through_one_process_reaches_a_tab_on_the_other(cluster, transport, tabs):
    user = f"ana-{transport}"
    ana = open_tab(tabs, cluster.urls[0], cluster.token(user), transport)
    ben = open_tab(tabs, cluster.urls[0], cluster.token(f"ben-{transport}"), transport)
    [notification_id] = cluster.send(1, to=user, title="across")
    notification = ana.next("notification")
    assert notification["id"] == notification_id
    assert notification["user_id"] == user
    assert ana.next("unread_count")["unread_count"] >= 1
    assert [name for name, _ in ben.drain()] == []


def test_a_quiet_tab_stays_connected_on_the_servers_pings(cluster, tabs):
    ana = open_tab(tabs, cluster.urls[0], cluster.token("ana-quiet"), "websocket")
    sid = ana.client.sid
    # The client gives up on a server silent for a ping interval plus the ping timeout.
    time.sleep(1 + PING_TIMEOUT_SECONDS + 2)
    assert ana.client.connected
    assert ana.client.sid == sid
    [notification_id] = cluster.send(1, to="ana-quiet", title="still here")
    assert ana.next("notification")["id"] == notification_id


def test_a_client_that_stops_answering_pings_is_closed(cluster):
    """A client that stays connected but answers no PING (a laptop gone to sleep, a lost NAT
    entry) is found by engine.io's service task, and the server ends the connection: a close
    frame, then the end of the stream. The client here sends nothing after its CONNECT, not
    even an answer to the close frame. Under eventlet the server reads without a timeout
    (app/realtime/writes.py); under gevent simple-websocket waited for that answer
    (app/realtime/gevent_websockets.py): either way only the server's end ends it."""
    address = urlsplit(cluster.urls[0])
    client = websocket.create_connection(
        f"ws://{address.netloc}/socket.io/?EIO=4&transport=websocket",
        # Past one ping cycle and a sweep of the service task: a server that never lets go.
        timeout=1 + 3 * PING_TIMEOUT_SECONDS,
    )
    try:
        token = cluster.token("cy-silent")
        frames = [client.recv_frame()]
        client.send("40" + json.dumps({"token": token}))
        while frames[-1].opcode != websocket.ABNF.OPCODE_CLOSE:
            frames.append(client.recv_frame())
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            client.recv_frame()
    finally:
        client.shutdown()
    texts = [frame.data.decode() for frame in frames if frame.opcode == websocket.ABNF.OPCODE_TEXT]
    assert texts[0].startswith("0"), texts  # engine.io's OPEN
    assert texts[1:] == ['42["unread_count",{"unread_count":0}]', texts[2], "2"], texts
    assert texts[2].startswith("40{"), texts  # the CONNECT's answer


FAT_SENDS = 300
"""About 5 MB of events for one client, more than a loopback connection's buffers hold."""


def _reading_later(cluster: Cluster, user: str) -> websocket.WebSocket:
    """A raw Socket.IO client of `user`, connected, that reads only when the test does, with
    a small receive buffer: what the server writes to it soon waits on the connection."""
    address = urlsplit(cluster.urls[0])
    client = websocket.create_connection(
        f"ws://{address.netloc}/socket.io/?EIO=4&transport=websocket",
        timeout=20,
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],
    )
    assert client.recv().startswith("0")  # engine.io's OPEN
    client.send("40" + json.dumps({"token": cluster.token(user)}))
    return client


def _send_fat(cluster: Cluster, user: str, pool: ThreadPoolExecutor) -> list[Future]:
    """FAT_SENDS sends to `user` from a pool, each some 17 KB of event that hardly
    compresses."""
    return [
        pool.submit(
            cluster.send,
            1,
            to=user,
            title=f"fat {n}",
            body=secrets.token_hex(2_500),
            data={"pad": secrets.token_hex(6_000)},
        )
        for n in range(FAT_SENDS)
    ]


def _held_by_server(server_url: str, client: websocket.WebSocket) -> bool:
    """Whether some process still holds the server's end of `client`'s connection: its entry
    in /proc/net/tcp keeps a descriptor's inode until the last descriptor is closed."""
    server_port = urlsplit(server_url).port
    client_port = client.sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
            server_port,
            client_port,
        ):
            return inode != "0"
    return False


def test_a_client_slow_to_read_gets_every_event_whole(cluster):
    """The server writes more than the connection holds while the client pauses (a catch-up
    on a slow network, a burst): every event still arrives whole. Under gevent
    simple-websocket wrote each frame with one `send`, which writes only what fits, and the
    rest of the frame was lost (app/realtime/gevent_websockets.py)."""
    client = _reading_later(cluster, "ed-slow")
    notifications = []
    try:
        with ThreadPoolExecutor(8) as pool:
            sends = _send_fat(cluster, "ed-slow", pool)
            # Paused for a third of the ping timeout: the client must still answer the PING
            # waiting behind the events.
            time.sleep(1)
            while len(notifications) < FAT_SENDS:
                message = client.recv()
                if message == "2":
                    client.send("3")
                elif message.startswith('42["notification",'):
                    notifications.append(json.loads(message[2:])[1])
        ids = [future.result()[0] for future in sends]
    finally:
        client.close()
    assert sorted(n["id"] for n in notifications) == sorted(ids)
    by_id = {n["id"]: n for n in notifications}
    for n, notification_id in enumerate(ids):
        assert by_id[notification_id]["title"] == f"fat {n}"
        assert len(by_id[notification_id]["body"]) == 5_000
        assert len(by_id[notification_id]["data"]["pad"]) == 12_000


def test_a_client_that_reads_nothing_is_let_go(cluster):
    """A client that stops reading, PONGs included, while the server has more to write than
    the connection holds: the write gives up after the ping interval plus the ping timeout,
    and the server lets the connection go. Under gevent simple-websocket's sends waited with
    no timeout, for as long as the client stayed connected."""
    client = _reading_later(cluster, "fy-stuck")
    assert _held_by_server(cluster.urls[0], client)
    try:
        with ThreadPoolExecutor(8) as pool:
            for future in _send_fat(cluster, "fy-stuck", pool):
                future.result()
        # The ping timeout finds the client, the write bound frees the writer; then margin.
        deadline = time.monotonic() + 1 + 2 * PING_TIMEOUT_SECONDS + 15
        while _held_by_server(cluster.urls[0], client):
            assert time.monotonic() < deadline, "the server still holds a client reading nothing"
            time.sleep(0.2)
    finally:
        client.shutdown()


def test_a_tab_upgraded_from_long_polling_gets_its_events_over_the_websocket(cluster, tabs):
    # Under eventlet, sockets opened as WebSockets write without engine.io's writer; one that
    # upgrades keeps engine.io's handler, whose queue the polling requests read first.
    dara = open_tab(tabs, cluster.urls[0], cluster.token("dara-upgrade"), "upgrade")
    deadline = time.monotonic() + 10
    while dara.client.transport() != "websocket":
        assert time.monotonic() < deadline, "the tab never upgraded to a WebSocket"
        time.sleep(0.05)
    [first] = cluster.send(1, to="dara-upgrade", title="after the upgrade")
    assert dara.next("notification")["id"] == first
    time.sleep(1 + PING_TIMEOUT_SECONDS + 2)
    assert dara.client.connected, "the upgraded tab lost its pings"
    [second] = cluster.send(1, to="dara-upgrade", title="still upgraded")
    assert dara.next("notification")["id"] == second


def test_a_large_send_reaches_every_recipient_on_the_other_process(cluster, tabs):
    """Emits cross the bus in chunks: recipients in the first, a middle and the last one."""
    users = [f"many-{n}" for n in range(2 * EMITS_PER_MESSAGE + 100)]
    watched = {users[0], users[EMITS_PER_MESSAGE + 1], users[-1]}
    opened = {
        user: open_tab(tabs, cluster.urls[0], cluster.token(user), "websocket") for user in watched
    }
    ids = cluster.send(1, to=users, title="to many")
    assert len(ids) == len(users)
    for user, tab in opened.items():
        notification = tab.next("notification")
        assert notification["user_id"] == user
        assert notification["id"] == ids[users.index(user)]
        assert tab.next("unread_count") == {"unread_count": 1}


def test_a_read_on_one_process_reaches_a_tab_on_the_other(cluster, transport, tabs):
    user = f"cara-{transport}"
    token = cluster.token(user)
    first_tab = open_tab(tabs, cluster.urls[0], token, transport)
    second_tab = open_tab(tabs, cluster.urls[1], token, transport)
    [notification_id] = cluster.send(0, to=user, title="read me")
    first_tab.next("notification")
    second_tab.next("notification")
    read = call(cluster.urls[0], "POST", f"/me/notifications/{notification_id}/read", token)
    updated = second_tab.next("notification_updated")
    assert updated == {
        "id": notification_id,
        "seen_at": read["seen_at"],
        "read_at": read["read_at"],
        "archived_at": None,
    }
    assert second_tab.next("unread_count") == {"unread_count": 0}
    cluster.send(1, to=user, title="two")
    call(cluster.urls[1], "POST", "/me/notifications/read-all", token)
    assert first_tab.next("notification_updated")["read_at"].endswith("Z")


def test_a_worker_process_emit_reaches_the_tab(cluster, transport, tabs, tmp_path):
    user = f"dan-{transport}"
    tab = open_tab(tabs, cluster.urls[0], cluster.token(user), transport)
    # A row written without the API, so only the worker's job announces the new count.
    with psycopg2.connect(cluster.env["DATABASE_URL"]) as connection, connection.cursor() as cur:
        cur.execute(
            "INSERT INTO notifications (user_id, category, title, data, priority, in_app)"
            " VALUES (%s, 'general', 'from a worker', '{}', 'normal', true)",
            (user,),
        )
    connection.close()
    with worker(cluster.env, tmp_path / "worker.log"):
        queue = Queue("default", connection=Redis.from_url(cluster.redis.url))
        queue.enqueue("app.realtime.events.announce_unread_counts", [user])
        count = tab.next("unread_count", timeout=30)
    assert count == {"unread_count": 1}


def test_a_slow_query_blocks_neither_requests_nor_sockets(cluster, tabs):
    """A request stuck behind a table lock (a query that takes seconds) must not stall the
    process: other requests answer and socket events arrive while it waits."""
    user = "eve-slow"
    tab = open_tab(tabs, cluster.urls[0], cluster.token(user), "websocket")
    blocker = psycopg2.connect(cluster.env["DATABASE_URL"])
    blocker.cursor().execute("LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE")
    finished: list[Any] = []
    slow = threading.Thread(
        target=lambda: finished.append(
            call(
                cluster.urls[0],
                "POST",
                "/webhooks",
                cluster.api_key,
                {"url": "https://example.com/hook", "events": ["delivery.sent"]},
            )
        )
    )
    slow.start()
    try:
        with urllib.request.urlopen(f"{cluster.urls[0]}/readyz", timeout=10) as response:
            assert response.status == 200
        [notification_id] = cluster.send(0, to=user, title="while a query waits")
        assert tab.next("notification")["id"] == notification_id
        assert slow.is_alive()
        assert finished == []
    finally:
        blocker.rollback()
        blocker.close()
        slow.join(timeout=30)
    assert finished[0]["url"] == "https://example.com/hook"


def test_servers_reconnect_to_redis_and_clients_catch_up(cluster, tabs):
    user = "fay-redis"
    token = cluster.token(user)
    tab = open_tab(tabs, cluster.urls[0], token, "websocket")
    [before] = cluster.send(1, to=user, title="before the outage")
    assert tab.next("notification")["id"] == before

    cluster.redis.stop()
    [during] = cluster.send(1, to=user, title="while Redis is down")
    cluster.redis.start()

    # The servers resubscribe by themselves: keep sending through the other process until
    # one arrives live (the listener backs off 1, 2, 4 ... seconds between tries).
    arrived = None
    for attempt in range(20):
        cluster.send(1, to=user, title=f"after the outage {attempt}")
        try:
            arrived = tab.next("notification", timeout=3)
            break
        except AssertionError:
            continue
    assert arrived is not None, "events never flowed again after Redis came back"

    # The one sent during the outage was never pushed; a reconnect with last_id brings it.
    tab.close()
    again = Tab(cluster.urls[0], token, "websocket", last_id=before)
    tabs.append(again)
    replayed = [again.next("notification")["id"] for _ in range(2)]
    assert replayed[0] == during
    assert int(replayed[1]) > int(during)


def test_a_redis_that_hangs_does_not_hold_sends_up(cluster, tabs):
    """Redis frozen (connections open, no answers): a send still answers, through the
    process whose bus publisher waits on it (redis-py gives up on a command after 5 s), and
    this process's own tab still gets it; once Redis answers again, events flow between the
    processes as before."""
    user = "gil-hang"
    token = cluster.token(user)
    tab = open_tab(tabs, cluster.urls[0], token, "websocket")
    cluster.redis.pause()
    try:
        # `call` gives up after 30 s: a publisher without a timeout would wait for good.
        [during] = cluster.send(0, to=user, title="while Redis hangs")
    finally:
        cluster.redis.resume()
    assert tab.next("notification")["id"] == during
    assert tab.next("unread_count") == {"unread_count": 1}
    [after] = cluster.send(1, to=user, title="Redis answers again")
    assert tab.next("notification")["id"] == after


def _handshake(url: str, origin: str) -> int:
    request = urllib.request.Request(f"{url}/socket.io/?EIO=4&transport=polling")
    request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_only_the_servers_own_origin_may_open_a_socket(cluster):
    url = cluster.urls[0]
    assert _handshake(url, url) == 200
    assert _handshake(url, "https://elsewhere.example") == 400


def test_a_tab_gets_its_events_in_send_order_behind_a_large_send(cluster, tabs):
    """A process emits to its own sockets in the background, after publishing: the events of
    the sends after a large one still reach a tab in the order they were sent."""
    user = "ordered"
    tab = open_tab(tabs, cluster.urls[0], cluster.token(user), "websocket")
    crowd = [user, *(f"crowd-{n}" for n in range(2 * EMITS_PER_MESSAGE))]
    threads = [
        threading.Thread(target=cluster.send, args=(0,), kwargs={"to": crowd, "title": "all"})
    ]
    threads += [
        threading.Thread(target=cluster.send, args=(0,), kwargs={"to": user, "title": f"n{n}"})
        for n in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counts = [data["unread_count"] for event, data in tab.drain(2.0) if event == "unread_count"]
    assert counts == sorted(counts)
    assert counts[-1] == len(threads)
