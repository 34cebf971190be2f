"""Real server processes for tests: `python wsgi.py`, `python worker.py`, Redis, and a TCP
proxy that takes a dependency away."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import (
    PROJECT_ROOT,
    TEST_SECRET,
    drop_postgres_database,
    recreate_postgres_database,
)

STARTUP_SECONDS = 30


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a server or worker process under test."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"SECRET_KEY": TEST_SECRET, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url}
    # Several workers run at once in some tests: each would want the default metrics port.
    env["WORKER_METRICS_ADDRESS"] = ""
    # Every provider and webhook receiver under test listens on 127.0.0.1.
    env["ALLOW_PRIVATE_DESTINATIONS"] = "true"
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env | extra


def migrate(env: dict[str, str]) -> None:
    """`flask db upgrade` on the environment's database."""
    subprocess.run(
        [Path(sys.executable).parent / "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    """Block until GET /healthz answers, or fail with the server's log."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server did not answer at {url}:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Terminate a process, killing it if it does not stop."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def web_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """`python wsgi.py` on a free port; yields its base URL."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "wsgi.py"],
            cwd=PROJECT_ROOT,
            env=env | {"HOST": "127.0.0.1", "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, process, log)
            yield url
        finally:
            stop(process)


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`python worker.py` on the environment's Redis."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            stop(process)


class RedisServer:
    """A private redis-server on its own port, which a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed: run the tests with scripts/test")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(7).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, as with a
        Redis that hangs rather than going away."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def call(url: str, method: str, path: str, credential: str, body: Any = None) -> Any:
    """One JSON request to a server under test; the decoded answer (raises on HTTP errors)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {credential}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def create_api_key(env: dict[str, str], name: str) -> str:
    """`flask keys create NAME` on the environment's database; the printed key."""
    return subprocess.run(
        [Path(sys.executable).parent / "flask", "--app", "wsgi", "keys", "create", name],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class Cluster:
    """Web processes on one database and one Redis, and how to reach them."""

    def __init__(self, urls: list[str], env: dict[str, str], api_key: str, redis: RedisServer):
        self.urls = urls
        self.env = env
        self.api_key = api_key
        self.redis = redis

    def token(self, user_id: str) -> str:
        call(self.urls[0], "PUT", f"/users/{user_id}", self.api_key, {})
        return call(self.urls[0], "POST", f"/users/{user_id}/tokens", self.api_key, {})["token"]

    def send(self, via: int, **body: Any) -> list[str]:
        sent = call(self.urls[via], "POST", "/notifications", self.api_key, body)
        return [item["id"] for item in sent["notifications"]]


class TcpProxy:
    """A TCP relay on a port of its own to `target` (host, port), which a test can take down
    and bring back: down, it closes every relayed connection and refuses new ones, as a
    database host that went away does."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._relayed: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        """Listen on the proxy's port and relay every connection to the target."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Stop listening and cut every connection made through the proxy."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # Closing alone would not wake the accept() blocked on it (Linux).
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            relayed, self._relayed = self._relayed, []
        for connection in relayed:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._relayed += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextmanager
def proxied_postgres(name: str) -> Iterator[tuple[str, TcpProxy]]:
    """A fresh database `name` reached through a `TcpProxy` that is up: its URL through the
    proxy, and the proxy; dropped afterwards."""
    from sqlalchemy import make_url

    direct = make_url(recreate_postgres_database(name))
    proxy = TcpProxy((direct.host, direct.port or 5432))
    proxy.up()
    url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield url, proxy
    finally:
        proxy.down()
        drop_postgres_database(name)
