"""Turn rows and dicts into JSON responses through their response schema."""

from functools import cache
from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel, TypeAdapter


def dump(schema: type[BaseModel], value: Any) -> dict[str, Any]:
    """`value` (a row, a dataclass or a dict) as the JSON-ready dict `schema` describes."""
    return schema.model_validate(value, from_attributes=True).model_dump(mode="json")


@cache
def _list_of(schema: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[schema])  # type: ignore[valid-type]


def dump_many(schema: type[BaseModel], values: list[Any]) -> list[dict[str, Any]]:
    """Each of `values` as `dump` would make it, in one pass (much faster for long lists)."""
    adapter = _list_of(schema)
    return adapter.dump_python(adapter.validate_python(values, from_attributes=True), mode="json")


def respond(schema: type[BaseModel], value: Any, status: int = 200) -> Response:
    """A JSON response of `value` shaped by `schema`."""
    response = jsonify(dump(schema, value))
    response.status_code = status
    return response


def no_content() -> Response:
    """An empty 204."""
    return Response(status=204)
