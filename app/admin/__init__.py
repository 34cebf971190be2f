"""The admin dashboard at `/admin`, for operators holding an API key: sends, outcomes and
delivery times by channel, top errors, queue depths and connected sockets as live charts,
and the failed deliveries with retry. Registering `bp` also gives the app its session
cookie settings (the dashboard is the only user of Flask's session)."""

from app.admin.views import bp

__all__ = ["bp"]
