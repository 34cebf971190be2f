"""Request and response shapes: they validate input and generate the OpenAPI document."""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from flask.blueprints import BlueprintSetupState
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema
from typing_extensions import TypeAliasType
from werkzeug.routing import BaseConverter

from app import defaults


@dataclass(frozen=True)
class Matches:
    """A string rule with a message a person can act on, stated in the OpenAPI document as the
    same `pattern`, so the document refuses exactly what the server refuses."""

    pattern: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        regex = re.compile(self.pattern)

        def check(value: str) -> str:
            if not regex.fullmatch(value):
                raise ValueError(self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "pattern": self.pattern}


@dataclass(frozen=True)
class DocumentedAs:
    """Document a value as `adapter`'s type, for a rule checked in Python that JSON Schema
    can only state as a type of its own (a recursive one, say)."""

    adapter: TypeAdapter[Any]

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.adapter.core_schema)


CHANNELS = ("in_app", "email", "sms", "push")
Channel = Literal["in_app", "email", "sms", "push"]
Priority = Literal["low", "normal", "high", "critical"]
WEBHOOK_EVENTS = ("notification.read", "delivery.sent", "delivery.failed")
WebhookEvent = Literal["notification.read", "delivery.sent", "delivery.failed"]

USER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
_USER_ID = re.compile(USER_ID_PATTERN)


def is_user_id(text: str) -> bool:
    """Whether `text` is a user id a request may name (the pattern `UserId` checks)."""
    return _USER_ID.fullmatch(text) is not None


UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,64}$")]
TEMPLATE_KEY_PATTERN = r"^[a-z0-9_.-]{1,64}$"
TemplateKey = Annotated[str, StringConstraints(pattern=TEMPLATE_KEY_PATTERN)]
IDEMPOTENCY_KEY_PATTERN = rf"^[\x20-\x7e]{{1,{defaults.IDEMPOTENCY_KEY_MAX_LENGTH}}}$"
Phone = Annotated[
    str, StringConstraints(pattern=r"^\+[1-9][0-9]{1,14}$"), Field(description="E.164")
]
Locale = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,6}$", max_length=35),
    Field(description="BCP 47 language tag, e.g. `de` or `pt-BR`"),
]


def _known_timezone(value: str) -> str:
    if value not in TIMEZONES:
        raise ValueError("not an IANA time zone name")
    return value


TIMEZONES = frozenset(available_timezones())
TIMEZONE_FORMAT = "iana-time-zone"
"""A JSON Schema format of our own: the ~600 names are too many for an `enum`, which every
client tool would unroll."""
Timezone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_known_timezone),
    Field(
        description="IANA time zone name, e.g. `Europe/Berlin`",
        json_schema_extra={"format": TIMEZONE_FORMAT},
    ),
]

# Any character but whitespace (Python's `\s` included) and control characters.
_URL_CHARACTER = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
HTTP_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://"
    # The authority in ASCII (international names in punycode): what every HTTP client and
    # push service takes as it is.
    r"[A-Za-z0-9._~%!$&'()*+,;=:@-]+"
    rf"(?:[/?#]{_URL_CHARACTER}*)?$"
)
HttpUrl = Annotated[
    str,
    StringConstraints(max_length=defaults.MAX_ACTION_URL_LENGTH),
    Matches(
        HTTP_URL_PATTERN,
        "must be an absolute http or https URL with an ASCII host (punycode for international "
        "names) and no whitespace or control characters",
    ),
]

# PostgreSQL cannot store U+0000 in text or JSONB; refuse it rather than fail on insert.
NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL_MESSAGE = "must not contain the NUL character (U+0000)"
NoNul = Matches(NO_NUL_PATTERN, NO_NUL_MESSAGE)


def _no_nul_inside(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(NO_NUL_MESSAGE)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul_inside(key)
            _no_nul_inside(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul_inside(item)


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        raise ValueError("must not contain NaN or infinite numbers") from error
    _no_nul_inside(value)
    size = len(text.encode())
    if size > defaults.MAX_DATA_BYTES:
        raise ValueError(f"must be at most {defaults.MAX_DATA_BYTES} bytes as JSON, not {size}")
    return value


_Text = Annotated[str, StringConstraints(pattern=NO_NUL_PATTERN)]
_JsonValue = TypeAliasType(
    "JsonValue", _Text | int | float | bool | list["_JsonValue"] | dict[_Text, "_JsonValue"] | None
)
Title = Annotated[str, StringConstraints(min_length=1, max_length=defaults.MAX_TITLE_LENGTH), NoNul]
Body = Annotated[str, StringConstraints(max_length=defaults.MAX_BODY_LENGTH), NoNul]
DataObject = Annotated[
    dict[str, Any],
    AfterValidator(_small_json),
    DocumentedAs(TypeAdapter(dict[_Text, _JsonValue])),
    Field(description=f"A JSON object of at most {defaults.MAX_DATA_BYTES:,} bytes as JSON."),
]

# Ids are bigints inside and opaque strings outside. Every id this pattern allows is one a
# row can have (below 10^18, far beyond any sequence); anything else is no id at all.
ID_PATTERN = r"^[1-9][0-9]{0,17}$"
IdText = Annotated[str, Matches(ID_PATTERN, "not a notification id")]


class IdConverter(BaseConverter):
    """`<id:name>`: a path segment that can be a row id. Other text matches no route, so
    `/me/notifications/read-all` is never taken for a notification (GET on it is 405)."""

    regex = ID_PATTERN.removeprefix("^").removesuffix("$")


def register_id_converter(state: BlueprintSetupState) -> None:
    """Make `<id:...>` known to the app; record it on a blueprint before its routes."""
    state.app.url_map.converters.setdefault("id", IdConverter)


OpaqueId = Annotated[str, BeforeValidator(lambda value: str(value))]


class Request(BaseModel):
    """A request body: unknown fields are refused so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Response(BaseModel):
    """A response body, built from ORM rows or dicts."""

    model_config = ConfigDict(from_attributes=True)


# Users


class UserFields(Request):
    """Contact details and settings of a recipient. Absent fields keep their value."""

    email: EmailStr | None = Field(
        default=None,
        description="An address that can receive mail: special-use domains (`.test`, "
        "`.localhost`, `.invalid`, ...) are refused.",
    )
    phone: Phone | None = None
    name: Annotated[str, StringConstraints(max_length=200), NoNul] | None = None
    locale: Locale | None = None
    timezone: Timezone | None = None


class Recipient(UserFields):
    """A recipient given inline: creates or updates that user."""

    user_id: UserId


class UserOut(Response):
    user_id: str = Field(validation_alias=AliasChoices("id", "user_id"))
    email: str | None
    phone: str | None
    name: str | None
    locale: str | None
    timezone: str | None
    created_at: datetime
    updated_at: datetime


def _integral(value: Any) -> Any:
    """3600.0 as 3600: JSON has one number type, and JSON Schema calls 3600.0 an integer."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class TokenRequest(Request):
    ttl_seconds: Annotated[int, BeforeValidator(_integral)] = Field(
        default=defaults.USER_TOKEN_TTL_SECONDS, ge=1, le=defaults.USER_TOKEN_MAX_TTL_SECONDS
    )


class TokenOut(Response):
    token: str
    expires_at: datetime


# Sending


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


_RECIPIENT = TypeAdapter(Recipient)


def _user_id_or_recipient(value: Any) -> str | Recipient:
    """A valid user id stays a string: most entries of a big send are, and a model for each
    was the slowest part of its validation. Anything else is validated as a recipient object,
    a string as `{"user_id": ...}`, so that a bad id's error names `user_id` as an object's
    does."""
    if isinstance(value, str) and is_user_id(value):
        return value
    return _RECIPIENT.validate_python(
        {"user_id": value} if isinstance(value, str) else value, strict=True
    )


RecipientEntry = Annotated[
    str | Recipient,
    PlainValidator(_user_id_or_recipient, json_schema_input_type=UserId | Recipient),
]
"""An entry of `to`: a user id, or a recipient object."""


def _document_recipients(schema: dict[str, Any]) -> None:
    """`to` is validated as a list of entries, but also accepts one entry: say so in the JSON
    Schema."""
    entry = schema["items"]
    schema_of_list = dict(schema)
    schema.clear()
    schema.update(
        anyOf=[*entry["anyOf"], schema_of_list],
        description=f"A user id, a recipient object, or a list of 1 to "
        f"{defaults.MAX_RECIPIENTS:,} of either.",
    )


OLDER_FORM = {"user_id": "to", "type": "channels", "message": "body", "payload": "data"}
NULL = {"type": "null"}


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with `null` no longer allowed (and no `null` default)."""
    result = {
        k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)
    }
    choices = [choice for choice in schema.get("anyOf", []) if choice != NULL]
    if len(choices) == 1:
        result |= choices[0]
    elif choices:
        result["anyOf"] = choices
    return result


def _send_forms(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The shapes a send may take, each closed to other fields: title and body; a template
    and its context; the older single-recipient form (whose own rules, the same as the first
    two, are left to the 422)."""
    current = {k: v for k, v in properties.items() if k not in OLDER_FORM}
    older = {k: v for k, v in properties.items() if k not in OLDER_FORM.values()}
    titled = current | {
        "title": without_null(current["title"]),
        "template": NULL,
        "context": {"type": "object", "maxProperties": 0},
    }
    templated = current | {
        "template": without_null(current["template"]),
        "title": NULL,
        "body": NULL,
    }
    older |= {name: without_null(older[name]) for name in ("user_id", "type", "payload")}

    def form(title: str, fields: dict[str, Any], required: str) -> dict[str, Any]:
        return {
            "title": title,
            "type": "object",
            "properties": fields,
            "required": ["to", required] if "to" in fields else [required],
            "additionalProperties": False,
        }

    return [
        form("With title and body", titled, "title"),
        form("With a template", templated, "template"),
        form("Older form", older, "user_id") | {"deprecated": True},
    ]


class SendRequest(Request):
    """POST /notifications. `to` names 1 to 10,000 recipients; each gets one notification."""

    to: Annotated[
        list[RecipientEntry],
        BeforeValidator(_as_list),
        Field(
            min_length=1,
            max_length=defaults.MAX_RECIPIENTS,
            json_schema_extra=_document_recipients,
        ),
    ]
    category: Category = defaults.DEFAULT_CATEGORY
    title: Title | None = Field(default=None, description="Required unless `template` is given.")
    body: Body | None = None
    template: TemplateKey | None = Field(
        default=None, description="Instead of title and body: render this template..."
    )
    context: DataObject = Field(default_factory=dict, description="...with these variables.")
    data: DataObject = Field(default_factory=dict)
    action_url: HttpUrl | None = None
    channels: list[Channel] = Field(
        default_factory=lambda: ["in_app"], min_length=1, json_schema_extra={"uniqueItems": True}
    )
    priority: Priority = "normal"
    user_id: UserId | None = Field(default=None, deprecated=True, description="Older form of `to`.")
    type: Channel | None = Field(
        default=None, deprecated=True, description="Older form of `channels: [type]`."
    )
    message: Body | None = Field(default=None, deprecated=True, description="Older form of `body`.")
    payload: DataObject | None = Field(
        default=None, deprecated=True, description="Older form of `data`."
    )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        reference = handler(schema)
        generated = handler.resolve_ref_schema(reference)
        properties = generated.pop("properties")
        for keyword in ("required", "additionalProperties", "type"):
            generated.pop(keyword, None)
        generated["anyOf"] = _send_forms(properties)
        return reference

    @property
    def user_ids(self) -> list[str]:
        """The user id of each entry of `to`, in order, repeats kept."""
        return [entry if isinstance(entry, str) else entry.user_id for entry in self.to]

    @model_validator(mode="before")
    @classmethod
    def _accept_older_form(cls, value: Any) -> Any:
        """Map `{user_id, type, message, payload}` onto the current fields. A body that mixes
        the two forms is left as it is, for the older fields' validator to refuse."""
        if not isinstance(value, dict) or not OLDER_FORM.keys() & value.keys():
            return value
        if set(OLDER_FORM.values()) & value.keys():
            return value
        mapped = {name: field for name, field in value.items() if name not in OLDER_FORM}
        for old, new in OLDER_FORM.items():
            if old in value:
                mapped[new] = [value[old]] if old == "type" else value[old]
        return mapped

    @field_validator(*OLDER_FORM, mode="before")
    @classmethod
    def _refuse_mixed_forms(cls, value: Any) -> Any:
        raise ValueError(
            "the older form (user_id, type, message, payload) cannot be mixed with "
            "to, channels, body or data"
        )

    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, channels: list[str]) -> list[str]:
        if len(set(channels)) != len(channels):
            raise ValueError("lists a channel twice")
        return channels


class SentNotification(Response):
    id: OpaqueId
    user_id: str


class SendResponse(Response):
    notifications: list[SentNotification]


class DeliveryOut(Response):
    channel: Channel
    status: Literal["queued", "sent", "failed", "skipped"]
    attempts: int
    last_error: str | None
    updated_at: datetime


class NotificationOut(Response):
    """The notification object: what the inbox lists and what Socket.IO pushes."""

    id: OpaqueId
    user_id: str
    category: str
    title: str
    body: str | None
    data: dict[str, Any]
    action_url: str | None
    priority: Priority
    created_at: datetime
    seen_at: datetime | None
    read_at: datetime | None
    archived_at: datetime | None


class NotificationDetail(NotificationOut):
    """A notification as its producer sees it: with every channel's delivery."""

    channels: list[Channel]
    deliveries: list[DeliveryOut]


# Inbox


class InboxQuery(BaseModel):
    """Query string of an inbox listing."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["all", "unread", "read"] = "all"
    archived: bool = False
    category: Category | None = None
    limit: int = Field(default=defaults.PAGE_SIZE_DEFAULT, ge=1, le=defaults.PAGE_SIZE_MAX)
    cursor: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="`next_cursor` of the previous page."
    )
    after: IdText | None = Field(
        default=None,
        description="A notification id: list what came after it, oldest first (catch-up).",
    )

    @model_validator(mode="after")
    def _cursor_or_after(self) -> "InboxQuery":
        if self.cursor is not None and self.after is not None:
            raise ValueError("give `cursor` or `after`, not both")
        return self


class InboxPage(Response):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class UnreadCount(Response):
    unread_count: int


class ReadAllRequest(Request):
    category: Category | None = None


class ReadAllResponse(Response):
    updated: int
    unread_count: int


class SeenRequest(Request):
    ids: list[IdText] = Field(min_length=1, max_length=defaults.SEEN_IDS_MAX)


class SeenResponse(Response):
    updated: int
    unread_count: int


class PreferencesUpdate(Request):
    """A partial update: named switches change, `null` resets one to the default (on)."""

    channels: dict[Channel, bool | None] = Field(default_factory=dict)
    categories: dict[Category, dict[Channel, bool | None]] = Field(default_factory=dict)


class PreferencesOut(Response):
    channels: dict[Channel, bool]
    categories: dict[str, dict[Channel, bool]]


class PushKeys(Request):
    p256dh: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_=-]{1,256}$")]
    auth: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_=-]{1,256}$")]


class PushSubscriptionIn(Request):
    """What the browser's `PushSubscription.toJSON()` gives."""

    endpoint: HttpUrl
    keys: PushKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's own field name


class PushSubscriptionOut(Response):
    endpoint: str
    keys: dict[str, str]
    created_at: datetime


class PushUnsubscribe(Request):
    endpoint: HttpUrl


class VapidKey(Response):
    key: str


# Webhooks


class WebhookIn(Request):
    url: HttpUrl
    events: list[WebhookEvent] = Field(min_length=1)


class WebhookOut(Response):
    id: OpaqueId
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signs each event; shown only here.")


class WebhookList(Response):
    webhooks: list[WebhookOut]


# Operations and errors


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(Response):
    status: Literal["ok"]


class Readiness(Response):
    status: Literal["ready"]
    checks: dict[str, str]


# Templates

Source = Annotated[
    str,
    StringConstraints(max_length=defaults.MAX_TEMPLATE_SOURCE_LENGTH),
    NoNul,
    Field(description="Jinja2 source."),
]


class InAppParts(Request):
    title: Source
    body: Source | None = None


class EmailParts(Request):
    subject: Source
    html: Source | None = Field(default=None, description="Autoescaped.")
    text: Source | None = None


class SmsParts(Request):
    text: Source


class PushParts(Request):
    title: Source
    body: Source | None = None


class TemplateChannels(Request):
    """The default parts, per channel."""

    in_app: InAppParts | None = None
    email: EmailParts | None = None
    sms: SmsParts | None = None
    push: PushParts | None = None


class InAppOverride(Request):
    title: Source | None = None
    body: Source | None = None


class EmailOverride(Request):
    subject: Source | None = None
    html: Source | None = None
    text: Source | None = None


class SmsOverride(Request):
    text: Source | None = None


class PushOverride(Request):
    title: Source | None = None
    body: Source | None = None


class TemplateOverrides(Request):
    """A locale's variant: only the parts it changes."""

    in_app: InAppOverride | None = None
    email: EmailOverride | None = None
    sms: SmsOverride | None = None
    push: PushOverride | None = None


class TemplateIn(Request):
    channels: TemplateChannels
    locales: dict[Locale, TemplateOverrides] = Field(default_factory=dict)


class TemplateOut(Response):
    key: str
    channels: dict[Channel, dict[str, str]]
    locales: dict[str, dict[Channel, dict[str, str]]]
    created_at: datetime
    updated_at: datetime


class TemplateList(Response):
    templates: list[TemplateOut]


class PreviewRequest(Request):
    context: DataObject = Field(default_factory=dict)
    locale: Locale | None = None


class Preview(Response):
    """What each channel would get."""

    in_app: dict[str, str] | None = None
    email: dict[str, str] | None = None
    sms: dict[str, str] | None = None
    push: dict[str, str] | None = None
