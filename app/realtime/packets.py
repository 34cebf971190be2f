"""Socket.IO packets that are never searched for bytes.

python-socketio walks the data of every packet it builds, looking for bytes to send as binary
attachments: once per recipient of a fan-out, 7 % of a web process's samples in one (after
the walk had been made to stop at the first bytes). This server sends only JSON:
notifications as the schema dumps them for JSON, counts, and what it decoded from JSON off
the Redis bus. So its packets skip the walk, as python-socketio's own msgpack packets do (a
fan-out to 5,000 sockets in one process: 62 µs of CPU per notification instead of 67-68).
Bytes in an event are a programming error: they fail where the event is serialized (orjson,
like json, refuses them: on the Redis bus, or as the packet is encoded), rather than going out
as attachments no client of this server reads.
A client's binary event still decodes, with its attachments.
"""

from socketio import packet


class Packet(packet.Packet):
    """python-socketio's packet, for JSON data only: no binary events."""

    uses_binary_events = False
