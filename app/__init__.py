"""The notification server: `create_app()` builds a configured Flask app."""

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import (
    cli,
    defaults,
    rate_limits,
    realtime,  # noqa: F401 - registers the Socket.IO handlers before init_app
    request_log,
    security_headers,
)
from app.admin import bp as admin_bp
from app.api import cors, operation, register_blueprints
from app.api.errors import register_error_handlers
from app.api.notifications import push_sends, queue_sends
from app.channels import email
from app.config import load_config
from app.db import init_app as init_database
from app.extensions import db, mail, migrate, socketio
from app.jobs.queue import init_app as init_job_queue
from app.realtime import compression, wire_json
from app.realtime.admission import ConnectGate
from app.realtime.bus import BatchingRedisManager
from app.realtime.packets import Packet
from app.realtime.rooms import LocalManager
from app.redis_client import init_app as init_redis
from app.services.coalesce import SendCoalescer
from app.web.demo import bp as web_bp

REALTIME_CHANNEL = "notify-socketio"
"""Redis pub/sub channel that carries Socket.IO emits between processes."""


def register_extensions(app: Flask) -> None:
    """Bind the unbound extension instances to `app`."""
    db.init_app(app)
    init_database(app)
    migrate.init_app(app, db, directory=str(app.config["MIGRATIONS_DIRECTORY"]))
    mail.init_app(app)
    email.init_app(app)
    init_redis(app)
    init_job_queue(app)
    redis_url = app.config["REDIS_URL"]
    socketio.init_app(
        app,
        async_mode=app.config["ASYNC_MODE"],
        # Always given, so building a second app never inherits the first one's queue.
        client_manager=(
            BatchingRedisManager(redis_url, channel=REALTIME_CHANNEL)
            if redis_url
            else LocalManager()
        ),
        cors_allowed_origins=app.config["CORS_ORIGINS"],
        max_http_buffer_size=app.config["SOCKET_MAX_MESSAGE_BYTES"],
        ping_interval=app.config["SOCKET_PING_INTERVAL_SECONDS"],
        ping_timeout=app.config["SOCKET_PING_TIMEOUT_SECONDS"],
        json=wire_json,
        serializer=Packet,
    )
    compression.init_app(app)
    app.extensions["send_coalescer"] = SendCoalescer(
        defaults.SEND_BATCH_MAX_RECIPIENTS, push_sends, queue_sends
    )
    app.extensions["connect_gate"] = ConnectGate(app.config["SOCKET_CONNECTS_IN_FLIGHT"])


def trust_proxies(app: Flask) -> None:
    """Behind PROXY_FIX_HOPS reverse proxies, take the client's address, scheme and host from
    their X-Forwarded-* headers (secure cookies, origin checks, logs); never trust them
    otherwise, since any client can send them."""
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings (environment, then `config`), extensions, routes, errors and
    commands."""
    app = Flask(
        __name__,
        static_folder="../static",
        template_folder="../templates",
        instance_relative_config=True,
    )
    load_config(app, config)
    request_log.configure_logging(app)
    trust_proxies(app)
    # Request hooks run in this order: request id, authentication, then the rate limits
    # that count per credential.
    request_log.init_app(app)
    operation.init_app(app)
    rate_limits.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    app.register_blueprint(web_bp)
    app.register_blueprint(admin_bp)
    register_error_handlers(app)
    cors.init_app(app)
    security_headers.init_app(app)
    cli.init_app(app)
    return app
