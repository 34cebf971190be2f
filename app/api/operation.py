"""`@operation`: one declaration per route that authenticates, validates and documents it.

The OpenAPI document is built from these declarations, so docs and behaviour cannot drift.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app, request
from pydantic import BaseModel, ValidationError

from app.api.auth import Credential, authenticate
from app.api.errors import ApiError, field_errors, validation_failed

JSON_MIMETYPE = "application/json"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one route."""

    summary: str
    tag: str
    auth: Credential | None
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    description: str | None = None


def _is_json(mimetype: str) -> bool:
    return mimetype == JSON_MIMETYPE or mimetype.endswith("+json")


def read_body(model: type[M], required: bool) -> M:
    """The request body validated as `model`: 415 if not JSON, 400 if malformed, 422 if
    invalid. An optional body may be empty."""
    raw = request.get_data(cache=True)
    if not raw:
        if required:
            if not _is_json(request.mimetype):
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "send a JSON body (Content-Type: application/json)",
                )
            raise ApiError(400, "malformed_json", "the request body is empty")
        return model()
    if not _is_json(request.mimetype):
        raise ApiError(
            415, "unsupported_media_type", "send a JSON body (Content-Type: application/json)"
        )
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        malformed = [e for e in error.errors(include_url=False) if e["type"] == "json_invalid"]
        if malformed:
            raise ApiError(
                400,
                "malformed_json",
                "the request body is not valid JSON",
                {"reason": malformed[0]["ctx"].get("error", "invalid JSON")},
            ) from error
        raise validation_failed(field_errors(error)) from error


def read_query(model: type[M]) -> M:
    """The query string validated as `model` (422 names each bad parameter)."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise validation_failed(field_errors(error)) from error


def operation(
    summary: str,
    *,
    tag: str,
    auth: Credential | None,
    responses: dict[int, type[BaseModel] | None],
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    headers: dict[str, str] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route: who may call it, what it takes and what it answers.

    The caller is authenticated before the view runs (see `init_app`). The view receives
    the validated `body` and `query` as keyword arguments."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        spec = Operation(
            summary=summary,
            tag=tag,
            auth=auth,
            responses=responses,
            body=body,
            body_required=body_required,
            query=query,
            headers=headers or {},
            errors=errors,
            description=view.__doc__,
        )

        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = read_body(body, body_required)
            if query is not None:
                kwargs["query"] = read_query(query)
            return view(**kwargs)

        wrapper.operation = spec  # type: ignore[attr-defined]
        return wrapper

    return decorate


def authenticate_request() -> None:
    """Check the credential the matched operation needs, before any other hook counts the
    request against that credential's rate limit."""
    if request.endpoint is None or request.method == "OPTIONS":
        return
    spec = getattr(current_app.view_functions[request.endpoint], "operation", None)
    if spec is not None and spec.auth is not None:
        authenticate(spec.auth)


def init_app(app: Flask) -> None:
    """Authenticate each request for its operation; call before the rate limiter's init."""
    app.before_request(authenticate_request)
