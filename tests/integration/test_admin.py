"""The admin dashboard: signing in with an API key, the session and its CSRF protection, the
numbers it shows (on rows with known times), and retrying failed deliveries."""

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import flask
import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import event, func, select, text

from app import defaults
from app.db import utcnow
from app.extensions import db
from app.jobs.deliveries import deliver
from app.models import Delivery, Notification, User
from app.services import dashboard
from app.services.credentials import revoke_api_key
from tests.conftest import REDIS_URL, assert_error

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
# The window of 24 hours ending with NOW's hour starts at 13:00 the day before.
SINCE = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
ROUTES = [
    ("get", "/admin/api/stats"),
    ("get", "/admin/api/live"),
    ("get", "/admin/api/failed"),
    ("post", "/admin/api/failed/retry"),
]
SMTP_ERROR = "SMTP 550: 'mailbox unavailable'"
TWILIO_ERROR = "HTTP 400 from https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
PUSH_ERROR = "push failed for every subscription: HTTP 410"


def _hidden_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _sign_in(client, key: str):
    form = client.get("/admin").get_data(as_text=True)
    return client.post(
        "/admin/login",
        data={"key": key, "csrf_token": _hidden_token(form)},
        headers={"Origin": "http://localhost"},
    )


def _page_token(client) -> str:
    page = client.get("/admin").get_data(as_text=True)
    return re.search(r'data-csrf-token="([^"]+)"', page).group(1)


def _set_cookie(response) -> str:
    [cookie] = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    return cookie


def _failed_email(app, created_at: datetime, error: str = SMTP_ERROR) -> int:
    """A failed email delivery to a user who has an address; its id."""
    with app.app_context():
        db.session.merge(User(id="ana", email="ana@example.com"))
        # No relationship tells the unit of work that the user goes first.
        db.session.flush()
        notification = Notification(
            user_id="ana",
            category="general",
            title="Hello",
            data={},
            priority="normal",
            in_app=False,
            created_at=created_at,
        )
        db.session.add(notification)
        db.session.flush()
        delivery = Delivery(
            notification_id=notification.id,
            channel="email",
            status="failed",
            attempts=5,
            last_error=error,
            created_at=created_at,
            updated_at=created_at + timedelta(seconds=30),
        )
        db.session.add(delivery)
        db.session.commit()
        return delivery.id


# Signing in and out


def test_signed_out_the_page_is_a_sign_in_form_and_the_cookie_is_strict(app, client):
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'action="/admin/login"' in html
    assert 'type="password" name="key"' in html
    assert "data-stats-url" not in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    cookie = _set_cookie(page)
    assert cookie.startswith("notify_admin=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie
    over_https = app.test_client().get("/admin", base_url="https://localhost")
    assert "Secure" in _set_cookie(over_https)


def test_sign_in_with_a_key_then_sign_out(client, api_key):
    signed_in = _sign_in(client, api_key)
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/admin"
    page = client.get("/admin").get_data(as_text=True)
    assert "Key <strong>tests</strong>" in page
    assert 'data-stats-url="/admin/api/stats"' in page
    assert '<script type="module" src="/static/admin.js">' in page
    assert client.get("/admin/api/stats").status_code == 200

    token = _page_token(client)
    signed_out = client.post(
        "/admin/logout", data={"csrf_token": token}, headers={"Origin": "http://localhost"}
    )
    assert signed_out.status_code == 303
    assert 'name="key"' in client.get("/admin").get_data(as_text=True)
    assert_error(client.get("/admin/api/stats"), 401, "missing_credential")


def test_the_session_cookie_is_read_under_admin_only(app, client, api_key):
    _sign_in(client, api_key)
    cookie = client.get_cookie("notify_admin", path="/admin")
    header = {"Cookie": f"notify_admin={cookie.value}"}
    with app.test_request_context("/admin/api/stats", headers=header):
        assert dict(flask.session)
    for path in ("/notifications", "/socket.io/", "/administrator"):
        with app.test_request_context(path, headers=header):
            assert dict(flask.session) == {}


def test_a_wrong_key_gets_the_same_answer_whatever_is_wrong_and_is_never_logged(
    app, client, api_key, caplog
):
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        revoke_api_key(db.session, "tests")
        db.session.commit()
    lookalike = api_key[:-4] + "AAAA"
    answers = []
    for wrong in (api_key, lookalike, "nk_000000000000_x", "not a key", ""):
        response = _sign_in(client, wrong)
        assert response.status_code == 401
        html = response.get_data(as_text=True)
        assert "Invalid key." in html
        if wrong:
            assert wrong not in html
        answers.append(html.replace(_hidden_token(html), ""))
    assert len(set(answers)) == 1
    assert api_key not in caplog.text
    assert lookalike not in caplog.text
    assert "admin sign-in refused" in caplog.text
    assert client.get("/admin/api/stats").status_code == 401


def test_revoking_the_key_ends_its_sessions(app, client, api_key):
    assert _sign_in(client, api_key).status_code == 303
    assert client.get("/admin/api/failed").status_code == 200
    with app.app_context():
        revoke_api_key(db.session, "tests")
        db.session.commit()
    assert_error(client.get("/admin/api/failed"), 401, "missing_credential")
    page = client.get("/admin").get_data(as_text=True)
    assert 'name="key"' in page
    # The session was cleared by the refused request; the form does not claim one ended.
    assert "Your session ended" not in page


def test_a_revoked_key_on_the_page_says_the_session_ended(app, client, api_key):
    assert _sign_in(client, api_key).status_code == 303
    with app.app_context():
        revoke_api_key(db.session, "tests")
        db.session.commit()
    page = client.get("/admin").get_data(as_text=True)
    assert "Your session ended; sign in again." in page
    assert "data-stats-url" not in page


def test_a_session_lasts_only_so_long(client, api_key, monkeypatch):
    assert _sign_in(client, api_key).status_code == 303
    assert client.get("/admin/").status_code == 200
    monkeypatch.setattr(defaults, "ADMIN_SESSION_SECONDS", -1)
    assert_error(client.get("/admin/api/stats"), 401, "missing_credential")


# Credentials and CSRF on the JSON routes


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_json_routes_refuse_a_missing_or_wrong_credential(client, user_client, method, path):
    call = getattr(client, method)
    missing = assert_error(call(path, json={"all": True}), 401, "missing_credential")
    assert "/admin" in missing["message"]
    wrong = call(path, json={"all": True}, headers={"Authorization": "Bearer nk_nope_nope"})
    assert_error(wrong, 401, "invalid_credential")
    user = user_client("ana")
    assert_error(getattr(user, method)(path, json={"all": True}), 403, "forbidden")


def test_a_bearer_api_key_works_without_a_session_or_csrf(producer):
    assert producer.get("/admin/api/stats").status_code == 200
    assert producer.get("/admin/api/live").status_code == 200
    assert producer.get("/admin/api/failed").status_code == 200
    retried = producer.post("/admin/api/failed/retry", json={"all": True})
    assert retried.status_code == 200
    assert retried.get_json() == {"requeued": []}


def test_a_signed_in_change_needs_the_csrf_token_from_this_origin(app, client, api_key):
    delivery_id = _failed_email(app, utcnow() - timedelta(minutes=5))
    assert _sign_in(client, api_key).status_code == 303
    token = _page_token(client)
    body = {"ids": [str(delivery_id)]}
    refusals = [
        {},
        {"X-CSRF-Token": "forged"},
        {"X-CSRF-Token": token, "Origin": "https://evil.example"},
        {"X-CSRF-Token": token, "Origin": "null"},
    ]
    for headers in refusals:
        response = client.post("/admin/api/failed/retry", json=body, headers=headers)
        assert_error(response, 403, "csrf_failed")
    with app.app_context():
        assert db.session.get(Delivery, delivery_id).status == "failed"
    allowed = client.post(
        "/admin/api/failed/retry",
        json=body,
        headers={"X-CSRF-Token": token, "Origin": "http://localhost"},
    )
    assert allowed.status_code == 200
    assert allowed.get_json() == {"requeued": [str(delivery_id)]}


def test_sign_in_and_out_forms_need_their_token_and_this_origin(client, api_key):
    form = client.get("/admin").get_data(as_text=True)
    token = _hidden_token(form)
    for data, origin in (
        ({"key": api_key}, "http://localhost"),
        ({"key": api_key, "csrf_token": "forged"}, "http://localhost"),
        ({"key": api_key, "csrf_token": token}, "https://evil.example"),
    ):
        refused = client.post("/admin/login", data=data, headers={"Origin": origin})
        assert refused.status_code == 403
        assert "came from another site" in refused.get_data(as_text=True)
    assert client.get("/admin/api/stats").status_code == 401

    assert _sign_in(client, api_key).status_code == 303
    assert_error(client.post("/admin/logout", data={"csrf_token": token}), 403, "csrf_failed")
    assert client.get("/admin/api/stats").status_code == 200


def test_admin_routes_stay_out_of_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert not [path for path in paths if path.startswith("/admin")]


# The numbers


def _seed_window(app) -> None:
    """Rows at known times around the window SINCE..NOW (see the expectations below)."""
    with app.app_context():
        db.session.add(User(id="ana", email="ana@example.com"))
        db.session.flush()

        def notification(created_at: datetime, in_app: bool = False) -> int:
            row = Notification(
                user_id="ana",
                category="general",
                title="t",
                data={},
                priority="normal",
                in_app=in_app,
                created_at=created_at,
            )
            db.session.add(row)
            db.session.flush()
            return row.id

        def delivery(channel, status, created_at, seconds=None, error=None, updated_at=None):
            db.session.add(
                Delivery(
                    notification_id=notification(created_at),
                    channel=channel,
                    status=status,
                    attempts=1,
                    last_error=error,
                    created_at=created_at,
                    updated_at=updated_at or created_at,
                    sent_at=created_at + timedelta(seconds=seconds) if seconds else None,
                )
            )

        # In-app: two in the first hour, three in the current one; the rest do not count.
        for created_at in (
            SINCE,
            SINCE + timedelta(minutes=59, seconds=59),
            NOW - timedelta(minutes=25),
            NOW - timedelta(minutes=20),
            NOW - timedelta(seconds=1),
        ):
            notification(created_at, in_app=True)
        notification(SINCE - timedelta(seconds=1), in_app=True)
        notification(NOW + timedelta(hours=1), in_app=True)
        notification(NOW - timedelta(minutes=5), in_app=False)

        # Email at 09:xx (index 20): 20 sent in 1..20 s, 2 failed, 1 queued, 1 skipped.
        nine = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
        for second in range(1, 21):
            delivery("email", "sent", nine + timedelta(minutes=second), seconds=second)
        for minute in (30, 31):
            delivery("email", "failed", nine + timedelta(minutes=minute), error=SMTP_ERROR)
        delivery("email", "queued", nine + timedelta(minutes=40))
        delivery("email", "skipped", nine + timedelta(minutes=41), error="opted out")
        # SMS at 10:xx (index 21): sent in 2 s and 4 s, 3 failed.
        ten = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
        delivery("sms", "sent", ten, seconds=2)
        delivery("sms", "sent", ten + timedelta(minutes=1), seconds=4)
        for minute in (2, 3, 4):
            delivery("sms", "failed", ten + timedelta(minutes=minute), error=TWILIO_ERROR)
        # Push at 11:xx (index 22): one sent in half a second, one failed.
        eleven = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
        delivery("push", "sent", eleven, seconds=0.5)
        delivery("push", "failed", eleven + timedelta(minutes=1), error=PUSH_ERROR)
        # Before the window: counted nowhere, not even among the top errors.
        old = SINCE - timedelta(days=1)
        delivery("email", "failed", old, error="an old error", updated_at=old)
        delivery("email", "sent", old, seconds=1)
        db.session.commit()


def test_stats_count_sends_outcomes_and_p95_hour_by_hour(app):
    _seed_window(app)
    with app.app_context():
        stats = dashboard.delivery_stats(db.session, NOW, 24, 10)
    assert stats.since == SINCE
    assert stats.hours[0] == SINCE
    assert stats.hours[-1] == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert len(stats.hours) == 24
    assert stats.in_app.sends == [2] + [0] * 22 + [3]
    assert stats.in_app.total == 5

    def only(index: int, value: object, empty: object = 0) -> list:
        return [value if hour == index else empty for hour in range(24)]

    email, sms, push = (stats.channels[c] for c in ("email", "sms", "push"))
    assert email.sends == only(20, 23)
    assert email.sent == only(20, 20)
    assert email.failed == only(20, 2)
    assert email.success_rate == only(20, 20 / 22, None)
    assert email.p95_seconds == only(20, pytest.approx(19.05), None)
    assert (email.totals.sends, email.totals.queued, email.totals.skipped) == (23, 1, 1)
    assert email.totals.p95_seconds == pytest.approx(19.05)

    assert sms.sends == only(21, 5)
    assert sms.success_rate == only(21, 0.4, None)
    assert sms.totals.failure_rate == 0.6
    assert sms.p95_seconds == only(21, pytest.approx(3.9), None)

    assert push.sends == only(22, 2)
    assert push.p95_seconds == only(22, pytest.approx(0.5), None)
    assert push.totals.success_rate == 0.5

    totals = stats.deliveries
    assert (totals.sends, totals.sent, totals.failed, totals.queued, totals.skipped) == (
        30,
        23,
        6,
        1,
        1,
    )
    assert totals.success_rate == 23 / 29
    assert totals.failure_rate == 6 / 29
    # 23 durations: 0.5, 1, 2, 2, 3, 4, 4, 5 .. 20; rank 0.95 * 22 = 20.9 lies between 18 and 19.
    assert totals.p95_seconds == pytest.approx(18.9)

    assert [(e.error, e.count) for e in stats.top_errors] == [
        (TWILIO_ERROR, 3),
        (SMTP_ERROR, 2),
        (PUSH_ERROR, 1),
    ]
    with app.app_context():
        assert len(dashboard.delivery_stats(db.session, NOW, 24, 2).top_errors) == 2
        # A window of one hour holds the current hour only.
        hour = dashboard.delivery_stats(db.session, NOW, 1, 10)
    assert hour.in_app.sends == [3]
    assert hour.deliveries.sends == 0
    assert hour.deliveries.success_rate is None
    assert hour.deliveries.p95_seconds is None
    assert hour.top_errors == []


def test_stats_route_answers_json_for_the_window(app, producer):
    now = utcnow()
    _failed_email(app, now - timedelta(minutes=2))
    with app.app_context():
        db.session.add(
            Notification(
                user_id="ana",
                category="general",
                title="t",
                data={},
                priority="normal",
                in_app=True,
                created_at=now - timedelta(minutes=1),
            )
        )
        db.session.commit()
    response = producer.get("/admin/api/stats")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "since",
        "until",
        "hours",
        "in_app",
        "channels",
        "deliveries",
        "top_errors",
    }
    assert len(body["hours"]) == 24
    assert body["hours"][0] == body["since"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z", body["since"])
    assert body["in_app"]["total"] == 1
    assert sum(body["in_app"]["sends"]) == 1
    assert set(body["channels"]) == {"email", "sms", "push"}
    email = body["channels"]["email"]
    assert set(email) == {"sends", "sent", "failed", "success_rate", "p95_seconds", "totals"}
    assert sum(email["failed"]) == 1
    assert email["totals"] == {
        "sends": 1,
        "sent": 0,
        "failed": 1,
        "queued": 0,
        "skipped": 0,
        "success_rate": 0.0,
        "failure_rate": 1.0,
        "p95_seconds": None,
    }
    assert body["top_errors"] == [{"error": SMTP_ERROR, "count": 1}]
    assert len(producer.get("/admin/api/stats?hours=6").get_json()["hours"]) == 6
    for bad in ("hours=0", "hours=169", "hours=x", "days=1"):
        assert_error(producer.get(f"/admin/api/stats?{bad}"), 422, "validation_error")


def test_failed_list_is_newest_first_with_who_and_why(app, producer):
    start = utcnow() - timedelta(hours=3)
    ids = [_failed_email(app, start + timedelta(minutes=i), f"error {i}") for i in range(3)]
    response = producer.get("/admin/api/failed")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 3
    assert [item["id"] for item in body["items"]] == [str(i) for i in reversed(ids)]
    newest = body["items"][0]
    assert set(newest) == {
        "id",
        "notification_id",
        "user_id",
        "channel",
        "attempts",
        "last_error",
        "created_at",
        "updated_at",
    }
    assert (newest["user_id"], newest["channel"], newest["attempts"]) == ("ana", "email", 5)
    assert newest["last_error"] == "error 2"
    assert newest["updated_at"].endswith("Z")
    with app.app_context():
        assert newest["notification_id"] == str(db.session.get(Delivery, ids[2]).notification_id)
    limited = producer.get("/admin/api/failed?limit=1").get_json()
    assert (len(limited["items"]), limited["total"]) == (1, 3)
    assert_error(producer.get("/admin/api/failed?limit=0"), 422, "validation_error")
    assert_error(producer.get("/admin/api/failed?limit=101"), 422, "validation_error")


def test_live_shows_queue_depths_and_sockets(app, producer):
    delivery_id = _failed_email(app, utcnow() - timedelta(minutes=1))
    before = producer.get("/admin/api/live").get_json()
    assert set(before) == {"at", "connected_sockets", "queues"}
    assert before["connected_sockets"] == 0
    assert before["queues"] == {
        "waiting": {"critical": 0, "high": 0, "default": 0, "low": 0},
        "scheduled": 0,
        "failed": 0,
    }
    producer.post("/admin/api/failed/retry", json={"ids": [str(delivery_id)]})
    after = producer.get("/admin/api/live").get_json()
    assert after["queues"]["waiting"]["default"] == 1


# Retrying


def test_retry_queues_a_failed_delivery_again_and_it_is_delivered(app, producer):
    delivery_id = _failed_email(app, utcnow() - timedelta(minutes=10))
    response = producer.post("/admin/api/failed/retry", json={"ids": [str(delivery_id)]})
    assert response.status_code == 200
    assert response.get_json() == {"requeued": [str(delivery_id)]}
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.lease_until) == ("queued", 0, None)
    queue = Queue("default", connection=Redis.from_url(REDIS_URL))
    assert queue.job_ids == [f"delivery-{delivery_id}-1"]
    assert producer.get("/admin/api/failed").get_json() == {"items": [], "total": 0}
    # Not failed any more: a second retry leaves it alone.
    again = producer.post("/admin/api/failed/retry", json={"ids": [str(delivery_id)]})
    assert again.get_json() == {"requeued": []}

    with app.app_context():
        deliver(delivery_id)
        db.session.expire_all()
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 1, None)


def test_retry_all_queues_every_failed_delivery(app, producer):
    first = _failed_email(app, utcnow() - timedelta(minutes=3))
    with app.app_context():
        db.session.execute(text("UPDATE deliveries SET status = 'sent'"))
        db.session.commit()
    failed = [_failed_email(app, utcnow() - timedelta(minutes=m)) for m in (2, 1)]
    response = producer.post("/admin/api/failed/retry", json={"all": True})
    assert sorted(response.get_json()["requeued"]) == sorted(str(i) for i in failed)
    with app.app_context():
        statuses = dict(db.session.execute(select(Delivery.id, Delivery.status)).all())
    assert statuses == {first: "sent", failed[0]: "queued", failed[1]: "queued"}


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": ["x"]}, {"ids": ["0"]}, {"ids": ["1"], "all": True}, {"all": False}],
)
def test_retry_names_what_is_wrong_with_its_body(producer, body):
    assert_error(producer.post("/admin/api/failed/retry", json=body), 422, "validation_error")


# Speed at scale


@pytest.mark.postgres_only
def test_dashboard_queries_use_indexes_among_many_rows(app):
    """300,000 deliveries over 30 days, 1% failed: every query reads through an index."""
    with app.app_context():
        db.session.execute(text("INSERT INTO users (id) VALUES ('many')"))
        db.session.execute(
            text(
                "INSERT INTO notifications (user_id, category, title, data, priority, in_app,"
                " created_at) SELECT 'many', 'general', 't', '{}', 'normal', true,"
                " now() - (g * interval '8640 milliseconds') FROM generate_series(1, 300000) g"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO deliveries (notification_id, channel, status, attempts, last_error,"
                " created_at, updated_at, sent_at) SELECT id, 'email',"
                " CASE WHEN id % 100 = 0 THEN 'failed' ELSE 'sent' END, 1,"
                " CASE WHEN id % 100 = 0 THEN 'error ' || (id % 7) END, created_at, created_at,"
                " CASE WHEN id % 100 = 0 THEN NULL ELSE created_at + interval '2 seconds' END"
                " FROM notifications"
            )
        )
        db.session.execute(text("ANALYZE notifications"))
        db.session.execute(text("ANALYZE deliveries"))
        db.session.commit()

        statements: list[tuple[str, object]] = []

        def capture(_conn, _cursor, statement, parameters, _context, _many):
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append((statement, parameters))

        now = utcnow()
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            stats = dashboard.delivery_stats(db.session, now, 24, 10)
            items, total = dashboard.failed_deliveries(db.session, 100)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        in_window = db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.created_at >= dashboard.window_start(now, 24))
        )
        assert 9_000 < in_window <= 10_000
        assert stats.deliveries.sends == in_window
        assert total == 3_000
        assert len(items) == 100
        assert len(statements) == 6
        cursor = db.session.connection().connection.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = json.dumps(cursor.fetchone()[0])
            assert "Seq Scan" not in plan, (statement, plan)
            assert re.search(r'"Index Name": "(ix_notifications|ix_deliveries)_', plan), plan
        cursor.close()


def test_behind_a_trusted_proxy_the_forwarded_scheme_makes_the_cookie_secure(app, app_with):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "notify.example"}
    untrusting = app.test_client().get("/admin", headers=forwarded)
    assert "Secure" not in _set_cookie(untrusting)
    proxied = app_with(PROXY_FIX_HOPS=1)
    trusting = proxied.test_client().get("/admin", headers=forwarded)
    assert "Secure" in _set_cookie(trusting)


def test_secure_cookies_can_be_required_outright(app_with):
    strict = app_with(SESSION_COOKIE_SECURE=True)
    assert "Secure" in _set_cookie(strict.test_client().get("/admin"))
