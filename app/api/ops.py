"""Liveness and readiness probes."""

import redis
from flask import Blueprint, Response, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import defaults
from app.api import schemas
from app.api.errors import ApiError
from app.api.operation import operation
from app.api.responses import respond
from app.extensions import db

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@operation("Liveness", tag="Operations", auth=None, responses={200: schemas.Health})
def healthz() -> Response:
    """The process answers. Touches no dependency."""
    return respond(schemas.Health, {"status": "ok"})


def _database_check() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        db.session.rollback()
        return f"unreachable: {type(error).__name__}"
    return None


def _redis_check(url: str) -> str | None:
    client = redis.Redis.from_url(
        url,
        socket_timeout=defaults.READINESS_TIMEOUT_SECONDS,
        socket_connect_timeout=defaults.READINESS_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return f"unreachable: {type(error).__name__}"
    finally:
        client.close()
    return None


@bp.get("/readyz")
@operation(
    "Readiness", tag="Operations", auth=None, responses={200: schemas.Readiness}, errors=(503,)
)
def readyz() -> Response:
    """200 when the database (and Redis, when configured) answer; 503 names what failed."""
    checks = {"database": _database_check()}
    if current_app.config["REDIS_URL"]:
        checks["redis"] = _redis_check(current_app.config["REDIS_URL"])
    failed = {name: problem for name, problem in checks.items() if problem}
    if failed:
        raise ApiError(503, "not_ready", f"not ready: {', '.join(sorted(failed))}", failed)
    return respond(schemas.Readiness, {"status": "ready", "checks": dict.fromkeys(checks, "ok")})
