"""Producer webhook endpoints: register, list, remove."""

import secrets

from flask import Blueprint, Response
from sqlalchemy import delete, select

from app.api import schemas
from app.api.errors import NotFound
from app.api.operation import operation
from app.api.responses import no_content, respond
from app.db import parse_id, utcnow
from app.extensions import db
from app.models import Webhook

bp = Blueprint("webhooks", __name__)
bp.record_once(schemas.register_id_converter)


@bp.post("/webhooks")
@operation(
    "Register a webhook",
    tag="Webhooks",
    auth="api_key",
    body=schemas.WebhookIn,
    responses={201: schemas.WebhookCreated},
    errors=(400, 401, 403, 413, 415, 422),
)
def create(body: schemas.WebhookIn) -> Response:
    """Each event is POSTed with `Notify-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
    "<t>.<raw body>")>`. The secret is shown only in this response."""
    webhook = Webhook(
        url=body.url,
        events=list(dict.fromkeys(body.events)),
        secret=secrets.token_hex(32),
        created_at=utcnow(),
    )
    db.session.add(webhook)
    db.session.commit()
    return respond(schemas.WebhookCreated, webhook, 201)


@bp.get("/webhooks")
@operation(
    "List webhooks",
    tag="Webhooks",
    auth="api_key",
    responses={200: schemas.WebhookList},
    errors=(401, 403),
)
def list_all() -> Response:
    webhooks = db.session.scalars(select(Webhook).order_by(Webhook.id)).all()
    return respond(schemas.WebhookList, {"webhooks": webhooks})


@bp.delete("/webhooks/<id:webhook_id>")
@operation(
    "Remove a webhook",
    tag="Webhooks",
    auth="api_key",
    responses={204: None},
    errors=(401, 403, 404),
)
def remove(webhook_id: str) -> Response:
    row_id = parse_id(webhook_id)
    removed = (
        db.session.execute(delete(Webhook).where(Webhook.id == row_id)).rowcount
        if row_id is not None
        else 0
    )
    if removed == 0:
        raise NotFound("webhook")
    db.session.commit()
    return no_content()
