"""Socket.IO packets (app/realtime/packets.py): JSON only, never searched for bytes."""

import pytest
from socketio import packet

from app.realtime.packets import Packet

NOTIFICATION = {"id": "7", "title": "Hi", "data": {"tags": ["a", {"n": 1}]}, "read_at": None}


@pytest.mark.parametrize(
    "data",
    [
        ["notification", NOTIFICATION],
        ["unread_count", {"unread_count": 3}],
        ["notification_updated", {"ids": ["1", "2"], "read_at": "2026-12-07T17:00:00Z"}],
    ],
)
def test_events_are_built_without_a_search_for_bytes_and_encode_as_python_socketios(
    data, monkeypatch
):
    expected = packet.Packet(packet.EVENT, data=data, namespace="/").encode()

    def searched(_cls, _data):
        raise AssertionError("the packet's data was searched for bytes")

    monkeypatch.setattr(Packet, "data_is_binary", classmethod(searched))
    built = Packet(packet.EVENT, data=data, namespace="/")
    assert built.packet_type == packet.EVENT
    assert built.encode() == expected


def test_bytes_in_an_event_fail_when_it_is_encoded_instead_of_going_out_as_attachments():
    with pytest.raises(TypeError):
        Packet(packet.EVENT, data=["upload", {"file": b"\x00\x01"}], namespace="/").encode()


def test_a_binary_event_from_a_client_still_decodes_with_its_attachments():
    received = Packet(encoded_packet='51-["upload",{"_placeholder":true,"num":0}]')
    assert received.packet_type == packet.BINARY_EVENT
    assert received.attachment_count == 1
    assert received.add_attachment(b"\x00\x01")
    assert received.data == ["upload", b"\x00\x01"]
