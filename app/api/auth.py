"""Who is calling: an API key (producer routes) or a user token (`/me` routes)."""

from typing import Literal

from flask import current_app, g, request
from sqlalchemy import select

from app.api.errors import ApiError
from app.extensions import db
from app.models import User
from app.services.credentials import (
    ExpiredToken,
    InvalidToken,
    looks_like_user_token,
    read_user_token,
    verify_api_key,
)

Credential = Literal["api_key", "user"]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="notify"'}


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers=CHALLENGE)


def _bearer_credential() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if not header:
        raise _unauthorized("missing_credential", "send `Authorization: Bearer <credential>`")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _unauthorized("invalid_credential", "the Authorization header must be `Bearer ...`")
    return credential.strip()


def _user_from_token(credential: str) -> str:
    try:
        return read_user_token(current_app.config["USER_TOKEN_SECRET"], credential)
    except ExpiredToken as error:
        raise _unauthorized("token_expired", "the user token has expired") from error
    except InvalidToken as error:
        raise _unauthorized("invalid_credential", "the credential is not valid") from error


def authenticate(required: Credential) -> None:
    """Check the bearer credential for a route that needs `required`; set `g.api_key` or
    `g.user_id`. Raises 401 for no or bad credential and 403 for the wrong kind."""
    credential = _bearer_credential()
    is_token = looks_like_user_token(credential)
    if required == "api_key":
        if is_token:
            _user_from_token(credential)
            raise ApiError(403, "forbidden", "a user token cannot use producer routes")
        api_key = verify_api_key(db.session, credential)
        if api_key is None:
            raise _unauthorized("invalid_credential", "the credential is not valid")
        g.api_key = api_key
        return
    if not is_token:
        if verify_api_key(db.session, credential) is not None:
            raise ApiError(403, "forbidden", "`/me` routes need a user token, not an API key")
        raise _unauthorized("invalid_credential", "the credential is not valid")
    user_id = _user_from_token(credential)
    # A token outlives an erased user; it must not act for a user that no longer exists.
    if db.session.scalar(select(User.id).where(User.id == user_id)) is None:
        raise _unauthorized("invalid_credential", "the token's user no longer exists")
    g.user_id = user_id
