"""Idempotency-Key: the first response to a (key, body) is replayed for 24 hours.

The record is inserted in the same transaction as the work it guards. On Postgres a second
request with the same key blocks on the unique index until the first commits, then replays
it, so concurrent duplicates create exactly one result.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import defaults
from app.db import insert_for
from app.models import IdempotencyRecord


@dataclass(frozen=True)
class StoredResponse:
    """The first response given for a key."""

    status: int
    body: dict[str, Any]


class IdempotencyConflict(Exception):
    """The key was used before with a different body."""


def fingerprint(raw_body: bytes) -> str:
    """A hash of the body that ignores key order and whitespace."""
    canonical = json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(
    session: Session, api_key_id: int, key: str, request_hash: str, now: datetime
) -> StoredResponse | None:
    """Claim `key` for this request: None if the caller should do the work (then call
    `record`), else the stored first response. Raises `IdempotencyConflict`."""
    cutoff = now - timedelta(seconds=defaults.IDEMPOTENCY_TTL_SECONDS)
    identity = (IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
    session.execute(
        delete(IdempotencyRecord).where(*identity, IdempotencyRecord.created_at < cutoff)
    )
    inserted = session.execute(
        insert_for(session, IdempotencyRecord.__table__)
        .values(api_key_id=api_key_id, key=key, request_hash=request_hash, created_at=now)
        .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
    )
    if inserted.rowcount == 1:
        return None
    existing = session.execute(
        select(
            IdempotencyRecord.request_hash,
            IdempotencyRecord.response_status,
            IdempotencyRecord.response_body,
        ).where(*identity)
    ).one()
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(key)
    return StoredResponse(status=existing.response_status, body=existing.response_body)


def record(session: Session, api_key_id: int, key: str, status: int, body: dict[str, Any]) -> None:
    """Store the response to replay for a claimed key."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
        .values(response_status=status, response_body=body)
    )
