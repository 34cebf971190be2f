"""The admin dashboard in real Chromium, on the production-shaped stack (PostgreSQL, Redis,
SMTP, `python wsgi.py`, `python worker.py`): sign in with an API key, the charts drawn
with data, the live numbers, a failed delivery retried from its button. Also writes the
README's pictures, docs/admin-dashboard-light.png and docs/admin-dashboard-dark.png."""

import re
from collections.abc import Iterator

import psycopg2
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PROJECT_ROOT
from tests.realtime_client import Tab
from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)

DOCS = PROJECT_ROOT / "docs"
CHARTS = ("chart-sends", "chart-outcomes", "chart-p95", "chart-queues")
BOUNCE = "550 5.1.1 <bo@example.com>: mailbox unavailable"
BOUNCE_ERROR = "SMTP 550: b'5.1.1 <[address]>: mailbox unavailable'"
SOCKETS = 3
# 23 hours of history before the current one: in-app notifications and one delivery each,
# by a daily curve, delivered in channel-typical times; a few failed, with a provider's
# error.
HISTORY = """
INSERT INTO users (id, email, phone) VALUES ('history', 'history@example.com', '+15550000001');
INSERT INTO notifications (user_id, category, title, data, priority, in_app, created_at)
SELECT 'history', 'digest', 'History ' || h || '.' || i, '{}', 'normal', i % 4 <> 0,
       date_trunc('hour', now()) - h * interval '1 hour' + i * interval '41 seconds'
FROM generate_series(1, 23) h, generate_series(1, 45 + (25 * sin(h / 3.5))::int) i;
INSERT INTO deliveries (notification_id, channel, status, attempts, last_error,
                        created_at, updated_at, sent_at)
SELECT id, channel, status, CASE status WHEN 'failed' THEN 4 ELSE 1 END,
       CASE WHEN status = 'failed' THEN CASE channel
         WHEN 'email' THEN 'SMTP 552: ''5.2.2 mailbox full'''
         WHEN 'sms' THEN 'HTTP 400 from https://api.twilio.com/2010-04-01/Accounts/AC5e/'
                         || 'Messages.json: The ''To'' number is not a valid phone number'
         ELSE 'push failed for every subscription: HTTP 413 Payload Too Large' END END,
       created_at, created_at + seconds * interval '1 second',
       CASE WHEN status = 'sent' THEN created_at + seconds * interval '1 second' END
FROM (
  SELECT id, created_at,
         (ARRAY['email', 'sms', 'push'])[id % 3 + 1] AS channel,
         CASE WHEN id % 500 IN (0, 7, 35) THEN 'failed' ELSE 'sent' END AS status,
         CASE id % 3 WHEN 0 THEN 1.2 WHEN 1 THEN 0.6 ELSE 0.25 END
           * (1 + (id * 37 % 100) / 60.0)
           * (1 + 0.8 * (extract(hour FROM created_at)::int % 7 = 3)::int) AS seconds
  FROM notifications WHERE user_id = 'history'
) AS history;
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("admin"), "notify_admin", SOCKET_EXPIRY_SWEEP_SECONDS="0.5"
    ).start()
    running.start_worker()
    with psycopg2.connect(running.env["DATABASE_URL"]) as connection, connection.cursor() as cur:
        cur.execute(HISTORY)
    connection.close()
    yield running
    running.close()


@pytest.fixture(scope="module")
def bounced(stack) -> str:
    """This hour's sends through the API, one email of which the SMTP server refused for
    good; that notification's id."""
    stack.call("PUT", "/users/ana", {"email": "ana@example.com", "phone": "+15550000002"})
    stack.call("PUT", "/users/bo", {"email": "bo@example.com"})
    sent = [
        stack.send(to="ana", title=title, channels=["in_app", "email", "sms"])[0]
        for title in ("Ana replied to you", "Build #482 passed", "Your export is ready")
    ]
    # Only then refuse: the next message the SMTP server sees must be Bo's.
    stack.wait_for(
        lambda: all(stack.deliveries(n)["email"]["status"] == "sent" for n in sent),
        what="Ana's emails to be sent",
    )
    stack.smtp.mailbox.refuse_next = 1
    stack.smtp.mailbox.refusal = BOUNCE
    [notification_id] = stack.send(to="bo", title="Weekly digest", channels=["email"])
    stack.wait_for(
        lambda: stack.deliveries(notification_id)["email"]["status"] == "failed",
        what="the refused email to fail",
    )
    return notification_id


@pytest.fixture(scope="module")
def tabs(stack) -> Iterator[list[Tab]]:
    """Browser tabs of one user, connected to the server's socket."""
    stack.call("PUT", "/users/watcher", {})
    token = stack.call("POST", "/users/watcher/tokens", {})["token"]
    opened = [Tab(stack.url, token, "websocket") for _ in range(SOCKETS)]
    yield opened
    for tab in opened:
        tab.close()


def sign_in(page: Page, stack: Stack, key: str) -> None:
    page.goto(f"{stack.url}/admin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


# Strongly coloured pixels on a chart's canvas: its series (axes and grid are grey).
COLORED_PIXELS = """(canvas) => {
    const context = canvas.getContext("2d");
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = data.slice(i, i + 4);
        if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 80) count++;
    }
    return count;
}"""


def wait_until_drawn(page: Page, test_id: str, pixels: int = 200) -> None:
    """Wait until the chart's canvas shows at least `pixels` coloured pixels."""
    page.wait_for_function(
        f"""() => {{
            const canvas = document.querySelector('[data-testid="{test_id}"] canvas');
            return canvas !== null && ({COLORED_PIXELS})(canvas) >= {pixels};
        }}"""
    )


def test_a_wrong_key_is_refused(browser, stack):
    page = browser.new_page()
    try:
        sign_in(page, stack, stack.api_key[:-2] + "xx")
        expect(page.get_by_role("alert")).to_have_text("Invalid key.")
        expect(page.get_by_label("API key")).to_be_empty()
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_dashboard_draws_its_charts_with_data(browser, stack, bounced, tabs, scheme):
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        # Script errors and Content-Security-Policy refusals both land here.
        problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, stack, stack.api_key)
        expect(page.get_by_role("heading", name="Delivery dashboard")).to_be_visible()
        page.get_by_label("Refresh").select_option("2")
        expect(page.get_by_test_id("connected-sockets")).to_have_text(str(SOCKETS))
        expect(page.get_by_test_id("jobs-waiting")).to_have_text("0")
        expect(page.get_by_test_id("success-rate")).to_contain_text("%")
        expect(page.get_by_test_id("p95")).to_have_text(re.compile(r"^\d+(\.\d+)? (ms|s|min)$"))
        for chart in CHARTS:
            expect(page.get_by_test_id(chart).locator("canvas")).to_have_count(1)
            wait_until_drawn(page, chart)

        # The table shows what the JSON says (read here with the API key).
        stats = stack.call("GET", "/admin/api/stats")
        channels = page.get_by_test_id("channel-table").locator("tbody tr")
        expect(channels).to_have_count(4)
        expect(channels.nth(0).locator("td").nth(1)).to_have_text(f"{stats['in_app']['total']:,}")
        for row, channel in enumerate(("email", "sms", "push"), start=1):
            totals = stats["channels"][channel]["totals"]
            cells = channels.nth(row).locator("td")
            expect(cells.nth(1)).to_have_text(f"{totals['sends']:,}")
            expect(cells.nth(2)).to_have_text(f"{totals['sent']:,}")
            expect(cells.nth(3)).to_have_text(f"{totals['failed']:,}")
        assert stats["deliveries"]["failed"] >= 1
        expect(page.get_by_test_id("top-errors").locator("tbody tr")).to_have_count(4)
        expect(page.get_by_test_id("top-errors")).to_contain_text(BOUNCE_ERROR)
        newest = page.get_by_test_id("failed-row").first
        expect(newest.locator("td").nth(2)).to_have_text("bo")
        expect(newest).to_contain_text(BOUNCE_ERROR)
        expect(page.get_by_test_id("retry-all")).to_be_enabled()

        # A few live samples, so the queue chart has a line to show.
        page.wait_for_timeout(4000)
        DOCS.mkdir(exist_ok=True)
        picture = DOCS / f"admin-dashboard-{scheme}.png"
        page.screenshot(path=str(picture), full_page=True)
        assert picture.stat().st_size > 50_000
        assert problems == []
    finally:
        context.close()


def test_retry_sends_a_failed_delivery_again(browser, stack, bounced):
    page = browser.new_page()
    try:
        sign_in(page, stack, stack.api_key)
        [cookie] = page.context.cookies()
        assert (cookie["name"], cookie["path"]) == ("notify_admin", "/admin")
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
        row = page.get_by_test_id("failed-row").filter(has_text=BOUNCE_ERROR)
        expect(row).to_have_count(1)
        others = page.get_by_test_id("failed-row").count() - 1
        row.get_by_test_id("retry").click()
        expect(row).to_have_count(0)
        expect(page.get_by_test_id("failed-row")).to_have_count(others)
        expect(page.get_by_test_id("retry-status")).to_have_text("Queued 1 again.")
        stack.wait_for(
            lambda: stack.deliveries(bounced)["email"]["status"] == "sent",
            what="the retried email to be sent",
        )
        assert [m["Subject"] for m in stack.smtp.mailbox.to("bo@example.com")] == ["Weekly digest"]

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key")).to_be_visible()
    finally:
        page.close()
