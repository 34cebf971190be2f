"""End-to-end fixtures: a real server (embedded mode), a page on a second origin that embeds
the bell, and Debian's Chromium driven by Playwright. A failed test leaves a screenshot and a
trace in test-artifacts/."""

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import PROJECT_ROOT
from tests.servers import create_api_key, free_port, migrate, server_environment, web_server
from tests.stack import Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
EMBEDDING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><h1>Another site</h1>
<script type="module">
  const params = new URLSearchParams(location.search);
  await import(params.get("server") + "/static/notifications.js");
  const bell = document.createElement("notification-bell");
  bell.setAttribute("server", params.get("server"));
  bell.setAttribute("token", params.get("token"));
  document.body.append(bell);
</script></body></html>
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise AssertionError("Chromium is not installed: run the tests with scripts/test")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def other_site(tmp_path_factory) -> Iterator[str]:
    """A page on its own origin (another port) that embeds the bell from the server."""
    root = tmp_path_factory.mktemp("other-site")
    (root / "bell.html").write_text(EMBEDDING_PAGE)
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def notify(tmp_path_factory, other_site) -> Iterator[Stack]:
    """The notification server, embedded (SQLite, jobs in-process), allowing `other_site`."""
    workdir = tmp_path_factory.mktemp("e2e")
    env = server_environment(f"sqlite:///{workdir / 'notify.db'}", None, CORS_ORIGINS=other_site)
    migrate(env)
    stack = Stack(workdir, "unused")
    stack.env = env
    stack.api_key = create_api_key(env, "e2e")
    with web_server(env, workdir / "web.log") as url:
        stack.url = url
        yield stack


@pytest.fixture
def context(browser, request) -> Iterator[BrowserContext]:
    opened = browser.new_context()
    opened.tracing.start(screenshots=True, snapshots=True)
    yield opened
    failed = (
        getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    )
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_")
        for index, page in enumerate(opened.pages):
            page.screenshot(path=str(ARTIFACTS / f"{name}-{index}.png"))
        opened.tracing.stop(path=str(ARTIFACTS / f"{name}-trace.zip"))
    else:
        opened.tracing.stop()
    opened.close()


class Inbox:
    """One user: their token, and pages showing their bell on the other site."""

    def __init__(self, notify: Stack, other_site: str, context: BrowserContext, user_id: str):
        self.notify = notify
        self.other_site = other_site
        self.context = context
        self.user_id = user_id
        notify.call("PUT", f"/users/{user_id}", {})
        self.token = notify.call("POST", f"/users/{user_id}/tokens", {})["token"]

    def open(self) -> Page:
        page = self.context.new_page()
        page.goto(f"{self.other_site}/bell.html?server={self.notify.url}&token={self.token}")
        page.get_by_test_id("notification-bell").wait_for()
        # Sent before the socket is in, a notification shows only through the list's fetch.
        page.locator('[data-online="true"]').wait_for()
        return page

    def send(self, **body) -> str:
        return self.notify.send(to=self.user_id, **body)[0]


@pytest.fixture
def inbox(notify, other_site, context, request) -> Inbox:
    return Inbox(
        notify,
        other_site,
        context,
        f"u-{request.node.name[:60]}".replace("[", "-").replace("]", ""),
    )
