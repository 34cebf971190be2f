"""The app's Redis client gives up on a Redis that hangs (frozen with SIGSTOP: connections
stay open and nothing answers) instead of holding its caller for good: redis-py (8) times a
command out after 5 s unless told otherwise, and this guards that across upgrades. The
bus's side, a send through a web process on a frozen Redis, is in test_realtime_processes."""

import pytest
from flask import Flask
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import redis_client
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
