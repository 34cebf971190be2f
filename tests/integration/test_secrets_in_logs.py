"""Secrets never reach the logs. A whole production-shaped stack (a fresh PostgreSQL database,
a private Redis, `python wsgi.py`, two `python worker.py`, an SMTP server that takes mail only
after AUTH, local Twilio, push and webhook endpoints) runs at LOG_LEVEL=DEBUG, once with text
logs and once with JSON logs, with every secret setting given a distinctive known value. A
full run goes through the real HTTP API, Socket.IO and the CLI, failing calls with credentials
included; then every process log is searched for every secret that was configured, minted,
sent or received, for tokens in URL queries, and for the users' addresses."""

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import psycopg2
import pytest
import requests
import socketio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import tests.stack
from tests.conftest import postgres_url
from tests.providers import Browser, Endpoint, b64url
from tests.realtime_client import Tab
from tests.servers import free_port
from tests.smtp import Mailbox
from tests.stack import Stack

pytestmark = [
    pytest.mark.timeout(180),
    # AUTH without TLS, on 127.0.0.1 only: the app verifies certificates, so a test server
    # with a self-signed one could not take the password at all.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

WINDOW = 16
"""A secret counts as logged when any run of this many of its characters is in a log: a
prefix, a suffix or a slice of a secret is as bad as all of it."""
RANDOM = 32
MAIL_USERNAME = "notify-mailer"
TWILIO_ACCOUNT_SID = "AC5ec7e75ec7e75ec7e75ec7e75ec7e75e"
USER_TOKEN_AUDIENCE = "notify:user"


def _secret(label: str) -> str:
    """A distinctive known value: a label to recognise it by, then RANDOM random characters."""
    return f"{label}-{secrets.token_urlsafe(RANDOM * 3 // 4)}"


def _public_key(private_key: ec.EllipticCurvePrivateKey) -> str:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(raw)


@dataclass
class Secret:
    """A value that must not be logged. `core` is its secret part (a JWT's signature, an API
    key after its public lookup id); every WINDOW-long slice of it is searched for."""

    name: str
    value: str
    core: str = ""

    def fragments(self) -> list[str]:
        core = self.core or self.value
        if len(core) <= WINDOW:
            return [core]
        return [core[i : i + WINDOW] for i in range(len(core) - WINDOW + 1)]


def api_key_secret(name: str, key: str) -> Secret:
    """An API key is `nk_<lookup>_<random>`: the lookup id may be named, the rest not."""
    prefix, lookup, rest = key.split("_", 2)
    assert (prefix, len(lookup)) == ("nk", 12), key
    assert len(rest) >= 32, key
    return Secret(name, key, rest)


def made_secret(name: str, value: str) -> Secret:
    """A value from `_secret`: its label is no secret, its random characters are."""
    return Secret(name, value, value[-RANDOM:])


def blob_secret(name: str, blob: str) -> Secret:
    """Base64 of `<public part><secret made by _secret>`: its last 40 characters encode the
    last 30 bytes, all of them random."""
    return Secret(name, blob, blob[-40:])


def token_secret(name: str, token: str) -> Secret:
    """A JWT's header and claims are no secret; its signature is what grants access."""
    assert token.count(".") == 2, token
    return Secret(name, token, token.rsplit(".", 1)[1])


def _leaks(logs: dict[str, str], searched: list[Secret]) -> list[str]:
    """`<what> in <log>: <where>` for each secret found in a log."""
    leaks = []
    for secret in searched:
        for log_name, text in logs.items():
            at = next((at for f in secret.fragments() if (at := text.find(f)) >= 0), -1)
            if at >= 0:
                start = max(text.rfind("\n", 0, at) + 1, at - 300)
                end = text.find("\n", at)
                end = min(end if end >= 0 else len(text), at + 200)
                leaks.append(f"{secret.name} in {log_name}: ...{text[start:end]}...")
    return leaks


class AuthSmtpServer:
    """tests.smtp.SmtpServer, but advertising AUTH (without TLS) and refusing mail from a
    client that did not log in with MAIL_USERNAME and `password`."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.mailbox = Mailbox()
        self.port = free_port()
        self.logins: list[tuple[str, bool]] = []
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        accepted = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == MAIL_USERNAME.encode()
            and auth_data.password == self.password.encode()
        )
        self.logins.append((mechanism, accepted))
        return AuthResult(success=accepted)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Run:
    """What one full run left behind: every process log, and what must not be in them."""

    log_format: str
    secrets: list[Secret] = field(default_factory=list, repr=False)
    url_tokens: list[Secret] = field(default_factory=list, repr=False)
    contacts: list[str] = field(default_factory=list, repr=False)
    calls: set[tuple[str, str, int]] = field(default_factory=set, repr=False)
    cli_key: str = field(default="", repr=False)
    cli_stderr: str = field(default="", repr=False)
    logs: dict[str, str] = field(default_factory=dict, repr=False)


class Http:
    """requests to the stack, each checked for the status it must answer with."""

    def __init__(self, url: str, run: Run) -> None:
        self.url = url
        self.run = run

    def __call__(
        self,
        method: str,
        path: str,
        credential: str | None,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = dict(headers or {})
        if credential is not None:
            sent["Authorization"] = f"Bearer {credential}"
        response = requests.request(
            method, f"{self.url}{path}", json=body, headers=sent, timeout=30
        )
        assert response.status_code == status, (method, path, response.status_code, response.text)
        self.run.calls.add((method, path, status))
        return response


def _settings(log_format: str) -> dict[str, str]:
    vapid = ec.generate_private_key(ec.SECP256R1())
    return {
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": log_format,
        "SECRET_KEY": _secret("secret-key"),
        "USER_TOKEN_SECRET": _secret("user-token-secret"),
        "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": _secret("twilio-auth-token"),
        "TWILIO_FROM_NUMBER": "+15005550006",
        # What `flask vapid generate` prints: the raw keys, base64url.
        "VAPID_PUBLIC_KEY": _public_key(vapid),
        "VAPID_PRIVATE_KEY": b64url(vapid.private_numbers().private_value.to_bytes(32, "big")),
        "VAPID_SUBJECT": "mailto:ops@example.com",
        "METRICS_TOKEN": _secret("metrics-token"),
        "MAIL_USERNAME": MAIL_USERNAME,
        "MAIL_PASSWORD": _secret("mail-password"),
    }


def _with_password(url: str) -> tuple[str, Secret]:
    """The database URL with a password in it, and that password as a secret. A server that
    trusts 127.0.0.1 (as scripts/test sets it up) ignores it, but every process holds it in
    its settings all the same; a URL that has a password already keeps it."""
    parts = urlsplit(url)
    if parts.password:
        return url, Secret("the password in DATABASE_URL", parts.password)
    password = _secret("database-password")
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    with_it = urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))
    return with_it, made_secret("the password in DATABASE_URL", password)


def _forged_token(user_id: str, secret: str, expires_in: int) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "aud": USER_TOKEN_AUDIENCE, "iat": now - 7200}
    return jwt.encode(claims | {"exp": now + expires_in}, secret, algorithm="HS256")


def _changed_tail(key: str) -> str:
    """The key with its last characters changed: the same lookup id, the wrong secret."""
    return key[:-6] + ("BBBBBB" if key.endswith("AAAAAA") else "AAAAAA")


def _settled(stack: Stack, notification_ids) -> list[dict[str, str]] | None:
    """Each notification's delivery statuses by channel, once none is queued."""
    outcome = [
        {channel: d["status"] for channel, d in stack.deliveries(nid).items()}
        for nid in notification_ids
    ]
    return None if any("queued" in by.values() for by in outcome) else outcome


def _webhook_events_settled(stack: Stack) -> bool:
    with psycopg2.connect(stack.env["DATABASE_URL"]) as connection, connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'queued') FROM webhook_events"
        )
        total, queued = cur.fetchone()
    connection.close()
    return total > 0 and queued == 0


def _refused_socket(url: str, credential: str) -> str:
    """The connect_error message a socket with this credential gets."""
    refusals: list[Any] = []
    client = socketio.Client(reconnection=False)
    client.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(url, auth={"token": credential}, transports=["websocket"], wait_timeout=10)
    return refusals[0]["message"]


def drive(run: Run, stack: Stack, twilio: Endpoint, push: Endpoint, hooks: Endpoint) -> None:
    """The full run. Every credential it mints, sends or sees goes into `run`."""
    env = stack.env
    http = Http(stack.url, run)
    key = stack.api_key
    keep = run.secrets.append

    def url_token(name: str) -> str:
        value = _secret("url-token")
        run.url_tokens.append(made_secret(name, value))
        return value

    # A second key from the CLI (stdout is where it belongs), users with addresses, tokens.
    created = stack.flask("keys", "create", "second-producer")
    assert created.returncode == 0, created.stderr
    run.cli_key, run.cli_stderr = created.stdout.strip().splitlines()[0], created.stderr
    second_key = run.cli_key
    keep(api_key_secret("API key (from `keys create`)", second_key))
    users = {
        "u-alice": {"email": "alice.logcheck@example.com", "phone": "+4915112340001"},
        "u-bob": {"email": "bob.logcheck@example.org", "phone": "+4915112340002"},
        "u-carol": {"email": "carol.logcheck@example.net", "phone": "+4915112340003"},
    }
    tokens = {}
    for user_id, contact in users.items():
        http("PUT", f"/users/{user_id}", key, 201, {"name": user_id, **contact})
        run.contacts += contact.values()
        minted = http("POST", f"/users/{user_id}/tokens", second_key, 201, {})
        tokens[user_id] = minted.json()["token"]
        keep(token_secret(f"user token of {user_id}", tokens[user_id]))
    alice, bob = tokens["u-alice"], tokens["u-bob"]

    # Push: Alice's two browsers, one with a capability token in its endpoint's query (as WNS
    # endpoints have); Bob's one browser, whose push service is down (his push fails).
    browsers = {
        "u-alice": [
            f"{push.url}/push/alice",
            f"{push.url}/w/?token={url_token('token in a push endpoint query')}",
        ],
        "u-bob": [
            f"http://127.0.0.1:{free_port()}/w/?token="
            + url_token("token in the query of an unreachable push endpoint")
        ],
    }
    for user_id, endpoints in browsers.items():
        for endpoint in endpoints:
            subscription = Browser(endpoint).subscription()
            http("POST", "/me/push-subscriptions", tokens[user_id], 201, subscription)
            keep(Secret("push subscription auth secret", subscription["keys"]["auth"]))

    # A webhook for every event, with a token in its URL; its first event is refused for
    # good and its second retried, so both failure paths get logged.
    hook_token = url_token("token in the webhook URL's query")
    webhook = http(
        "POST",
        "/webhooks",
        key,
        201,
        {
            "url": f"{hooks.url}/hooks/notify?token={hook_token}",
            "events": ["notification.read", "delivery.sent", "delivery.failed"],
        },
    ).json()
    keep(Secret("webhook secret", webhook["secret"]))
    hooks.answers.extend([400, 503])

    # Live tabs: Alice over websocket, Bob over long-polling.
    tabs = [Tab(stack.url, alice, "websocket"), Tab(stack.url, bob, "polling")]
    for tab in tabs:
        tab.next("unread_count")

    # A send on every channel with an Idempotency-Key; replayed; the key reused for another
    # body. Once its deliveries are out, Carol's email and SMS are refused for good.
    send = {
        "to": ["u-alice", "u-bob"],
        "category": "security",
        "title": "New sign-in",
        "body": "A new device signed in",
        "channels": ["in_app", "email", "sms", "push"],
    }
    idempotency = {"Idempotency-Key": f"signin-{secrets.token_hex(4)}"}
    first = http("POST", "/notifications", key, 201, send, idempotency).json()
    replay = http("POST", "/notifications", key, 201, send, idempotency)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first
    http("POST", "/notifications", key, 409, send | {"title": "other"}, idempotency)
    ids = {item["user_id"]: item["id"] for item in first["notifications"]}
    for tab in tabs:
        tab.next("notification")
    stack.wait_for(lambda: _settled(stack, ids.values()), what="the first deliveries")
    stack.smtp.mailbox.refuse_next = 1
    stack.smtp.mailbox.refusal = "554 5.7.1 message refused"
    twilio.answers.append(400)
    [ids["u-carol"]] = stack.send(to="u-carol", title="Hello", channels=["email", "sms"])

    # Alice reads hers with her token: a live update, and a notification.read event.
    http("POST", f"/me/notifications/{ids['u-alice']}/read", alice, 200)
    tabs[0].next("notification_updated")

    # Failing calls, each with a credential that must not be logged either.
    wrong_key = _changed_tail(key)
    keep(api_key_secret("API key with its last characters changed", wrong_key))
    assert http("GET", "/users/u-alice", wrong_key, 401).json()["error"]["code"] == (
        "invalid_credential"
    )
    forged = _forged_token("u-alice", _secret("not-the-user-token-secret"), 3600)
    keep(token_secret("forged user token", forged))
    assert http("GET", "/me/notifications", forged, 401).json()["error"]["code"] == (
        "invalid_credential"
    )
    expired = _forged_token("u-alice", env["USER_TOKEN_SECRET"], -60)
    keep(token_secret("expired user token", expired))
    assert http("GET", "/me/notifications", expired, 401).json()["error"]["code"] == (
        "token_expired"
    )
    signed_with_secret_key = _forged_token("u-alice", env["SECRET_KEY"], 3600)
    keep(token_secret("user token signed with SECRET_KEY", signed_with_secret_key))
    http("GET", "/me/unread-count", signed_with_secret_key, 401)
    http("POST", "/notifications", alice, 403, {"to": "u-alice", "title": "sneaky"})
    http("GET", "/me/notifications", key, 403)
    assert _refused_socket(stack.url, forged).startswith("invalid_credential")
    assert _refused_socket(stack.url, expired).startswith("token_expired")
    assert _refused_socket(stack.url, key).startswith("invalid_credential")
    wrong_metrics = _secret("wrong-metrics-token")
    keep(made_secret("wrong METRICS_TOKEN", wrong_metrics))
    http("GET", "/metrics", wrong_metrics, 401)
    assert "notify_" in http("GET", "/metrics", env["METRICS_TOKEN"], 200).text

    # The admin sign-in form: a wrong key, then the right one (its session is a credential).
    admin = requests.Session()
    form = admin.get(f"{stack.url}/admin", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    keep(Secret("admin CSRF token", csrf))
    wrong_admin_key = _changed_tail(second_key)
    keep(api_key_secret("wrong key on the admin sign-in form", wrong_admin_key))
    for tried, status in ((wrong_admin_key, 401), (key, 303)):
        answer = admin.post(
            f"{stack.url}/admin/login",
            data={"key": tried, "csrf_token": csrf},
            headers={"Origin": stack.url},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == status, answer.text
        run.calls.add(("POST", "/admin/login", status))
    cookie = admin.cookies["notify_admin"]
    keep(Secret("admin session cookie", cookie, cookie.rsplit(".", 1)[-1]))
    assert admin.get(f"{stack.url}/admin/api/stats", timeout=30).status_code == 200

    # Everything settles: deliveries sent (or failed), webhook events worked.
    outcome = stack.wait_for(lambda: _settled(stack, ids.values()), what="every delivery")
    assert dict(zip(ids, outcome, strict=True)) == {
        "u-alice": {"in_app": "sent", "email": "sent", "sms": "sent", "push": "sent"},
        "u-bob": {"in_app": "sent", "email": "sent", "sms": "sent", "push": "failed"},
        "u-carol": {"email": "failed", "sms": "failed"},
    }, outcome
    stack.wait_for(lambda: _webhook_events_settled(stack), what="the webhook events")
    assert any(b'"notification.read"' in request.body for request in hooks.requests())
    for tab in tabs:
        tab.close()

    # Each configured secret was really used, and what the providers got is a credential too.
    logins = stack.smtp.logins
    assert logins, "the worker never logged in to the SMTP server"
    assert all(accepted for _, accepted in logins), logins
    run.secrets.append(
        blob_secret(
            f"SMTP AUTH {logins[0][0]} blob",
            base64.b64encode(f"\0{MAIL_USERNAME}\0{env['MAIL_PASSWORD']}".encode()).decode(),
        )
    )
    [basic] = {request.headers["Authorization"] for request in twilio.requests()}
    sms_credentials = f"{TWILIO_ACCOUNT_SID}:{env['TWILIO_AUTH_TOKEN']}".encode()
    assert basic == f"Basic {base64.b64encode(sms_credentials).decode()}"
    keep(blob_secret("Twilio basic auth header", basic.removeprefix("Basic ")))
    vapid_key = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), base64.urlsafe_b64decode(env["VAPID_PUBLIC_KEY"] + "==")
    )
    assert len(push.requests()) == 2
    for request in push.requests():
        fields = dict(
            part.strip().split("=", 1)
            for part in request.headers["Authorization"].removeprefix("vapid ").split(",")
        )
        jwt.decode(fields["t"], vapid_key, algorithms=["ES256"], audience=push.url)
        keep(token_secret("VAPID JWT sent to the push service", fields["t"]))


@pytest.fixture(scope="module", params=["text", "json"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A full run with LOG_FORMAT=text, then one with json; the stack is gone when it's done."""
    run = Run(log_format=request.param)
    workdir = tmp_path_factory.mktemp(f"secrets-{run.log_format}")
    endpoints = twilio, push, hooks = [Endpoint().start() for _ in range(3)]
    hooks.default_status = 200
    settings = _settings(run.log_format) | {"TWILIO_API_BASE": twilio.url}
    stack = Stack(workdir, f"notify_secrets_{run.log_format}", **settings)
    stack.settings["DATABASE_URL"], database_password = _with_password(postgres_url(stack.name))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tests.stack, "SmtpServer", lambda: AuthSmtpServer(settings["MAIL_PASSWORD"]))
        try:
            stack.start()
            stack.start_worker()
            stack.start_worker()
            drive(run, stack, twilio, push, hooks)
        finally:
            stack.close()
            for endpoint in endpoints:
                endpoint.stop()
    run.secrets += [
        made_secret(name, settings[name])
        for name in (
            "SECRET_KEY",
            "USER_TOKEN_SECRET",
            "TWILIO_AUTH_TOKEN",
            "METRICS_TOKEN",
            "MAIL_PASSWORD",
        )
    ]
    run.secrets += [
        Secret("VAPID_PRIVATE_KEY", settings["VAPID_PRIVATE_KEY"]),
        database_password,
        api_key_secret("API key (the stack's)", stack.api_key),
    ]
    run.logs = {path.name: path.read_text() for path in sorted(workdir.glob("*.log"))}
    return run


def test_the_logs_record_the_run(run: Run):
    """The search is not vacuous: the access log has a line for each call made, the workers
    logged their jobs and their failures, at DEBUG, in the format asked for."""
    assert set(run.logs) == {"web.log", "worker1.log", "worker2.log"}, sorted(run.logs)
    web = run.logs["web.log"]
    workers = run.logs["worker1.log"] + run.logs["worker2.log"]
    if run.log_format == "json":
        entries = [json.loads(line) for line in "\n".join(run.logs.values()).splitlines() if line]
        logged = {
            (e["method"], e["path"], e["status"]) for e in entries if e["logger"] == "notify.access"
        }
        debug = '"level": "debug"'
    else:
        access = re.findall(r" INFO notify\.access: (\w+) (\S+) (\d{3}) ", web)
        logged = {(method, path, int(status)) for method, path, status in access}
        debug = " DEBUG "
    assert run.calls <= logged, sorted(run.calls - logged)
    assert debug in web
    assert debug in workers
    for expected in (
        "app.jobs.deliveries.deliver(",
        "app.jobs.webhooks.send_webhook_event(",
        "GaveUp: delivery",
        "GaveUp: webhook",
    ):
        assert expected in workers, expected
    assert "admin sign-in refused" in web


def test_no_secret_is_logged(run: Run):
    """Settings, API keys, user tokens (real, forged, expired), the webhook secret, the admin
    session, and what the SMTP server, Twilio and the push service were sent."""
    leaks = _leaks(run.logs, run.secrets)
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks)


def test_no_token_in_a_url_query_is_logged(run: Run):
    """A URL's query may carry a token (so app/channels/http.py names URLs without it): the
    webhook's URL and the endpoints of push subscriptions alike."""
    leaks = _leaks(run.logs, run.url_tokens)
    assert not leaks, "URL query tokens in the logs:\n" + "\n".join(leaks)


def test_no_email_or_phone_is_logged(run: Run):
    """Logs carry user ids, never addresses (see hide_parameters in app/config.py)."""
    leaks = _leaks(run.logs, [Secret(f"address {c}", c) for c in run.contacts])
    assert not leaks, "addresses in the logs:\n" + "\n".join(leaks)


def test_keys_create_prints_the_key_on_stdout_only(run: Run):
    """`keys create` prints the key once, on stdout; its stderr (logs) never has it."""
    assert run.cli_key.startswith("nk_")
    leaks = _leaks({"stderr": run.cli_stderr}, [api_key_secret("the new key", run.cli_key)])
    assert not leaks, leaks
