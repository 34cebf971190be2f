"""Socket.IO packets that find out faster whether their data holds bytes.

python-socketio asks it of every packet it builds, walking the data with `functools.reduce`
over a list made per container: half of building and encoding a notification's event (11 of
22 µs), once per recipient of a fan-out. `any` over the same walk builds nothing and stops at
the first bytes.
"""

from typing import Any

from socketio import packet


class Packet(packet.Packet):
    """python-socketio's packet, with a cheaper `data_is_binary`."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        """Whether `data` holds bytes anywhere (a binary packet's attachments)."""
        if isinstance(data, bytes | bytearray):
            return True
        if isinstance(data, list):
            return any(map(cls.data_is_binary, data))
        if isinstance(data, dict):
            return any(map(cls.data_is_binary, data.values()))
        return False
