"""WebSocket unmasking in one XOR per received chunk (app/realtime/unmasking.py) against
eventlet's own byte-at-a-time version, on the lengths and offsets eventlet calls it with."""

import random
import warnings

import pytest

from app.realtime import unmasking

with warnings.catch_warnings():
    # eventlet announces its deprecation on import.
    warnings.simplefilter("ignore")
    from eventlet.websocket import RFC6455WebSocket

EVENTLETS_OWN = RFC6455WebSocket.__dict__["_apply_mask"].__func__


def test_the_reference_is_eventlets_own():
    # Were it already replaced in this process, every comparison below would be with itself.
    assert EVENTLETS_OWN is not unmasking.apply_mask


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 4096, 65537])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 6, 4097])
def test_it_unmasks_as_eventlet_does(size, offset):
    randomness = random.Random(size * 31 + offset)
    data = randomness.randbytes(size)
    mask = tuple(randomness.randrange(256) for _ in range(4))
    assert unmasking.apply_mask(data, mask, offset=offset) == EVENTLETS_OWN(
        data, mask, offset=offset
    )


def test_only_the_first_length_bytes_are_unmasked():
    data = bytes(range(10))
    mask = [1, 2, 3, 4]
    assert unmasking.apply_mask(data, mask, length=6) == EVENTLETS_OWN(data, mask, length=6)
    assert len(unmasking.apply_mask(data, mask, length=6)) == 6


def test_masking_twice_gives_the_frame_back():
    data = "a token, then some ✓ text".encode()
    mask = [0xDE, 0xAD, 0xBE, 0xEF]
    assert unmasking.apply_mask(unmasking.apply_mask(data, mask), mask) == data


def test_zero_bytes_at_either_end_survive():
    assert unmasking.apply_mask(b"\x00\x07\x00", [0, 0, 0, 0]) == b"\x00\x07\x00"
