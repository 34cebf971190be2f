"""The naive build's app: models over the product's tables, the send route, the job."""

import hashlib
import logging
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from flask_mail import Mail, Message
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from rq import Queue
from sqlalchemy import JSON, BigInteger, DateTime, String, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, mapped_column

log = logging.getLogger(__name__)
db = SQLAlchemy()
socketio = SocketIO()
mail = Mail()


class ApiKey(db.Model):
    """A producer's key: only what the check reads."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class User(db.Model):
    """A recipient and the addresses its channels need."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))


class Notification(db.Model):
    """One message to one user, as the inbox lists it."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    action_url: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(8))
    in_app: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def to_dict(self) -> dict[str, Any]:
        """The notification object of the API."""
        return {
            "id": str(self.id),
            "user_id": self.user_id,
            "category": self.category,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "action_url": self.action_url,
            "priority": self.priority,
            **{
                name: moment.isoformat() if (moment := getattr(self, name)) else None
                for name in ("created_at", "seen_at", "read_at", "archived_at")
            },
        }


class Delivery(db.Model):
    """One channel's delivery of a notification."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    notification_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def create_app(async_mode: str) -> Flask:
    """The app on DATABASE_URL and REDIS_URL; MAIL_SERVER, when set, sends the emails."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    app.config["MAIL_SERVER"] = os.environ.get("MAIL_SERVER")
    app.config["MAIL_PORT"] = int(os.environ.get("MAIL_PORT", "25"))
    app.config["MAIL_DEFAULT_SENDER"] = "notify@localhost"
    db.init_app(app)
    mail.init_app(app)
    socketio.init_app(app, async_mode=async_mode, message_queue=os.environ["REDIS_URL"])
    app.extensions["rq"] = Queue(connection=Redis.from_url(os.environ["REDIS_URL"]))
    app.add_url_rule("/notifications", view_func=send, methods=["POST"])
    app.add_url_rule("/healthz", view_func=lambda: {"status": "ok"})
    return app


def error(status: int, code: str, message: str) -> tuple[Response, int]:
    """An error answer in the API's shape."""
    return jsonify(error={"code": code, "message": message}), status


def send() -> tuple[Response, int]:
    """One notification per recipient, committed once; then the events and the jobs."""
    credential = request.headers.get("Authorization", "").removeprefix("Bearer ")
    key_hash = hashlib.sha256(credential.encode()).hexdigest()
    api_key = db.session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    if api_key is None:
        return error(401, "invalid_credential", "the credential is not valid")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("to") or not body.get("title"):
        return error(422, "validation_failed", "`to` and `title` are required")
    recipients = body["to"] if isinstance(body["to"], list) else [body["to"]]
    channels = body.get("channels", ["in_app"])
    sent: list[Notification] = []
    deliveries: list[Delivery] = []
    for recipient in recipients:
        fields = dict(recipient) if isinstance(recipient, dict) else {"user_id": recipient}
        user_id = fields.pop("user_id")
        contact = {name: fields[name] for name in ("email", "phone") if name in fields}
        upsert = insert(User).values(id=user_id, **contact)
        if contact:
            upsert = upsert.on_conflict_do_update(index_elements=["id"], set_=contact)
        else:
            upsert = upsert.on_conflict_do_nothing(index_elements=["id"])
        db.session.execute(upsert)
        notification = Notification(
            user_id=user_id,
            category=body.get("category", "general"),
            title=body["title"],
            body=body.get("body"),
            data=body.get("data", {}),
            action_url=body.get("action_url"),
            priority=body.get("priority", "normal"),
            in_app="in_app" in channels,
        )
        db.session.add(notification)
        db.session.flush()
        for channel in channels:
            if channel != "in_app":
                delivery = Delivery(
                    notification_id=notification.id, channel=channel, status="queued"
                )
                db.session.add(delivery)
                deliveries.append(delivery)
        sent.append(notification)
    db.session.commit()
    for notification in sent:
        if notification.in_app:
            room = f"user:{notification.user_id}"
            socketio.emit("notification", notification.to_dict(), to=room)
            count = unread_count(notification.user_id)
            socketio.emit("unread_count", {"unread_count": count}, to=room)
    for delivery in deliveries:
        current_app.extensions["rq"].enqueue(deliver, delivery.id)
    answer = [{"id": str(n.id), "user_id": n.user_id} for n in sent]
    return jsonify(notifications=answer), 201


def unread_count(user_id: str) -> int:
    """The user's notifications that are in the inbox, unread and not archived."""
    return db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.in_app,
            Notification.read_at.is_(None),
            Notification.archived_at.is_(None),
        )
    )


def deliver(delivery_id: int) -> None:
    """The job: send one delivery and record it. An email goes over SMTP when MAIL_SERVER is
    set; without one, and for SMS and push, a log line stands for it. A user without an email
    or phone is skipped for that channel."""
    delivery = db.session.get(Delivery, delivery_id)
    notification = db.session.get(Notification, delivery.notification_id)
    user = db.session.get(User, notification.user_id)
    address = {"email": user.email, "sms": user.phone}.get(delivery.channel, user.id)
    if not address:
        delivery.status = "skipped"
    elif delivery.channel == "email" and current_app.config["MAIL_SERVER"]:
        mail.send(Message(notification.title, recipients=[address], body=notification.body or ""))
        delivery.status = "sent"
    else:
        log.info("%s to %s: %s", delivery.channel, address, notification.title)
        delivery.status = "sent"
    now = datetime.now(UTC)
    delivery.attempts += 1
    delivery.sent_at = now if delivery.status == "sent" else None
    delivery.updated_at = now
    db.session.commit()
