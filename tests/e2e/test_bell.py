"""The bell in real Chromium, embedded on another origin: what a person sees and does."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(120)


def badge(page):
    return page.get_by_test_id("notification-badge")


def items(page):
    return page.get_by_test_id("notification-item")


def open_bell(page):
    page.get_by_test_id("notification-bell").click()
    expect(page.get_by_role("dialog")).to_be_visible()


def test_badge_shows_the_unread_count_on_load(inbox):
    for i in range(3):
        inbox.send(title=f"n{i}")
    page = inbox.open()
    expect(badge(page)).to_have_text("3")
    expect(badge(page)).to_be_visible()


def test_badge_is_hidden_at_zero_and_says_99_plus_past_99(inbox):
    page = inbox.open()
    expect(badge(page)).to_be_hidden()
    inbox.notify.send(to=[inbox.user_id] * 1, title="one")
    expect(badge(page)).to_have_text("1")
    for i in range(100):
        inbox.send(title=f"many {i}")
    expect(badge(page)).to_have_text("99+")


def test_a_new_notification_appears_live_with_a_toast(inbox):
    page = inbox.open()
    open_bell(page)
    expect(page.get_by_text("You're all caught up")).to_be_visible()
    notification_id = inbox.send(title="Build passed", body="main is green")
    expect(items(page)).to_have_count(1)
    expect(items(page).first).to_have_attribute("data-id", notification_id)
    expect(items(page).first).to_have_attribute("data-read", "false")
    expect(page.get_by_test_id("notification-toast")).to_contain_text("Build passed")
    expect(badge(page)).to_have_text("1")


def test_clicking_marks_read_and_the_badge_drops(inbox):
    inbox.send(title="first")
    inbox.send(title="second")
    page = inbox.open()
    open_bell(page)
    expect(badge(page)).to_have_text("2")
    page.get_by_role("tab", name="All").click()
    page.get_by_text("first").click()
    expect(items(page).filter(has_text="first")).to_have_attribute("data-read", "true")
    expect(badge(page)).to_have_text("1")


def test_a_second_tab_follows_reads_and_mark_all_read(inbox):
    ids = [inbox.send(title=f"n{i}") for i in range(3)]
    first, second = inbox.open(), inbox.open()
    open_bell(first)
    open_bell(second)
    second.get_by_role("tab", name="All").click()
    first.get_by_role("tab", name="All").click()
    first.locator(f'[data-id="{ids[0]}"]').get_by_role("button", name="Mark read").click()
    expect(second.locator(f'[data-id="{ids[0]}"]')).to_have_attribute("data-read", "true")
    expect(badge(second)).to_have_text("2")
    first.get_by_test_id("mark-all-read").click()
    for notification_id in ids:
        expect(second.locator(f'[data-id="{notification_id}"]')).to_have_attribute(
            "data-read", "true"
        )
    expect(badge(second)).to_be_hidden()


def test_archive_and_the_tabs(inbox):
    keep = inbox.send(title="keep me")
    gone = inbox.send(title="archive me")
    page = inbox.open()
    open_bell(page)
    page.locator(f'[data-id="{gone}"]').get_by_role("button", name="Archive").click()
    expect(page.locator(f'[data-id="{gone}"]')).to_have_count(0)
    expect(page.locator(f'[data-id="{keep}"]')).to_be_visible()
    page.get_by_role("tab", name="Archived").click()
    expect(items(page)).to_have_count(1)
    expect(items(page).first).to_have_attribute("data-id", gone)
    page.get_by_role("button", name="Unarchive").click()
    page.get_by_role("tab", name="Unread").click()
    expect(items(page)).to_have_count(2)


def test_a_preferences_toggle_persists_across_reload(inbox):
    inbox.send(title="x", category="comment")
    page = inbox.open()
    open_bell(page)
    page.get_by_role("button", name="Preferences").click()
    preferences = page.get_by_test_id("notification-preferences")
    comment_email = preferences.locator('[data-category="comment"]').get_by_label("Email")
    expect(comment_email).to_be_checked()
    comment_email.uncheck()
    expect(comment_email).not_to_be_checked()
    page.reload()
    open_bell(page)
    page.get_by_role("button", name="Preferences").click()
    expect(
        page.get_by_test_id("notification-preferences")
        .locator('[data-category="comment"]')
        .get_by_label("Email")
    ).not_to_be_checked()


def test_an_offline_tab_shows_what_it_missed_once_each(inbox, context):
    inbox.send(title="before")
    page = inbox.open()
    open_bell(page)
    expect(items(page)).to_have_count(1)
    context.set_offline(True)
    expect(page.get_by_text("Offline: reconnecting")).to_be_visible(timeout=30_000)
    missed = [inbox.send(title=f"missed {i}") for i in range(3)]
    context.set_offline(False)
    for notification_id in missed:
        expect(page.locator(f'[data-id="{notification_id}"]')).to_have_count(1, timeout=30_000)
    expect(items(page)).to_have_count(4)
    expect(badge(page)).to_have_text("4")


def test_markup_in_a_title_is_text_and_runs_nothing(inbox):
    page = inbox.open()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_bell(page)
    title = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    inbox.send(title=title, body="<b>bold?</b>")
    expect(items(page).first.locator(".title")).to_have_text(title)
    expect(items(page).first.locator("img")).to_have_count(0)
    expect(page.get_by_test_id("notification-toast")).to_contain_text("<img src=x")
    page.wait_for_timeout(300)
    assert dialogs == []


def test_another_users_page_never_shows_it(notify, other_site, context):
    from tests.e2e.conftest import Inbox

    ana = Inbox(notify, other_site, context, "e2e-ana")
    ben = Inbox(notify, other_site, context, "e2e-ben")
    ben_page = ben.open()
    open_bell(ben_page)
    ana.send(title="only for ana")
    ben.send(title="for ben")
    expect(items(ben_page)).to_have_count(1)
    expect(ben_page.get_by_text("only for ana")).to_have_count(0)


def test_keyboard_only(inbox):
    inbox.send(title="by keyboard")
    page = inbox.open()
    bell = page.get_by_test_id("notification-bell")
    bell.focus()
    page.keyboard.press("Enter")
    expect(bell).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("tab", name="Unread")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="All")).to_have_attribute("aria-selected", "true")
    # As a person would: Tab once the list is there (before, focus would leave the panel).
    expect(page.get_by_text("by keyboard")).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(bell).to_have_attribute("aria-expanded", "false")
    expect(bell).to_be_focused()
    expect(bell).to_have_attribute("aria-label", re.compile("1 unread"))


def test_an_origin_not_listed_gets_no_inbox(notify, browser):
    """The same embedding page served from an origin CORS_ORIGINS does not list."""
    notify.call("PUT", "/users/e2e-stranger", {})
    token = notify.call("POST", "/users/e2e-stranger/tokens", {})["token"]
    page = browser.new_page()
    page.set_content("<h1>elsewhere</h1>")
    result = page.evaluate(
        """async ([server, token]) => {
            try {
                const headers = {Authorization: "Bearer " + token};
                await fetch(server + "/me/unread-count", {headers});
                return "allowed";
            } catch (error) { return "refused"; }
        }""",
        [notify.url, token],
    )
    assert result == "refused"
    page.close()


def test_every_string_can_be_replaced(inbox):
    inbox.send(title="übersetzt")
    page = inbox.open()
    page.evaluate(
        """() => {
            const bell = document.querySelector("notification-bell");
            bell.strings = {markAllRead: "Alle gelesen", tabUnread: "Ungelesen"};
        }"""
    )
    open_bell(page)
    expect(page.get_by_test_id("mark-all-read")).to_have_text("Alle gelesen")
    expect(page.get_by_role("tab", name="Ungelesen")).to_be_visible()
    expect(items(page)).to_have_count(1)


def test_the_demo_page_works_under_its_content_security_policy(notify, context):
    page = context.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{notify.url}/")
    page.get_by_test_id("notification-bell").wait_for()
    page.fill("input[name=title]", "from the demo form")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Sent.")).to_be_visible()
    open_bell(page)
    expect(items(page).filter(has_text="from the demo form")).to_have_count(1)
    page.goto(f"{notify.url}/docs")
    expect(page.get_by_text("Send a notification")).to_be_visible()
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []


# Holds what the server sends on the bell's socket until the bell has listed its inbox, so
# the socket connects with the list's newest id as `last_id` (the race a page can lose).
HOLD_THE_SOCKET_UNTIL_LISTED = """
(() => {
  const listed = new Promise((resolve) => {
    const poll = () => {
      if (document.querySelector("notification-bell")?.client?.lastId) resolve();
      else setTimeout(poll, 10);
    };
    poll();
  });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    set onmessage(handler) {
      super.onmessage = (event) => listed.then(() => handler.call(this, event));
    }
    get onmessage() { return super.onmessage; }
  };
})();
"""


def test_a_notification_read_before_the_page_opened_gets_no_toast(inbox, context):
    unread = inbox.send(title="Still unread")
    read = inbox.send(title="Read before the page opened")
    inbox.notify.call("POST", f"/me/notifications/{read}/read", None, inbox.token)
    context.add_init_script(HOLD_THE_SOCKET_UNTIL_LISTED)
    page = inbox.open()
    # The Unread tab listed only `unread`, so the socket asked for what came after it and
    # the connect replayed `read` (already read) before the socket was online.
    last_id = page.evaluate('document.querySelector("notification-bell").client.lastId')
    assert last_id == read, "the connect did not replay the read notification"
    assert page.get_by_test_id("notification-toast").is_hidden()
    expect(badge(page)).to_have_text("1")
    expect(items(page)).to_have_count(1)
    expect(items(page).first).to_have_attribute("data-id", unread)
