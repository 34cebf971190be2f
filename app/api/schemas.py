"""Request and response shapes: they validate input and generate the OpenAPI document."""

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app import defaults
from app.db import parse_id

CHANNELS = ("in_app", "email", "sms", "push")
Channel = Literal["in_app", "email", "sms", "push"]
Priority = Literal["low", "normal", "high", "critical"]
WEBHOOK_EVENTS = ("notification.read", "delivery.sent", "delivery.failed")
WebhookEvent = Literal["notification.read", "delivery.sent", "delivery.failed"]

USER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,64}$")]
TEMPLATE_KEY_PATTERN = r"^[a-z0-9_.-]{1,64}$"
TemplateKey = Annotated[str, StringConstraints(pattern=TEMPLATE_KEY_PATTERN)]
Phone = Annotated[
    str, StringConstraints(pattern=r"^\+[1-9][0-9]{1,14}$"), Field(description="E.164")
]
Locale = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,6}$", max_length=35),
    Field(description="BCP 47 language tag, e.g. `de` or `pt-BR`"),
]


def _known_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError("not an IANA time zone name")
    return value


_TIMEZONES = frozenset(available_timezones())
Timezone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_known_timezone),
    Field(description="IANA time zone, e.g. `Europe/Berlin`"),
]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http or https URL")
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ValueError("must not contain whitespace or control characters")
    return value


HttpUrl = Annotated[
    str, StringConstraints(max_length=defaults.MAX_ACTION_URL_LENGTH), AfterValidator(_http_url)
]


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text or JSONB; refuse it rather than fail on insert.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


def _no_nul_inside(value: Any) -> None:
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
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


Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=defaults.MAX_TITLE_LENGTH),
    AfterValidator(_no_nul),
]
Body = Annotated[
    str, StringConstraints(max_length=defaults.MAX_BODY_LENGTH), AfterValidator(_no_nul)
]
DataObject = Annotated[dict[str, Any], AfterValidator(_small_json)]


def _row_id(value: str) -> str:
    if parse_id(value) is None:
        raise ValueError("not a notification id")
    return value


# Ids are bigints inside and opaque strings outside.
IdText = Annotated[str, StringConstraints(max_length=19), AfterValidator(_row_id)]
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

    email: EmailStr | None = None
    phone: Phone | None = None
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)] | None = None
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


class TokenRequest(Request):
    ttl_seconds: int = Field(
        default=defaults.USER_TOKEN_TTL_SECONDS, ge=1, le=defaults.USER_TOKEN_MAX_TTL_SECONDS
    )


class TokenOut(Response):
    token: str
    expires_at: datetime


# Sending


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _as_recipient(value: Any) -> Any:
    return {"user_id": value} if isinstance(value, str) else value


def _document_recipients(schema: dict[str, Any]) -> None:
    """`to` is validated as a list of recipient objects, but also accepts one user id, one
    object, or ids among the objects: say so in the JSON Schema."""
    user_id = {"type": "string", "pattern": USER_ID_PATTERN}
    recipient = schema["items"]
    array = {**schema, "items": {"anyOf": [user_id, recipient]}}
    schema.clear()
    schema.update(
        anyOf=[user_id, recipient, array],
        description=f"A user id, a recipient object, or a list of 1 to "
        f"{defaults.MAX_RECIPIENTS:,} of either.",
    )


OLDER_FORM = {"user_id": "to", "type": "channels", "message": "body", "payload": "data"}


class SendRequest(Request):
    """POST /notifications. `to` names 1 to 10,000 recipients; each gets one notification."""

    to: Annotated[
        list[Annotated[Recipient, BeforeValidator(_as_recipient)]],
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
    channels: list[Channel] = Field(default_factory=lambda: ["in_app"], min_length=1)
    priority: Priority = "normal"
    user_id: UserId | None = Field(default=None, deprecated=True, description="Older form of `to`.")
    type: Channel | None = Field(
        default=None, deprecated=True, description="Older form of `channels: [type]`."
    )
    message: Body | None = Field(default=None, deprecated=True, description="Older form of `body`.")
    payload: DataObject | None = Field(
        default=None, deprecated=True, description="Older form of `data`."
    )

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
    AfterValidator(_no_nul),
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
