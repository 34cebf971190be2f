"""The app's Redis client gives up on a Redis that hangs (frozen with SIGSTOP: connections
stay open and nothing answers) instead of holding its caller for good: redis-py (8) times a
command out after 5 s unless told otherwise, and this guards that across upgrades. The
bus's side, a send through a web process on a frozen Redis, is in test_realtime_processes;
here, that the bus's subscription outlives a publish that failed on it."""

import logging
import queue
import threading

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import redis_client
from app.realtime.bus import BatchingRedisManager
from tests.servers import RedisServer

pytestmark = pytest.mark.timeout(60)


def test_the_apps_redis_client_gives_up_on_a_redis_that_hangs_then_works_again(tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        app = Flask(__name__)
        app.config["REDIS_URL"] = redis.url
        redis_client.init_app(app)
        client = app.extensions["redis"]
        assert client.ping()
        redis.pause()
        try:
            with pytest.raises(RedisTimeoutError):
                client.rpush("notify-test-queue", "job")
        finally:
            redis.resume()
        assert client.ping()
    finally:
        redis.stop()


def test_the_bus_keeps_its_subscription_when_a_publish_fails_on_a_redis_that_hangs(
    tmp_path, caplog
):
    """python-socketio connects its publisher again when a publish fails. That must not cost
    the listener its subscription: subscribing again takes it a second, and what the other
    processes publish meanwhile would never reach this process's sockets."""
    channel = "notify-test-bus-hang"
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        manager = BatchingRedisManager(redis.url, channel=channel)
        heard: queue.Queue = queue.Queue()

        def listen() -> None:
            for message in manager._redis_listen_with_retries():
                if message.get("type") == "message":
                    heard.put(message["data"])

        threading.Thread(target=listen, daemon=True).start()
        other_process = Redis.from_url(redis.url)
        while other_process.publish(channel, b"before") == 0:
            pass  # until the listener has subscribed
        assert heard.get(timeout=5) == b"before"
        caplog.set_level(logging.ERROR)
        redis.pause()
        try:
            assert manager._publish({"method": "emit", "host_id": "here"}) is None
        finally:
            redis.resume()
        assert "Cannot publish to redis... giving up" in caplog.text
        other_process.publish(channel, b"after")
        assert heard.get(timeout=5) == b"after"
        assert "Cannot receive from redis" not in caplog.text
    finally:
        redis.stop()
