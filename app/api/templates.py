"""Producer routes for templates: store, read, list, remove, preview."""

import re
from typing import Any

from flask import Blueprint, Response
from sqlalchemy import delete, select

from app.api import schemas
from app.api.errors import NotFound, validation_failed
from app.api.operation import operation
from app.api.responses import no_content, respond
from app.db import insert_for, utcnow
from app.extensions import db
from app.models import Template
from app.services.templates import (
    TemplateRenderError,
    missing_parts,
    render,
    syntax_errors,
)

bp = Blueprint("templates", __name__)
ERRORS = (401, 403)
BODY_ERRORS = (*ERRORS, 400, 413, 415, 422)


def _valid_key(key: str) -> str:
    if not re.fullmatch(schemas.TEMPLATE_KEY_PATTERN, key):
        raise validation_failed({"key": "1 to 64 of a-z 0-9 _ . -"})
    return key


def _possible_key(key: str) -> str:
    """`key` if a template can have it; 404 otherwise. Such a key never reaches the database,
    which would fail on some (PostgreSQL refuses a NUL)."""
    if not re.fullmatch(schemas.TEMPLATE_KEY_PATTERN, key):
        raise NotFound("template")
    return key


def _stored(key: str) -> Template:
    template = db.session.get(Template, _possible_key(key))
    if template is None:
        raise NotFound("template")
    return template


@bp.put("/templates/<key>")
@operation(
    "Create or update a template",
    tag="Templates",
    auth="api_key",
    body=schemas.TemplateIn,
    responses={200: schemas.TemplateOut, 201: schemas.TemplateOut},
    errors=BODY_ERRORS,
)
def put(key: str, body: schemas.TemplateIn) -> Response:
    """Jinja2, sandboxed. Every part must compile; a variable missing at send time is 422."""
    _valid_key(key)
    channels = body.channels.model_dump(exclude_none=True)
    locales: dict[str, Any] = {
        locale: variant.model_dump(exclude_none=True) for locale, variant in body.locales.items()
    }
    errors = syntax_errors(channels, "channels") | missing_parts(channels, locales)
    for locale, variant in locales.items():
        errors |= syntax_errors(variant, f"locales.{locale}")
    if errors:
        raise validation_failed(errors)
    now = utcnow()
    values = {"channels": channels, "locales": locales, "updated_at": now}
    insert = insert_for(db.session, Template.__table__)
    stored = db.session.execute(
        insert.values(key=key, created_at=now, **values)
        .on_conflict_do_update(index_elements=["key"], set_=values)
        .returning(Template.__table__.c.created_at)
    ).one()
    db.session.commit()
    return respond(schemas.TemplateOut, _stored(key), 201 if stored.created_at == now else 200)


@bp.get("/templates/<key>")
@operation(
    "Get a template",
    tag="Templates",
    auth="api_key",
    responses={200: schemas.TemplateOut},
    errors=(*ERRORS, 404),
)
def get(key: str) -> Response:
    return respond(schemas.TemplateOut, _stored(key))


@bp.get("/templates")
@operation(
    "List templates",
    tag="Templates",
    auth="api_key",
    responses={200: schemas.TemplateList},
    errors=ERRORS,
)
def list_all() -> Response:
    templates = db.session.scalars(select(Template).order_by(Template.key)).all()
    return respond(schemas.TemplateList, {"templates": templates})


@bp.delete("/templates/<key>")
@operation(
    "Remove a template",
    tag="Templates",
    auth="api_key",
    responses={204: None},
    errors=(*ERRORS, 404),
)
def remove(key: str) -> Response:
    removed = db.session.execute(delete(Template).where(Template.key == _possible_key(key)))
    if removed.rowcount == 0:
        raise NotFound("template")
    db.session.commit()
    return no_content()


@bp.post("/templates/<key>/preview")
@operation(
    "Preview a template",
    tag="Templates",
    auth="api_key",
    body=schemas.PreviewRequest,
    body_required=False,
    responses={200: schemas.Preview},
    errors=(*BODY_ERRORS, 404),
)
def preview(key: str, body: schemas.PreviewRequest) -> Response:
    """What each channel would get for this context and locale; 422 names the part that
    fails (a missing variable, a sandbox violation, an oversized result)."""
    try:
        rendered = render(_stored(key), body.locale, body.context)
    except TemplateRenderError as error:
        raise validation_failed({error.field: error.message}) from error
    return respond(schemas.Preview, rendered)
