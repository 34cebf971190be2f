"""The admin dashboard's pages (`/admin`: sign in, the dashboard, sign out) and the JSON it
polls (`/admin/api/...`). None of it is in the OpenAPI document: these are operators'
tools, not the public API."""

import logging

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState

from app import defaults
from app.admin import schemas
from app.admin.auth import (
    CSRF_FIELD,
    AdminSessionCookie,
    csrf_ok,
    csrf_token,
    has_session,
    require_operator,
    sign_in,
    sign_out,
    signed_in_key,
)
from app.api.errors import ApiError
from app.api.operation import read_body, read_query
from app.api.responses import respond
from app.db import utcnow
from app.extensions import db
from app.jobs.deliveries import retry_failed
from app.jobs.queue import job_queue
from app.realtime.presence import connected_sockets
from app.services.credentials import verify_api_key
from app.services.dashboard import delivery_stats, failed_deliveries

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")
api = Blueprint("api", __name__, url_prefix="/api")
REFRESH_CHOICES = (2, 5, 10, 30, 0)
"""Seconds between refreshes the page offers (0: paused)."""
REFRESH_DEFAULT = 5
"""Seconds between refreshes until the operator picks another."""
WINDOW_CHOICES = (6, 24, 72, 168)
"""Windows, in hours, the page offers."""


@bp.record_once
def _use_admin_session_cookie(state: BlueprintSetupState) -> None:
    state.app.session_interface = AdminSessionCookie()


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    # Under the app's `no-referrer` Chromium sends `Origin: null` with a same-origin form POST
    # (sign in, sign out), which the CSRF check must refuse; `same-origin` keeps the real
    # Origin there and still sends nothing to other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _login_page(error: str | None, status: int) -> tuple[str, int]:
    return render_template("admin_login.html", error=error, csrf_token=csrf_token()), status


@bp.get("", strict_slashes=False)
def dashboard() -> str | tuple[str, int]:
    """The dashboard when signed in, else the sign-in form."""
    had_session = has_session()
    key = signed_in_key()
    if key is None:
        ended = "Your session ended; sign in again." if had_session else None
        return _login_page(ended, 200)
    return render_template(
        "admin.html",
        key=key,
        csrf_token=csrf_token(),
        window_choices=WINDOW_CHOICES,
        window_default=defaults.DASHBOARD_WINDOW_HOURS,
        refresh_choices=REFRESH_CHOICES,
        refresh_default=REFRESH_DEFAULT,
    )


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    """Sign in with an API key pasted into the form."""
    if not csrf_ok(request.form.get(CSRF_FIELD)):
        return _login_page("The form expired or came from another site; try again.", 403)
    key = verify_api_key(db.session, request.form.get("key", "").strip())
    if key is None:
        # Whatever was wrong with it (unknown, revoked, malformed), the answer is the same.
        log.warning("admin sign-in refused (request %s)", g.get("request_id", "-"))
        return _login_page("Invalid key.", 401)
    sign_in(key)
    return redirect(url_for(".dashboard"), 303)


@bp.post("/logout")
def logout() -> Response:
    """Sign out."""
    if not csrf_ok(request.form.get(CSRF_FIELD)):
        raise ApiError(403, "csrf_failed", "sign out from the dashboard itself")
    sign_out()
    return redirect(url_for(".dashboard"), 303)


api.before_request(require_operator)


@api.get("/stats")
def stats() -> Response:
    """Sends, outcomes, p95 delivery times and top errors over the last `hours` hours."""
    query = read_query(schemas.WindowQuery)
    result = delivery_stats(db.session, utcnow(), query.hours, defaults.DASHBOARD_TOP_ERRORS)
    return respond(schemas.Stats, result)


@api.get("/live")
def live() -> Response:
    """Jobs waiting in each queue, scheduled and failed, and sockets connected right now."""
    return respond(
        schemas.Live,
        {
            "at": utcnow(),
            "connected_sockets": connected_sockets(),
            "queues": job_queue().depths(),
        },
    )


@api.get("/failed")
def failed() -> Response:
    """The most recently failed deliveries, newest first, and how many failed in all."""
    query = read_query(schemas.FailedQuery)
    items, total = failed_deliveries(db.session, query.limit)
    return respond(schemas.FailedList, {"items": items, "total": total})


@api.post("/failed/retry")
def retry() -> Response:
    """Queue failed deliveries again (these ids, or all) with a fresh set of tries, as
    `flask deliveries retry` does. Ids that are no longer failed are left alone."""
    body = read_body(schemas.RetryRequest, required=True)
    ids = None if body.all else [int(text) for text in body.ids or []]
    requeued = retry_failed(ids)
    log.info("admin queued %s failed deliveries again (key %s)", len(requeued), g.api_key.id)
    return respond(schemas.RetryResponse, {"requeued": requeued})


bp.register_blueprint(api)
