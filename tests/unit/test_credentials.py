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
    assert read_user_token(SECRET, token.token) == "ana@example.com"
    assert abs(token.expires_at.timestamp() - (time.time() + 60)) < 5
    assert looks_like_user_token(token.token)


def test_expired_token_is_refused():
    token = mint_user_token(SECRET, "ana", -1)
    with pytest.raises(ExpiredToken):
        read_user_token(SECRET, token.token)


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(
            {"sub": "ana", "exp": time.time() + 60, "aud": defaults.USER_TOKEN_AUDIENCE},
            "another-secret-0123456789-0123456789",
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "ana", "exp": time.time() + 60, "aud": "someone-else"},
            SECRET,
            algorithm="HS256",
        ),
        jwt.encode({"sub": "ana", "aud": defaults.USER_TOKEN_AUDIENCE}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "", "exp": time.time() + 60, "aud": defaults.USER_TOKEN_AUDIENCE},
            SECRET,
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "ana", "exp": time.time() + 60, "aud": defaults.USER_TOKEN_AUDIENCE},
            None,
            algorithm="none",
        ),
        "a.b.c",
    ],
    ids=["other-secret", "other-audience", "no-expiry", "empty-subject", "alg-none", "garbage"],
)
def test_foreign_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        read_user_token(SECRET, token)


def test_api_keys_do_not_look_like_tokens():
    assert not looks_like_user_token("nk_0123456789ab_secret-part")
