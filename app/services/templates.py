"""Rendering templates: Jinja2 in a sandbox with StrictUndefined, HTML parts autoescaped and
the others not, every rendered part capped in length."""

from collections.abc import Mapping
from contextvars import ContextVar
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
REQUIRED_PARTS = {"in_app": "title", "email": "subject", "sms": "text", "push": "title"}
_LOOPS_LEFT: ContextVar[int] = ContextVar("template_loops_left", default=0)


def _budgeted_range(*args: int) -> range:
    """`range`, counted against the loops one part may run in all (nested loops included)."""
    numbers = range(*args)
    left = _LOOPS_LEFT.get() - len(numbers)
    if left < 0:
        raise SecurityError(f"a template may loop at most {defaults.TEMPLATE_LOOP_BUDGET} times")
    _LOOPS_LEFT.set(left)
    return numbers


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, also refusing arithmetic that builds huge values (`9 ** 9999999`,
    `'a' * 10 ** 9`); intercepting these operators also stops Jinja folding them at compile
    time, where they would run before any check."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=StrictUndefined, **options)
        self.globals["range"] = _budgeted_range

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sizes = [abs(v) for v in (left, right) if isinstance(v, int | float)]
        if operator == "**" and sizes and sizes[-1] > 64:
            raise SecurityError(f"{operator} with an operand over 64")
        repeats = operator == "*" and any(isinstance(v, str | list | tuple) for v in (left, right))
        if repeats and max(sizes or [0]) > defaults.MAX_BODY_LENGTH:
            raise SecurityError("repeating a value that many times")
        return super().call_binop(context, operator, left, right)


_TEXT = _Sandbox(autoescape=False)
_HTML = _Sandbox(autoescape=True)


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
    except (RecursionError, MemoryError, ValueError, TypeError, ArithmeticError) as error:
        raise TemplateRenderError(field, f"template cannot compile: {error!r}") from error


def missing_parts(
    channels: Mapping[str, Mapping[str, str]], locales: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Locale variants that add a channel without the part it cannot do without."""
    errors: dict[str, str] = {}
    for locale, variant in locales.items():
        for channel, fields in variant.items():
            required = REQUIRED_PARTS[channel]
            if required not in fields and required not in channels.get(channel, {}):
                errors[f"locales.{locale}.{channel}.{required}"] = (
                    "required: the template has no default for this channel"
                )
    return errors


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
            _LOOPS_LEFT.set(defaults.TEMPLATE_LOOP_BUDGET)
            try:
                output = _capped(compiled, context, limit)
            except UndefinedError as error:
                raise TemplateRenderError(field, f"missing variable: {error.message}") from error
            except SecurityError as error:
                raise TemplateRenderError(field, f"not allowed in a template: {error}") from error
            except Exception as error:
                # Whatever the template does wrong with its data (1 / 0, a bad format, endless
                # recursion) is the template's error, a 422, never a 500.
                raise TemplateRenderError(field, f"cannot render: {error!r}") from error
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
