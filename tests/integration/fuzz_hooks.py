"""Schemathesis hooks for `test_fuzz.py`, loaded by the fuzzer through SCHEMATHESIS_HOOKS."""

import hashlib

import schemathesis
from hypothesis import strategies as st
from pydantic import EmailStr, TypeAdapter, ValidationError
from schemathesis import Case
from schemathesis.hooks import HookContext

from app.api.schemas import TIMEZONE_FORMAT, TIMEZONES
from app.defaults import IDEMPOTENCY_KEY_MAX_LENGTH

IDEMPOTENCY_HEADER = "Idempotency-Key"
SUFFIX_LENGTH = 13
EMAIL = TypeAdapter(EmailStr)


def _deliverable(address: str) -> bool:
    """Whether the server takes this address (email-validator refuses special-use domains)."""
    try:
        EMAIL.validate_python(address)
    except ValidationError:
        return False
    return True


# Formats whose rule is the server's own, as the fields' descriptions say: the time zones it
# knows, and addresses that can receive mail.
schemathesis.openapi.format(TIMEZONE_FORMAT, st.sampled_from(sorted(TIMEZONES)))
schemathesis.openapi.format("email", st.emails().filter(_deliverable))


def _keyed_by_body(key: str, body: object) -> str:
    """`key` with a suffix of the body's digest, when the suffix cannot change its validity
    (an invalid key stays invalid, so the header is still fuzzed)."""
    if not key or key != key.strip() or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH - SUFFIX_LENGTH:
        return key
    digest = hashlib.sha256(repr(body).encode()).hexdigest()[: SUFFIX_LENGTH - 1]
    return f"{key}-{digest}"


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    """Give each send body its own idempotency keys. The fuzzer draws them from a small pool
    ("0", "A", ...), so nearly every send reused a key with another body and was a 409 before
    it reached the send path; now the same body and key replay, another body is a new send."""
    if case.headers and isinstance(case.headers.get(IDEMPOTENCY_HEADER), str):
        case.headers[IDEMPOTENCY_HEADER] = _keyed_by_body(
            case.headers[IDEMPOTENCY_HEADER], case.body
        )
    return case
