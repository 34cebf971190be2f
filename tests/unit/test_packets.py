"""Socket.IO packets' binary check (app/realtime/packets.py) against python-socketio's."""

import pytest
from socketio import packet

from app.realtime.packets import Packet

NOTIFICATION = {"id": "7", "title": "Hi", "data": {"tags": ["a", {"n": 1}]}, "read_at": None}


@pytest.mark.parametrize(
    "data",
    [
        ["notification", NOTIFICATION],
        ["unread_count", {"unread_count": 3}],
        [],
        "text",
        None,
        b"raw",
        bytearray(b"raw"),
        ["upload", {"file": b"\x00\x01"}],
        ["deep", {"a": [{"b": [1, 2, {"c": bytearray(b"x")}]}]}],
        ["late", 1, "two", [3, b"four"]],
    ],
)
def test_it_finds_binary_data_where_python_socketio_does(data):
    assert Packet.data_is_binary(data) == packet.Packet.data_is_binary(data)


def test_packets_encode_as_python_socketios_do():
    text = Packet(packet.EVENT, data=["notification", NOTIFICATION], namespace="/")
    assert text.packet_type == packet.EVENT
    assert (
        text.encode()
        == packet.Packet(packet.EVENT, data=["notification", NOTIFICATION], namespace="/").encode()
    )
    binary = Packet(packet.EVENT, data=["upload", {"file": b"\x00"}], namespace="/")
    assert binary.packet_type == packet.BINARY_EVENT
    assert (
        binary.encode()
        == packet.Packet(packet.EVENT, data=["upload", {"file": b"\x00"}], namespace="/").encode()
    )
