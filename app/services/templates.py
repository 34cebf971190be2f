"""Rendering templates: Jinja2 in a sandbox with StrictUndefined, HTML parts autoescaped and
the others not, every rendered part capped in length."""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2 import Template as CompiledTemplate
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from app import defaults
from app.models import Template

PARTS = {
    "in_app": ("title", "body"),
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "push": ("title", "body"),
}
RENDERED_LIMITS = {
    ("in_app", "title"): defaults.MAX_TITLE_LENGTH,
    ("in_app", "body"): defaults.MAX_BODY_LENGTH,
    ("email", "subject"): 998,
    ("email", "html"): 200_000,
    ("email", "text"): 100_000,
    ("sms", "text"): 1_600,
    ("push", "title"): defaults.MAX_TITLE_LENGTH,
    ("push", "body"): 1_000,
}
_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateRenderError(ValueError):
    """A part failed to compile or render; `field` names it (`channels.email.html`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> CompiledTemplate:
    return (_HTML if html else _TEXT).from_string(source)


def _compile(field: str, source: str, html: bool) -> CompiledTemplate:
    try:
        return _compiled(source, html)
    except TemplateError as error:
        line = f" at line {error.lineno}" if getattr(error, "lineno", None) else ""
        raise TemplateRenderError(field, f"template syntax error{line}: {error.message}") from error


def syntax_errors(parts: Mapping[str, Mapping[str, str | None]], prefix: str) -> dict[str, str]:
    """Every part that does not compile, as `{"<prefix>.<channel>.<part>": "why"}`."""
    errors: dict[str, str] = {}
    for channel, fields in parts.items():
        for part, source in fields.items():
            if source is None:
                continue
            field = f"{prefix}.{channel}.{part}"
            try:
                _compile(field, source, html=part == "html")
            except TemplateRenderError as error:
                errors[field] = error.message
    return errors


def render(
    template: Template, locale: str | None, context: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """Every part of the template for `locale`, rendered with `context`. Raises
    `TemplateRenderError` for a missing variable, a sandbox violation or an oversized part."""
    rendered: dict[str, dict[str, str]] = {}
    for channel, fields in template.parts_for(locale).items():
        for part, source in fields.items():
            if source is None:
                continue
            field = f"channels.{channel}.{part}"
            limit = RENDERED_LIMITS[(channel, part)]
            compiled = _compile(field, source, html=part == "html")
            try:
                output = _capped(compiled, context, limit)
            except UndefinedError as error:
                raise TemplateRenderError(field, f"missing variable: {error.message}") from error
            except SecurityError as error:
                raise TemplateRenderError(field, f"not allowed in a template: {error}") from error
            except TemplateError as error:
                raise TemplateRenderError(field, f"cannot render: {error}") from error
            if output is None:
                raise TemplateRenderError(field, f"renders longer than {limit} characters")
            rendered.setdefault(channel, {})[part] = output
    return rendered


def _capped(compiled: CompiledTemplate, context: dict[str, Any], limit: int) -> str | None:
    """The output, or None as soon as it grows past `limit` (rendering stops there)."""
    pieces: list[str] = []
    length = 0
    for piece in compiled.generate(context):
        length += len(piece)
        if length > limit:
            return None
        pieces.append(piece)
    return "".join(pieces)
