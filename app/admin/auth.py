"""Who may use the admin dashboard: an operator signed in with a live API key (a session
cookie), or a caller that sends one (`Authorization: Bearer`, JSON routes only).

A request that changes something on the strength of the cookie must also carry the
session's CSRF token and must not come from another origin. The session names the key by id
and every request looks the key up again, so revoking it ends the session.
"""

import hmac
import logging
import secrets
import time
from urllib.parse import urlsplit

from flask import Flask, Request, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from app import defaults
from app.api.auth import CHALLENGE, authenticate
from app.api.errors import ApiError
from app.extensions import db
from app.models import ApiKey
from app.services.credentials import VerifiedApiKey

log = logging.getLogger(__name__)
COOKIE_NAME = "notify_admin"
COOKIE_PATH = "/admin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY_ID = "admin_key_id"
_SIGNED_IN_AT = "admin_signed_in_at"
_CSRF = "admin_csrf"


class AdminSessionCookie(SecureCookieSessionInterface):
    """Flask's signed session cookie, which only the admin uses: its own name, sent to
    `/admin` only, hidden from scripts, never sent cross-site, and Secure when the request
    came over https (or always, with SESSION_COOKIE_SECURE)."""

    def get_cookie_name(self, app: Flask) -> str:
        return COOKIE_NAME

    def get_cookie_path(self, app: Flask) -> str:
        return COOKIE_PATH

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # The cookie is never sent outside /admin, so no other request (an API call, a
        # socket event) has one to read: Flask would still build the signing serializer
        # for each of them (7 % of the CPU of a socket connect in a profile). Nothing outside
        # /admin may write the session: the cookie it set would replace the admin's.
        if request.path != COOKIE_PATH and not request.path.startswith(f"{COOKIE_PATH}/"):
            return self.session_class()
        return super().open_session(app, request)


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the login form needs one too)."""
    return session.setdefault(_CSRF, secrets.token_urlsafe(32))


def _from_this_origin() -> bool:
    # Browsers send Origin with every POST; a request without one (a script) rests on the
    # token alone. An opaque origin ("null") is refused.
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def csrf_ok(token: str | None) -> bool:
    """True when `token` is this session's CSRF token and the request is not cross-origin."""
    expected = session.get(_CSRF)
    if not expected or not token or not _from_this_origin():
        return False
    return hmac.compare_digest(expected.encode(), token.encode())


def sign_in(key: VerifiedApiKey) -> None:
    """Start a fresh session for `key`, with a new CSRF token."""
    session.clear()
    session[_KEY_ID] = key.id
    session[_SIGNED_IN_AT] = time.time()
    session[_CSRF] = secrets.token_urlsafe(32)
    log.info("admin signed in with API key %s (%s)", key.id, key.name)


def sign_out() -> None:
    """End the session (the cookie is deleted with the response)."""
    session.clear()


def has_session() -> bool:
    """True when the request carries a signed-in session, live or not."""
    return _KEY_ID in session


def signed_in_key() -> ApiKey | None:
    """The live key this session signed in with. A session whose key was revoked or
    deleted, or that is older than ADMIN_SESSION_SECONDS, is ended: None."""
    key_id = session.get(_KEY_ID)
    if key_id is None:
        return None
    key = db.session.get(ApiKey, key_id)
    age = time.time() - session.get(_SIGNED_IN_AT, 0)
    if key is None or key.revoked_at is not None or age > defaults.ADMIN_SESSION_SECONDS:
        sign_out()
        return None
    return key


def require_operator() -> None:
    """Before every admin JSON route: a bearer API key, or a signed-in session (plus the
    CSRF token for anything but a read). Sets `g.api_key`; 401 or 403 in the contract's
    error shape otherwise."""
    if "Authorization" in request.headers:
        authenticate("api_key")
        return
    key = signed_in_key()
    if key is None:
        raise ApiError(
            401,
            "missing_credential",
            "sign in at /admin, or send `Authorization: Bearer <API key>`",
            headers=CHALLENGE,
        )
    if request.method not in SAFE_METHODS and not csrf_ok(request.headers.get(CSRF_HEADER)):
        raise ApiError(
            403,
            "csrf_failed",
            f"a signed-in change needs the dashboard's {CSRF_HEADER} header, from its own origin",
        )
    g.api_key = key
