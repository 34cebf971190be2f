"""Shapes of the admin JSON routes (operators' tools, not the public contract)."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app import defaults
from app.api.schemas import OpaqueId, Request, Response
from app.db import parse_id


class WindowQuery(BaseModel):
    """Query string of `/admin/api/stats`."""

    model_config = ConfigDict(extra="forbid")

    hours: int = Field(
        default=defaults.DASHBOARD_WINDOW_HOURS, ge=1, le=defaults.DASHBOARD_MAX_WINDOW_HOURS
    )


class FailedQuery(BaseModel):
    """Query string of `/admin/api/failed`."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=defaults.DASHBOARD_FAILED_MAX, ge=1, le=defaults.DASHBOARD_FAILED_MAX
    )


def _delivery_id(value: str) -> str:
    if parse_id(value) is None:
        raise ValueError("not a delivery id")
    return value


DeliveryId = Annotated[str, AfterValidator(_delivery_id)]


class RetryRequest(Request):
    """Which failed deliveries to queue again: these `ids`, or `all` of them."""

    ids: list[DeliveryId] | None = Field(
        default=None, min_length=1, max_length=defaults.DASHBOARD_FAILED_MAX
    )
    all: bool = False

    @model_validator(mode="after")
    def _ids_or_all(self) -> "RetryRequest":
        if (self.ids is None) == (not self.all):
            raise ValueError("give either `ids` or `all: true`")
        return self


class Totals(Response):
    sends: int
    sent: int
    failed: int
    queued: int
    skipped: int
    success_rate: float | None
    failure_rate: float | None
    p95_seconds: float | None


class ChannelHours(Response):
    sends: list[int]
    sent: list[int]
    failed: list[int]
    success_rate: list[float | None]
    p95_seconds: list[float | None]
    totals: Totals


class InAppHours(Response):
    sends: list[int]
    total: int


class ErrorCount(Response):
    error: str | None
    count: int


class Stats(Response):
    """Hour by hour, oldest first: `hours` are the UTC hours the lists are aligned with."""

    since: datetime
    until: datetime
    hours: list[datetime]
    in_app: InAppHours
    channels: dict[str, ChannelHours]
    deliveries: Totals
    top_errors: list[ErrorCount]


class QueueDepths(Response):
    waiting: dict[str, int]
    scheduled: int
    failed: int


class Live(Response):
    at: datetime
    connected_sockets: int
    queues: QueueDepths


class FailedDelivery(Response):
    id: OpaqueId
    notification_id: OpaqueId
    user_id: str
    channel: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class FailedList(Response):
    items: list[FailedDelivery]
    total: int


class RetryResponse(Response):
    requeued: list[OpaqueId]
