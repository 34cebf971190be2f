"""CORS for what a browser on another origin calls: the `/me` routes, the VAPID key, and the
static files (the bell is an ES module, fetched with CORS when it comes from elsewhere).

Producer routes never get CORS headers: an API key does not belong in a browser. Origins come
from CORS_ORIGINS, the same list that may open a socket.
"""

from flask import Flask, Response, request

from app.rate_limits import HEADER_NAMES

BROWSER_PATHS = ("/me/", "/push/", "/static/")
ALLOWED_METHODS = "GET, POST, PUT, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type"
# What a page may read back beyond the safelisted headers: how to pace itself.
EXPOSED_HEADERS = ", ".join(HEADER_NAMES)
PREFLIGHT_MAX_AGE_SECONDS = "600"


def init_app(app: Flask) -> None:
    """Answer allowed cross-origin requests (and their preflights) on the browser routes."""
    origins = app.config["CORS_ORIGINS"]

    @app.after_request
    def allow_browser_origins(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or not origins or not request.path.startswith(BROWSER_PATHS):
            return response
        if origins != "*" and origin not in origins:
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if origins == "*" else origin
        response.headers.add("Vary", "Origin")
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_SECONDS
        return response
