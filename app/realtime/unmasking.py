"""Unmasking of client WebSocket frames in one integer XOR per received chunk, under eventlet.

A client masks every frame it sends (RFC 6455, section 5.3) and the server XORs the mask
back out. Eventlet's `RFC6455WebSocket._apply_mask` does that a byte at a time in a Python
generator: 78 us for a Socket.IO CONNECT frame with its user token (316 bytes), about 3 %
of the CPU of a socket connect. One XOR of two big integers does the same in 2 us.
"""

from collections.abc import Sequence


def apply_mask(
    data: bytes, mask: Sequence[int], length: int | None = None, offset: int = 0
) -> bytes:
    """The first `length` bytes of `data` (all of them by default) XORed with the 4-byte
    `mask`, repeated from position `offset` of the frame's payload: eventlet's contract."""
    if length is None:
        length = len(data)
    start = offset % 4
    key = (bytes(mask[start:]) + bytes(mask[:start])) * (length // 4 + 1)
    payload = int.from_bytes(data[:length], "little") ^ int.from_bytes(key[:length], "little")
    return payload.to_bytes(length, "little")


def install() -> None:
    """Use `apply_mask` for every eventlet WebSocket; only once eventlet has patched the
    standard library (serving.py does it)."""
    from eventlet.websocket import RFC6455WebSocket

    RFC6455WebSocket._apply_mask = staticmethod(apply_mask)  # type: ignore[method-assign]
