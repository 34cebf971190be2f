"""Producer routes for recipients: upsert, read, erase, mint user tokens, list their inbox."""

from flask import Blueprint, Response, current_app

from app.api import schemas
from app.api.errors import NotFound, validation_failed
from app.api.inbox import inbox_page
from app.api.operation import operation
from app.api.responses import no_content, respond
from app.db import utcnow
from app.extensions import db
from app.models import User
from app.realtime import events
from app.services.credentials import mint_user_token
from app.services.users import erase_user, put_user, user_exists

bp = Blueprint("users", __name__)
USER_ERRORS = (401, 403, 404)


def _valid_user_id(user_id: str) -> str:
    if not schemas.is_user_id(user_id):
        raise validation_failed({"user_id": "1 to 128 of A-Z a-z 0-9 _ . : @ -"})
    return user_id


def _existing_user_id(user_id: str) -> str:
    """The id of a stored user; 404 otherwise (an id no user can have included)."""
    if not schemas.is_user_id(user_id) or not user_exists(db.session, user_id):
        raise NotFound("user")
    return user_id


@bp.put("/users/<user_id>")
@operation(
    "Create or update a user",
    tag="Users",
    auth="api_key",
    body=schemas.UserFields,
    body_required=False,
    responses={200: schemas.UserOut, 201: schemas.UserOut},
    errors=(400, 401, 403, 413, 415, 422),
)
def put(user_id: str, body: schemas.UserFields) -> Response:
    """Fields left out keep their value; `null` clears one. 201 when created, 200 when updated."""
    created = put_user(
        db.session,
        _valid_user_id(user_id),
        body.model_dump(include=body.model_fields_set),
        utcnow(),
    )
    db.session.commit()
    return respond(schemas.UserOut, db.session.get(User, user_id), 201 if created else 200)


@bp.get("/users/<user_id>")
@operation(
    "Get a user", tag="Users", auth="api_key", responses={200: schemas.UserOut}, errors=USER_ERRORS
)
def get(user_id: str) -> Response:
    return respond(schemas.UserOut, db.session.get(User, _existing_user_id(user_id)))


@bp.delete("/users/<user_id>")
@operation("Erase a user", tag="Users", auth="api_key", responses={204: None}, errors=USER_ERRORS)
def delete(user_id: str) -> Response:
    """Erases the user and all of their notifications, deliveries, preferences and push
    subscriptions."""
    erase_user(db.session, _existing_user_id(user_id))
    db.session.commit()
    events.after_commit(events.forget_user, user_id)
    return no_content()


@bp.post("/users/<user_id>/tokens")
@operation(
    "Mint a user token",
    tag="Users",
    auth="api_key",
    body=schemas.TokenRequest,
    body_required=False,
    responses={201: schemas.TokenOut},
    errors=(400, 401, 403, 404, 413, 415, 422),
)
def mint_token(user_id: str, body: schemas.TokenRequest) -> Response:
    """A signed token that lets a browser act as this user on `/me` routes and the socket."""
    _existing_user_id(user_id)
    token = mint_user_token(current_app.config["USER_TOKEN_SECRET"], user_id, body.ttl_seconds)
    return respond(schemas.TokenOut, token, 201)


@bp.get("/users/<user_id>/notifications")
@operation(
    "List a user's notifications",
    tag="Users",
    auth="api_key",
    query=schemas.InboxQuery,
    responses={200: schemas.InboxPage},
    errors=(*USER_ERRORS, 422),
)
def list_notifications(user_id: str, query: schemas.InboxQuery) -> Response:
    """The same listing the user sees at `GET /me/notifications`."""
    return inbox_page(_existing_user_id(user_id), query)
