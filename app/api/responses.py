"""Turn rows and dicts into JSON responses through their response schema."""

from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel


def dump(schema: type[BaseModel], value: Any) -> dict[str, Any]:
    """`value` (a row, a dataclass or a dict) as the JSON-ready dict `schema` describes."""
    return schema.model_validate(value, from_attributes=True).model_dump(mode="json")


def respond(schema: type[BaseModel], value: Any, status: int = 200) -> Response:
    """A JSON response of `value` shaped by `schema`."""
    response = jsonify(dump(schema, value))
    response.status_code = status
    return response


def no_content() -> Response:
    """An empty 204."""
    return Response(status=204)
