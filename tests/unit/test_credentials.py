"""User tokens: signed, expiring, for one audience."""

import time

import jwt
import pytest

from app import defaults
from app.services.credentials import (
    ExpiredToken,
    InvalidToken,
    looks_like_user_token,
    mint_user_token,
    read_user_token,
)

SECRET = "unit-test-secret-0123456789-0123456789"


def test_round_trip_names_the_user_and_expiry():
    token = mint_user_token(SECRET, "ana@example.com", 60)
    verified = read_user_token(SECRET, token.token)
    assert verified.user_id == "ana@example.com"
    assert abs(verified.issued_at.timestamp() - time.time()) < 5
    assert abs(token.expires_at.timestamp() - (time.time() + 60)) < 5
    assert looks_like_user_token(token.token)


def test_expired_token_is_refused():
    token = mint_user_token(SECRET, "ana", -1)
    with pytest.raises(ExpiredToken):
        read_user_token(SECRET, token.token)


def _claims(**changes):
    claims = {
        "sub": "ana",
        "exp": time.time() + 60,
        "iat": time.time(),
        "aud": defaults.USER_TOKEN_AUDIENCE,
    } | changes
    return {key: value for key, value in claims.items() if value is not None}


OTHER_SECRET = "another-secret-0123456789-0123456789"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(_claims(), OTHER_SECRET, algorithm="HS256"),
        jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"),
        jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
        jwt.encode(_claims(iat=None), SECRET, algorithm="HS256"),
        jwt.encode(_claims(sub=""), SECRET, algorithm="HS256"),
        jwt.encode(_claims(), None, algorithm="none"),
        "a.b.c",
    ],
    ids=[
        "other-secret",
        "other-audience",
        "no-expiry",
        "no-issued-at",
        "empty-subject",
        "alg-none",
        "garbage",
    ],
)
def test_foreign_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        read_user_token(SECRET, token)


def test_api_keys_do_not_look_like_tokens():
    assert not looks_like_user_token("nk_0123456789ab_secret-part")
