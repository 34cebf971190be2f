"""The OpenAPI 3.1 document, built from the `@operation` declarations, and Swagger UI."""

import re
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api import schemas
from app.api.operation import Operation

bp = Blueprint("docs", __name__)
REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY = {"api_key": "apiKey", "user": "userToken"}
PATH_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "user_id": {"type": "string", "pattern": schemas.USER_ID_PATTERN},
}


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


def build_openapi(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI document for the routes registered on `app`."""
    operations = _operations(app)
    models: set[tuple[type[BaseModel], str]] = {(schemas.ErrorResponse, "serialization")}
    for *_, spec, _ in operations:
        models.update((m, "serialization") for m in spec.responses.values() if m is not None)
        if spec.body is not None:
            models.add((spec.body, "validation"))
    refs, definitions = models_json_schema(
        sorted(models, key=lambda item: (item[0].__name__, item[1])), ref_template=REF_TEMPLATE
    )
    error_ref = refs[(schemas.ErrorResponse, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint, spec, arguments in operations:
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
            query_schema = spec.query.model_json_schema(ref_template=REF_TEMPLATE)
            for name, field_schema in query_schema["properties"].items():
                parameter_schema = {k: v for k, v in field_schema.items() if k != "description"}
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in query_schema.get("required", []),
                        "description": field_schema.get("description", ""),
                        "schema": parameter_schema,
                    }
                )
        parameters += [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": text,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
            for name, text in spec.headers.items()
        ]
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
        responses["default"] = {"description": "Error", "content": _json_content(error_ref)}
        operation: dict[str, Any] = {
            "operationId": endpoint,
            "summary": spec.summary,
            "tags": [spec.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if spec.description:
            operation["description"] = " ".join(spec.description.split())
        if spec.body is not None:
            operation["requestBody"] = {
                "required": spec.body_required,
                "content": _json_content(refs[(spec.body, "validation")]),
            }
        operation["security"] = [{SECURITY[spec.auth]: []}] if spec.auth else []
        paths.setdefault(path, {})[method] = operation

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
