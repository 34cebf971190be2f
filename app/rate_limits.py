"""Rate limits: one budget per API key across the producer routes and one per user across
the `/me` routes (Flask-Limiter, counted in Redis so every web process shares them; in
memory in the embedded mode). Socket.IO is outside Flask's request cycle, so its connects
and client events are counted here on the same storage.

The identity is known only once `app.api.operation` has authenticated the request, which it
does in a `before_request` hook registered ahead of Flask-Limiter's own.
"""

import logging
import math
import time

from flask import Flask, Response, current_app, g
from flask_limiter import ApplicationLimit, Limiter
from limits import RateLimitItem, parse_many

from app import metrics
from app.api.errors import ApiError

log = logging.getLogger(__name__)

HEADER_NAMES = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")
"""Headers a client may read to pace itself (exposed to other origins by CORS)."""


def _api_key_identity() -> str:
    return str(g.api_key.id)


def _user_identity() -> str:
    return g.user_id


def _build_limiter(app: Flask) -> Limiter:
    # One limiter per app: Flask-Limiter keeps its storage on the instance, so a shared
    # instance would send every app in the process to the storage of the last one built.
    return Limiter(
        key_func=_user_identity,
        app=app,
        application_limits=[
            ApplicationLimit(
                lambda: current_app.config["RATE_LIMIT_API_KEY"],
                key_function=_api_key_identity,
                scope="api_key",
                exempt_when=lambda: "api_key" not in g,
            ),
            ApplicationLimit(
                lambda: current_app.config["RATE_LIMIT_USER"],
                key_function=_user_identity,
                scope="user",
                exempt_when=lambda: "user_id" not in g,
            ),
        ],
        # A Redis outage must not fail sends: count in this process's memory until it is back.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        key_prefix="notify",
        strategy="fixed-window",
    )


def limiter() -> Limiter:
    """The current app's rate limiter."""
    return current_app.extensions["rate_limiter"]


def rate_limited(item: RateLimitItem, reset_at: float) -> ApiError:
    """429 in the contract's shape, saying which limit and when to come back."""
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return ApiError(
        429,
        "rate_limited",
        f"too many requests: the limit is {item}; retry in {retry_after} s",
        {"limit": str(item), "retry_after_seconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def allow(limit_setting: str, *identifiers: str) -> bool:
    """Count one event against every limit of `limit_setting` (a config key) for the
    identifiers; False once any is exhausted. For what Flask-Limiter does not see (sockets);
    like it, this lets the event through when the storage is down."""
    rate_limiter = limiter()
    if not rate_limiter.enabled:
        return True
    limits = parse_many(current_app.config[limit_setting])
    try:
        allowed = all(
            rate_limiter.limiter.hit(item, "notify", limit_setting, *identifiers) for item in limits
        )
    except Exception:
        # Any storage failure: the limit is advice then, as in Flask-Limiter itself.
        log.warning("rate limit storage unreachable; %s not counted", limit_setting)
        return True
    if not allowed:
        metrics.RATE_LIMITED.labels(limit_setting.removeprefix("RATE_LIMIT_").lower()).inc()
    return allowed


def init_app(app: Flask) -> None:
    """Bind the limiter (Redis when REDIS_URL is set) and add the `RateLimit-*` headers."""
    rate_limiter = _build_limiter(app)
    app.extensions["rate_limiter"] = rate_limiter

    @app.errorhandler(429)
    def handle_rate_limited(error: Exception) -> Response:
        current = rate_limiter.current_limit
        if current is None:
            raise error
        metrics.RATE_LIMITED.labels("api_key" if "api_key" in g else "user").inc()
        failure = rate_limited(current.limit, current.window.reset_time)
        return app.handle_user_exception(failure)

    @app.after_request
    def add_rate_limit_headers(response: Response) -> Response:
        current = rate_limiter.current_limit
        if current is not None:
            try:
                reset_time, remaining = current.window
                reset_in = max(0, math.ceil(reset_time - time.time()))
            except Exception:
                # The headers are advice; the storage may be down.
                return response
            response.headers["RateLimit-Limit"] = str(current.limit.amount)
            response.headers["RateLimit-Remaining"] = str(remaining)
            response.headers["RateLimit-Reset"] = str(reset_in)
        return response
