"""Inbox cursors: opaque, round-trip exactly, and refuse anything else."""

import base64

import pytest

from app.services.inbox import NEWER, OLDER, Cursor, InvalidCursor


@pytest.mark.parametrize("direction", [NEWER, OLDER])
@pytest.mark.parametrize("notification_id", [1, 42, 2**63 - 1])
def test_round_trip(notification_id, direction):
    cursor = Cursor(notification_id, direction)
    assert Cursor.decode(cursor.encode()) == cursor


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 at all!",
        _b64("n1:d:abc"),
        _b64("n1:x:5"),
        _b64("n2:d:5"),
        _b64("n1:d:0"),
        _b64(f"n1:d:{2**63}"),
        _b64("n1:d:-5"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_refuses_foreign_cursors(value):
    with pytest.raises(InvalidCursor):
        Cursor.decode(value)
