"""The OpenAPI 3.1 document, built from the `@operation` declarations, and Swagger UI."""

import re
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from app.api import schemas
from app.api.operation import Operation

bp = Blueprint("docs", __name__)
REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY = {"api_key": "apiKey", "user": "userToken"}
PATH_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "user_id": {"type": "string", "pattern": schemas.USER_ID_PATTERN},
    "key": {"type": "string", "pattern": schemas.TEMPLATE_KEY_PATTERN},
    "notification_id": {"type": "string", "pattern": schemas.ID_PATTERN},
    "webhook_id": {"type": "string", "pattern": schemas.ID_PATTERN},
}
HEADER_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {"type": "string", "pattern": schemas.IDEMPOTENCY_KEY_PATTERN},
}
HEADERS_REF = "#/components/headers/{name}"
RATE_LIMIT_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Limit": {
        "description": "Requests this credential may make in the current window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Remaining": {
        "description": "Requests it has left in the current window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the current window ends.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


class _JsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with dicts whose keys have a pattern closed to other keys, as
    pydantic validates them (it states only `patternProperties`, which leaves them open)."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        generated = super().dict_schema(schema)
        if "patternProperties" in generated and "additionalProperties" not in generated:
            generated["additionalProperties"] = False
        return generated


def _operations(app: Flask) -> list[tuple[str, str, str, Operation, list[str]]]:
    found = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "operation", None)
        if spec is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((path, method.lower(), rule.endpoint, spec, sorted(rule.arguments)))
    return found


def _json_content(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _query_parameter_schema(field_schema: dict[str, Any]) -> dict[str, Any]:
    """A query field's schema without its description and without `null`: a query parameter
    is absent or a string, never null."""
    return schemas.without_null({k: v for k, v in field_schema.items() if k != "description"})


def _parameters(spec: Operation, arguments: list[str]) -> list[dict[str, Any]]:
    """The path, query and header parameters of one operation."""
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_PARAMETER_SCHEMAS.get(name, {"type": "string"}),
        }
        for name in arguments
    ]
    if spec.query is not None:
        query_schema = spec.query.model_json_schema(
            ref_template=REF_TEMPLATE, schema_generator=_JsonSchema
        )
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": name in query_schema.get("required", []),
                "description": field_schema.get("description", ""),
                "schema": _query_parameter_schema(field_schema),
            }
            for name, field_schema in query_schema["properties"].items()
        ]
    parameters += [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": text,
            "schema": HEADER_PARAMETER_SCHEMAS[name],
        }
        for name, text in spec.headers.items()
    ]
    return parameters


def _rate_limit_headers() -> dict[str, Any]:
    return {name: {"$ref": HEADERS_REF.format(name=name)} for name in RATE_LIMIT_HEADERS}


def _responses(
    spec: Operation, refs: dict[Any, dict[str, Any]], error_ref: dict[str, Any]
) -> dict[str, Any]:
    """What one operation answers: its own responses, its errors, and any other error."""
    responses: dict[str, Any] = {}
    for status, model in spec.responses.items():
        entry: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if model is not None:
            entry["content"] = _json_content(refs[(model, "serialization")])
        responses[str(status)] = entry
    for status in spec.errors:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": _json_content(error_ref),
        }
    if spec.auth:
        # Each credential has a request budget (per API key, per user): a response may say
        # where it stands, and past it the answer is 429.
        for entry in responses.values():
            entry["headers"] = _rate_limit_headers()
        responses["429"] = {
            "description": "Too many requests with this credential",
            "headers": {"Retry-After": RETRY_AFTER, **_rate_limit_headers()},
            "content": _json_content(error_ref),
        }
    responses["default"] = {"description": "Error", "content": _json_content(error_ref)}
    return responses


def _operation(
    spec: Operation,
    endpoint: str,
    arguments: list[str],
    refs: dict[Any, dict[str, Any]],
    error_ref: dict[str, Any],
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": _parameters(spec, arguments),
        "responses": _responses(spec, refs, error_ref),
    }
    if spec.description:
        operation["description"] = " ".join(spec.description.split())
    if spec.body is not None:
        operation["requestBody"] = {
            "required": spec.body_required,
            "content": _json_content(refs[(spec.body, "validation")]),
        }
    operation["security"] = [{SECURITY[spec.auth]: []}] if spec.auth else []
    return operation


def build_openapi(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI document for the routes registered on `app`."""
    operations = _operations(app)
    models: set[tuple[type[BaseModel], str]] = {(schemas.ErrorResponse, "serialization")}
    for *_, spec, _ in operations:
        models.update((m, "serialization") for m in spec.responses.values() if m is not None)
        if spec.body is not None:
            models.add((spec.body, "validation"))
    refs, definitions = models_json_schema(
        sorted(models, key=lambda item: (item[0].__name__, item[1])),
        ref_template=REF_TEMPLATE,
        schema_generator=_JsonSchema,
    )
    error_ref = refs[(schemas.ErrorResponse, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint, spec, arguments in operations:
        paths.setdefault(path, {})[method] = _operation(spec, endpoint, arguments, refs, error_ref)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Notify",
            "version": "1",
            "description": "Self-hosted real-time notifications: producer API and user inbox.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "headers": RATE_LIMIT_HEADERS,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A producer API key (`flask keys create`).",
                },
                "userToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A user token (`POST /users/{user_id}/tokens`).",
                },
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI document, built once per process."""
    document = current_app.extensions.get("openapi_document")
    if document is None:
        document = current_app.extensions["openapi_document"] = build_openapi(current_app)
    return jsonify(document)


@bp.get("/docs")
def docs() -> str:
    """Swagger UI, served from the app's own static files (works offline)."""
    return render_template("docs.html")
