"""The contract's error shape, and the handlers that put every failure into it."""

import logging
from typing import Any

import redis
from flask import Flask, Response, g, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Codes for the HTTP errors Flask and Werkzeug raise themselves.
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}

DEPENDENCY_ERRORS = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    redis.ConnectionError,
    redis.TimeoutError,
)
"""Failures of the database or Redis rather than of the request: a database that is down or
whose connection pool stayed exhausted, a Redis that does not answer."""


def dependency_name(error: Exception) -> str:
    """Which dependency one of DEPENDENCY_ERRORS came from: "database" or "redis"."""
    return "database" if isinstance(error, SQLAlchemyError) else "redis"


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message", "details"}}` with `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class NotFound(ApiError):
    """404 for a resource that does not exist, or is not the caller's to see."""

    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found")


def validation_failed(details: dict[str, str]) -> ApiError:
    """422 naming each bad field."""
    return ApiError(422, "validation_error", "the request has invalid fields", details)


def field_errors(error: ValidationError, prefix: str = "") -> dict[str, str]:
    """Pydantic's errors as `{"dotted.field.path": "what is wrong"}`."""
    details: dict[str, str] = {}
    for item in error.errors(include_url=False):
        # An error about the request as a whole has no location; "body" would read as a field.
        path = ".".join(str(part) for part in item["loc"]) or "request"
        details.setdefault(prefix + path, item["msg"])
    return details


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """A JSON response in the contract's error shape."""
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error, including Werkzeug's own and unexpected ones, in the contract's shape."""

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.code, error.message, error.details)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(ValidationError)
    def handle_validation_error(error: ValidationError) -> Response:
        failure = validation_failed(field_errors(error))
        return error_response(failure.status, failure.code, failure.message, failure.details)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        code = HTTP_ERROR_CODES.get(status, "http_error")
        details: dict[str, Any] = {}
        if status == 405 and error.valid_methods:
            details["allowed"] = sorted(error.valid_methods)
        if status == 413:
            details["limit_bytes"] = app.config["MAX_CONTENT_LENGTH"]
        response = error_response(status, code, error.description or error.name, details)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    def handle_dependency_down(error: Exception) -> Response:
        # The transaction rolls back with the request, so nothing was half-written.
        log.error(
            "dependency unavailable (request %s): %s",
            g.get("request_id", "-"),
            type(error).__name__,
        )
        name = dependency_name(error)
        return error_response(
            503,
            "service_unavailable",
            f"the {name} is unavailable; try again shortly",
            {"dependency": name, "request_id": g.get("request_id", "-")},
        )

    for dependency_error in DEPENDENCY_ERRORS:
        app.register_error_handler(dependency_error, handle_dependency_down)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        request_id = g.get("request_id", "-")
        log.exception("unhandled error (request %s)", request_id)
        return error_response(
            500,
            "internal_error",
            "the server failed to handle the request; it was logged",
            {"request_id": request_id},
        )
