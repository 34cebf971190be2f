"""Who is calling: an API key (producer routes) or a user token (`/me` routes)."""

import re
from collections.abc import Callable
from typing import Literal

from flask import current_app, g, request

from app.api.errors import ApiError
from app.extensions import db
from app.services.credentials import (
    ExpiredToken,
    InvalidToken,
    looks_like_user_token,
    read_user_token,
    user_of_token,
    verify_api_key,
)

Credential = Literal["api_key", "user"]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="notify"'}


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers=CHALLENGE)


PRINTABLE_CREDENTIAL = re.compile(r"^[\x21-\x7e]{1,4096}$")


def _bearer_credential() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if not header:
        raise _unauthorized("missing_credential", "send `Authorization: Bearer <credential>`")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _unauthorized("invalid_credential", "the Authorization header must be `Bearer ...`")
    credential = credential.strip()
    if not PRINTABLE_CREDENTIAL.match(credential):
        raise _unauthorized("invalid_credential", "the credential is not valid")
    return credential


def _verified(check: Callable[[], str]) -> str:
    try:
        return check()
    except ExpiredToken as error:
        raise _unauthorized("token_expired", "the user token has expired") from error
    except InvalidToken as error:
        raise _unauthorized("invalid_credential", "the credential is not valid") from error


def authenticate(required: Credential) -> None:
    """Check the bearer credential for a route that needs `required`; set `g.api_key` or
    `g.user_id`. Raises 401 for no or bad credential and 403 for the wrong kind."""
    credential = _bearer_credential()
    is_token = looks_like_user_token(credential)
    secret = current_app.config["USER_TOKEN_SECRET"]
    if required == "api_key":
        if is_token:
            _verified(lambda: read_user_token(secret, credential).user_id)
            raise ApiError(403, "forbidden", "a user token cannot use producer routes")
        api_key = verify_api_key(
            db.session, credential, current_app.config["API_KEY_CACHE_SECONDS"]
        )
        if api_key is None:
            raise _unauthorized("invalid_credential", "the credential is not valid")
        g.api_key = api_key
        return
    if not is_token:
        if verify_api_key(db.session, credential) is not None:
            raise ApiError(403, "forbidden", "`/me` routes need a user token, not an API key")
        raise _unauthorized("invalid_credential", "the credential is not valid")
    g.user_id = _verified(lambda: user_of_token(db.session, secret, credential).user_id)
