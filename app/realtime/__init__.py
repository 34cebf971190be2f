"""Real time: per-user Socket.IO rooms, the events pushed to them, and catch-up on connect.

Importing this package registers the Socket.IO handlers on the shared `socketio` instance.
"""

from app.realtime import connection  # noqa: F401 - registers the handlers
