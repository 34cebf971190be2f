"""API keys (random, stored as SHA-256) and user tokens (signed JWTs naming one user)."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from app import defaults
from app.db import utcnow
from app.models import ApiKey, User

LOOKUP_LENGTH = 12
ALGORITHM = "HS256"


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key: `secret` is shown once and never stored."""

    record: ApiKey
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, name: str) -> NewApiKey:
    """Add a key named `name`; the caller commits and shows `secret` once."""
    lookup = secrets.token_hex(LOOKUP_LENGTH // 2)
    secret = f"{defaults.API_KEY_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    record = ApiKey(name=name, lookup=lookup, key_hash=_hash(secret))
    session.add(record)
    session.flush()
    return NewApiKey(record=record, secret=secret)


@dataclass(frozen=True)
class VerifiedApiKey:
    """A live API key, as a request needs it."""

    id: int
    name: str


# Keys this process verified lately, by the hash of their secret: (monotonic time, key).
_recently_verified: dict[str, tuple[float, VerifiedApiKey]] = {}
RECENTLY_VERIFIED_LIMIT = 10_000


def verify_api_key(
    session: Session, secret: str, reuse_seconds: float = 0
) -> VerifiedApiKey | None:
    """The live key that `secret` is, or None. The hash comparison takes constant time.

    A key this process verified less than `reuse_seconds` ago is not read again (a send would
    otherwise spend a round trip on it): a key revoked by another process stops working here
    within that time, one revoked by this process at once."""
    if not secret.startswith(defaults.API_KEY_PREFIX):
        return None
    digest = _hash(secret)
    recent = _recently_verified.get(digest)
    if recent is not None and time.monotonic() - recent[0] < reuse_seconds:
        return recent[1]
    lookup = secret[len(defaults.API_KEY_PREFIX) :].split("_", 1)[0]
    record = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.key_hash).where(
            ApiKey.lookup == lookup, ApiKey.revoked_at.is_(None)
        )
    ).first()
    if record is None or not hmac.compare_digest(record.key_hash, digest):
        _recently_verified.pop(digest, None)
        return None
    verified = VerifiedApiKey(record.id, record.name)
    if len(_recently_verified) >= RECENTLY_VERIFIED_LIMIT:
        _recently_verified.clear()
    _recently_verified[digest] = (time.monotonic(), verified)
    return verified


def revoke_api_key(session: Session, key_id_or_name: str) -> list[ApiKey]:
    """Revoke the live key with this id, or every live key with this name; returns them."""
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    if key_id_or_name.isdigit():
        query = query.where(ApiKey.id == int(key_id_or_name))
    else:
        query = query.where(ApiKey.name == key_id_or_name)
    revoked = list(session.scalars(query))
    now = utcnow()
    for record in revoked:
        record.revoked_at = now
    _recently_verified.clear()
    return revoked


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, live and revoked, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


@dataclass(frozen=True)
class UserToken:
    """A signed token for one user, and when it stops working."""

    token: str
    expires_at: datetime


class InvalidToken(Exception):
    """The token is not one of ours, was tampered with, or names no user."""


class ExpiredToken(InvalidToken):
    """The token was ours but its time is up."""


def mint_user_token(secret: str, user_id: str, ttl_seconds: int) -> UserToken:
    """A token granting `/me` and the socket of `user_id` for `ttl_seconds`."""
    now = utcnow()
    expires_at = now.replace(microsecond=0) + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": user_id,
        "aud": defaults.USER_TOKEN_AUDIENCE,
        # To the microsecond, so a token can be told apart from a user re-created later.
        "iat": now.timestamp(),
        "exp": int(expires_at.timestamp()),
    }
    return UserToken(token=jwt.encode(claims, secret, algorithm=ALGORITHM), expires_at=expires_at)


@dataclass(frozen=True)
class VerifiedToken:
    """What a valid user token says: whom it names, when it was minted, until when it holds."""

    user_id: str
    issued_at: datetime
    expires_at: datetime


def read_user_token(secret: str, token: str) -> VerifiedToken:
    """What a valid token says. Raises `ExpiredToken` or `InvalidToken`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=defaults.USER_TOKEN_AUDIENCE,
            options={"require": ["sub", "exp", "aud", "iat"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise ExpiredToken("the token has expired") from error
    except jwt.PyJWTError as error:
        raise InvalidToken("the token is not valid") from error
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("the token names no user")
    return VerifiedToken(
        subject,
        datetime.fromtimestamp(claims["iat"], UTC),
        datetime.fromtimestamp(claims["exp"], UTC),
    )


# Built once: a socket connect spent more on building this statement than on running it.
_CREATED_AT = select(User.created_at).where(User.id == bindparam("user_id"))


def user_of_token(session: Session | Connection, secret: str, token: str) -> VerifiedToken:
    """The stored user a valid token names. A token minted before that user was created
    (the id was erased and used again) names someone else: `InvalidToken`. Reads through a
    session, or a connection where nothing unflushed could matter (half the CPU)."""
    verified = read_user_token(secret, token)
    created_at = session.scalar(_CREATED_AT, {"user_id": verified.user_id})
    if created_at is None:
        raise InvalidToken("the token's user does not exist")
    # Both times come from the web processes' clocks, which must agree (NTP).
    if verified.issued_at < created_at:
        raise InvalidToken("the token was minted before this user was created")
    return verified


def looks_like_user_token(credential: str) -> bool:
    """True for a credential shaped like a JWT (three dot-separated parts)."""
    return credential.count(".") == 2
