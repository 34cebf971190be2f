"""Pictures of the bell for the README: closed and open, light and dark, written to docs/."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_render_the_bell(browser, notify, other_site, scheme):
    from tests.e2e.conftest import Inbox

    context = browser.new_context(color_scheme=scheme, viewport={"width": 520, "height": 560})
    try:
        inbox = Inbox(notify, other_site, context, f"pictures-{scheme}")
        inbox.send(
            title="Ana replied to your comment",
            body="Looks good to me, ship it!",
            category="comment",
        )
        inbox.send(title="Build #482 passed", body="main is green again", category="ci")
        read = inbox.send(title="Weekly digest", body="12 new posts in your groups")
        notify.call("POST", f"/me/notifications/{read}/read", None, inbox.token)
        page = inbox.open()
        page.add_style_tag(
            content=f"body {{ font-family: system-ui; margin: 24px; "
            f"background: {'#111827' if scheme == 'dark' else '#fff'}; "
            f"color: {'#f9fafb' if scheme == 'dark' else '#111'}; }}"
        )
        expect(page.get_by_test_id("notification-badge")).to_have_text("2")
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / f"bell-closed-{scheme}.png"))
        page.get_by_test_id("notification-bell").click()
        page.get_by_role("tab", name="All").click()
        expect(page.get_by_test_id("notification-item")).to_have_count(3)
        page.screenshot(path=str(DOCS / f"bell-open-{scheme}.png"))
        assert (DOCS / f"bell-open-{scheme}.png").stat().st_size > 0
    finally:
        context.close()
