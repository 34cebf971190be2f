"""What the admin dashboard shows, read from the database: sends, outcomes and delivery times
hour by hour and channel by channel over a window, the most common errors of failed
deliveries, and the failed deliveries themselves. Read only.

Hours are whole UTC hours; the window ends with the current, unfinished one. Deliveries
count in the hour they were created (sent), so a delivery that was retried for an hour still
counts in the hour it was sent from. Skipped deliveries (opted out, no address) are not
sends. Delivery time is `sent_at - created_at`: queueing and every retry included.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, extract, func, select, tuple_
from sqlalchemy.orm import Session

from app.api.schemas import CHANNELS
from app.models import Delivery, Notification

HOUR_SECONDS = 3600
PERCENTILE = 0.95
DELIVERY_CHANNELS = tuple(channel for channel in CHANNELS if channel != "in_app")
STATUSES = ("sent", "failed", "queued", "skipped")


@dataclass(frozen=True)
class Totals:
    """Deliveries of one channel (or of all) over the whole window, by status."""

    sent: int = 0
    failed: int = 0
    queued: int = 0
    skipped: int = 0
    p95_seconds: float | None = None

    @property
    def sends(self) -> int:
        """Deliveries that were to go out: all but the skipped ones."""
        return self.sent + self.failed + self.queued

    @property
    def success_rate(self) -> float | None:
        """Sent among the settled (sent or failed); None while none has settled."""
        return rate(self.sent, self.sent + self.failed)

    @property
    def failure_rate(self) -> float | None:
        """Failed among the settled (sent or failed); None while none has settled."""
        return rate(self.failed, self.sent + self.failed)


@dataclass(frozen=True)
class ChannelHours:
    """One delivery channel: deliveries by status and p95 delivery time, hour by hour
    (oldest first), and its totals."""

    by_status: dict[str, list[int]]
    p95_seconds: list[float | None]
    totals: Totals

    @property
    def sent(self) -> list[int]:
        return self.by_status["sent"]

    @property
    def failed(self) -> list[int]:
        return self.by_status["failed"]

    @property
    def sends(self) -> list[int]:
        """Each hour's deliveries that were to go out: all but the skipped ones."""
        counts = self.by_status
        return [
            sum(hour)
            for hour in zip(counts["sent"], counts["failed"], counts["queued"], strict=True)
        ]

    @property
    def success_rate(self) -> list[float | None]:
        """Each hour's sent among its settled (sent or failed) deliveries."""
        return [
            rate(sent, sent + failed) for sent, failed in zip(self.sent, self.failed, strict=True)
        ]


@dataclass(frozen=True)
class InAppHours:
    """In-app notifications made, hour by hour (oldest first)."""

    sends: list[int]

    @property
    def total(self) -> int:
        return sum(self.sends)


@dataclass(frozen=True)
class ErrorCount:
    """One `last_error` text and how many failed deliveries ended with it."""

    error: str | None
    count: int


@dataclass(frozen=True)
class Stats:
    """Everything the dashboard charts for one window."""

    since: datetime
    until: datetime
    hours: list[datetime]
    in_app: InAppHours
    channels: dict[str, ChannelHours]
    deliveries: Totals
    top_errors: list[ErrorCount]


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery that failed for good, and whom it was for."""

    id: int
    notification_id: int
    user_id: str
    channel: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


def rate(part: int, whole: int) -> float | None:
    """`part / whole`, or None when there is nothing to divide."""
    return part / whole if whole else None


def percentile(values: list[float], fraction: float) -> float | None:
    """The `fraction` percentile with linear interpolation between the closest ranks, as
    Postgres's `percentile_cont` computes it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def window_start(now: datetime, hours: int) -> datetime:
    """The start of the oldest of `hours` whole UTC hours that end with the current one."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return current - timedelta(hours=hours - 1)


def _hour_number(session: Session, column: ColumnElement) -> ColumnElement[int]:
    """Whole hours since the Unix epoch of a timestamp column, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column) / HOUR_SECONDS), BigInteger)
    # SQLite keeps UTC text; strftime('%s') reads it as UTC.
    return cast(func.strftime("%s", column), Integer) // HOUR_SECONDS


def delivery_stats(session: Session, now: datetime, hours: int, top_errors: int) -> Stats:
    """The window of `hours` whole hours ending with the current one: in-app sends, and for
    each delivery channel its sends, sent, failed and p95 delivery time, hour by hour; the
    totals; and the `top_errors` most common errors of deliveries that failed in it."""
    since = window_start(now, hours)
    first_hour = int(since.timestamp()) // HOUR_SECONDS

    def slot(hour_number: int) -> int | None:
        # A row stamped by a clock ahead of ours lands after the window: left out.
        index = hour_number - first_hour
        return index if 0 <= index < hours else None

    in_app = [0] * hours
    notification_hour = _hour_number(session, Notification.created_at).label("hour")
    for hour_number, count in session.execute(
        select(notification_hour, func.count())
        .where(Notification.in_app, Notification.created_at >= since)
        .group_by(notification_hour)
    ):
        if (index := slot(hour_number)) is not None:
            in_app[index] += count

    by_status = {
        channel: {status: [0] * hours for status in STATUSES} for channel in DELIVERY_CHANNELS
    }
    delivery_hour = _hour_number(session, Delivery.created_at).label("hour")
    for hour_number, channel, status, count in session.execute(
        select(delivery_hour, Delivery.channel, Delivery.status, func.count())
        .where(Delivery.created_at >= since)
        .group_by(delivery_hour, Delivery.channel, Delivery.status)
    ):
        counts = by_status.get(channel, {}).get(status)
        if counts is not None and (index := slot(hour_number)) is not None:
            counts[index] += count

    p95_by_hour: dict[str, list[float | None]] = {c: [None] * hours for c in DELIVERY_CHANNELS}
    hourly_p95, channel_p95, overall_p95 = _p95(session, since, delivery_hour)
    for (channel, hour_number), seconds in hourly_p95.items():
        if channel in p95_by_hour and (index := slot(hour_number)) is not None:
            p95_by_hour[channel][index] = seconds

    channels = {
        channel: ChannelHours(
            by_status=by_status[channel],
            p95_seconds=p95_by_hour[channel],
            totals=Totals(
                **{status: sum(counts) for status, counts in by_status[channel].items()},
                p95_seconds=channel_p95.get(channel),
            ),
        )
        for channel in DELIVERY_CHANNELS
    }
    return Stats(
        since=since,
        until=now,
        hours=[since + timedelta(hours=index) for index in range(hours)],
        in_app=InAppHours(in_app),
        channels=channels,
        deliveries=Totals(
            sent=sum(c.totals.sent for c in channels.values()),
            failed=sum(c.totals.failed for c in channels.values()),
            queued=sum(c.totals.queued for c in channels.values()),
            skipped=sum(c.totals.skipped for c in channels.values()),
            p95_seconds=overall_p95,
        ),
        top_errors=_top_errors(session, since, top_errors),
    )


P95ByHour = dict[tuple[str, int], float]


def _p95(
    session: Session, since: datetime, hour: ColumnElement[int]
) -> tuple[P95ByHour, dict[str, float], float | None]:
    """p95 delivery time of the window's sent deliveries: by (channel, hour), by channel,
    and over all of them."""
    sent = (Delivery.status == "sent", Delivery.created_at >= since, Delivery.sent_at.isnot(None))
    if session.get_bind().dialect.name == "postgresql":
        seconds = extract("epoch", Delivery.sent_at - Delivery.created_at)
        p95 = func.percentile_cont(PERCENTILE).within_group(seconds)
        # One pass for all three levels; a NULL key is the level above.
        rows = session.execute(
            select(Delivery.channel, hour, p95)
            .where(*sent)
            .group_by(
                func.grouping_sets(
                    tuple_(Delivery.channel, hour), tuple_(Delivery.channel), tuple_()
                )
            )
        ).all()
        by_hour = {(c, h): v for c, h, v in rows if c is not None and h is not None}
        by_channel = {c: v for c, h, v in rows if c is not None and h is None}
        # With no rows at all, the grand total is still one row, of NULL.
        overall = next((v for c, h, v in rows if c is None and h is None), None)
        return by_hour, by_channel, overall
    # SQLite has no percentile function: the durations come to Python.
    durations: dict[tuple[str, int], list[float]] = defaultdict(list)
    for channel, hour_number, created_at, sent_at in session.execute(
        select(Delivery.channel, hour, Delivery.created_at, Delivery.sent_at).where(*sent)
    ):
        durations[channel, hour_number].append((sent_at - created_at).total_seconds())
    per_channel: dict[str, list[float]] = defaultdict(list)
    for (channel, _), values in durations.items():
        per_channel[channel].extend(values)
    return (
        {key: percentile(values, PERCENTILE) for key, values in durations.items()},
        {channel: percentile(values, PERCENTILE) for channel, values in per_channel.items()},
        percentile([v for values in per_channel.values() for v in values], PERCENTILE),
    )


def _top_errors(session: Session, since: datetime, limit: int) -> list[ErrorCount]:
    count = func.count().label("count")
    rows = session.execute(
        select(Delivery.last_error, count)
        .where(Delivery.status == "failed", Delivery.updated_at >= since)
        .group_by(Delivery.last_error)
        .order_by(count.desc(), Delivery.last_error)
        .limit(limit)
    )
    return [ErrorCount(error, count) for error, count in rows]


def failed_deliveries(session: Session, limit: int) -> tuple[list[FailedDelivery], int]:
    """The `limit` most recently failed deliveries, newest first, and how many there are."""
    rows = session.execute(
        select(Delivery, Notification.user_id)
        .join(Notification, Delivery.notification_id == Notification.id)
        .where(Delivery.status == "failed")
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    items = [
        FailedDelivery(
            id=delivery.id,
            notification_id=delivery.notification_id,
            user_id=user_id,
            channel=delivery.channel,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )
        for delivery, user_id in rows
    ]
    total = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.status == "failed")
    )
    return items, total
