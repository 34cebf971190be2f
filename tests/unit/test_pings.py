"""Engine.IO pings on eventlet's hub timers (app/realtime/pings.py), on a stand-in socket."""

import warnings
from types import SimpleNamespace

import pytest
from engineio import packet

from app.realtime import pings

with warnings.catch_warnings():
    # eventlet announces its deprecation on import.
    warnings.simplefilter("ignore")
    import eventlet
    from eventlet.queue import Queue

INTERVAL = 0.01


def stand_in(**state) -> SimpleNamespace:
    server = SimpleNamespace(ping_interval=INTERVAL)
    defaults = {"last_ping": 1.0, "closing": False, "closed": False}
    return SimpleNamespace(server=server, queue=Queue(), **(defaults | state))


def test_a_ping_is_queued_one_interval_after_the_pong():
    socket = stand_in()
    pings.schedule_ping(socket)
    assert socket.last_ping is None
    assert socket.queue.empty()
    eventlet.sleep(INTERVAL * 5)
    assert socket.queue.get_nowait().packet_type == packet.PING
    assert socket.last_ping is not None


def test_only_an_answered_ping_schedules_the_next():
    socket = stand_in(last_ping=None)
    pings.schedule_ping(socket)
    eventlet.sleep(INTERVAL * 5)
    assert socket.queue.empty()


@pytest.mark.parametrize("state", [{"closing": True}, {"closed": True}])
def test_a_closing_socket_is_not_pinged(state):
    socket = stand_in()
    pings.schedule_ping(socket)
    socket.__dict__.update(state)
    eventlet.sleep(INTERVAL * 5)
    assert socket.queue.empty()
