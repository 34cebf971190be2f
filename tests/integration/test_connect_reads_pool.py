"""The connects' pool (`app.db.ping_after_idle`): a connection is pinged before it is lent
only after it sat unused, and a dead one is then replaced before anyone uses it. Against a
real PostgreSQL behind a TCP proxy that the test takes down and brings back, which closes
every connection through it as a restarted server would."""

import os
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from app import create_app, defaults
from app.config import CONNECT_READS
from app.db import ping_after_idle
from app.extensions import db
from tests.conftest import app_config
from tests.servers import TcpProxy, proxied_postgres

IDLE_SECONDS = 0.2


@pytest.fixture
def proxied() -> Iterator[tuple[str, TcpProxy]]:
    with proxied_postgres(f"notify_pool_{os.getpid()}") as (url, proxy):
        yield url.replace("postgresql://", "postgresql+psycopg2://"), proxy


def _engine(url: str, idle_seconds: float) -> Engine:
    engine = create_engine(url, pool_pre_ping=False, pool_size=2, max_overflow=0)
    ping_after_idle(engine, idle_seconds)
    return engine


def _select_one(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar_one()


def _restart(proxy: TcpProxy) -> None:
    proxy.down()
    proxy.up()


def test_a_connection_in_steady_use_is_lent_without_a_ping(proxied):
    url, proxy = proxied
    engine = _engine(url, idle_seconds=60)
    assert _select_one(engine) == 1
    _restart(proxy)
    # Not idle long enough to be pinged: the dead connection reaches its user...
    with pytest.raises(OperationalError):
        _select_one(engine)
    # ...and its failure made the pool replace it.
    assert _select_one(engine) == 1
    engine.dispose()


def test_a_connection_that_sat_idle_is_pinged_and_a_dead_one_replaced_unseen(proxied):
    url, proxy = proxied
    engine = _engine(url, IDLE_SECONDS)
    with engine.connect() as first, engine.connect() as second:
        assert first.execute(text("SELECT 1")).scalar_one() == 1
        assert second.execute(text("SELECT 1")).scalar_one() == 1
    _restart(proxy)
    time.sleep(IDLE_SECONDS * 2)
    assert _select_one(engine) == 1
    assert _select_one(engine) == 1
    engine.dispose()


def test_the_apps_connect_reads_bind_is_bounded_in_autocommit_and_pings_when_idle(
    proxied, monkeypatch
):
    url, proxy = proxied
    monkeypatch.setattr(defaults, "CONNECT_READS_PING_AFTER_IDLE_SECONDS", IDLE_SECONDS)
    app = create_app(app_config(url, SOCKET_CONNECTS_IN_FLIGHT=3))
    with app.app_context():
        reads = db.engines[CONNECT_READS]
        assert reads is not db.engine
        assert reads.pool.size() == 3
        assert app.config["SQLALCHEMY_BINDS"][CONNECT_READS]["max_overflow"] == 0
        with reads.connect() as connection:
            assert connection.connection.driver_connection.autocommit
        _restart(proxy)
        time.sleep(IDLE_SECONDS * 2)
        assert _select_one(reads) == 1
        reads.dispose()
        db.engine.dispose()
