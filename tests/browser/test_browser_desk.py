"""The desk page in Chromium on a 360 × 780 phone: log in, preset, preview, send, deliveries, undo."""
# ruff: noqa: F811  (the browser fixtures are imported by name, then taken as parameters)

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.browser.conftest import HostSite, axe_violations, browser, shots  # noqa: F401
from tests.desk.server import PASSWORD, DeskServer, start

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 360, "height": 780}


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskServer]:
    server = start(tmp_path_factory.mktemp("desk-page"))
    try:
        yield server
    finally:
        server.daemon.kill()


def _login(browser: Browser, desk: DeskServer, account: str, **options: Any) -> Page:
    page = browser.new_context(viewport=PHONE, **options).new_page()
    page.goto(f"{desk.url}/desk/?lang=en")
    page.get_by_label("Account").fill(account)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("text=Log out")
    return page


class TestFlipMain:
    """A desk account flips main closed with a preset, sees the preview, sends, sees it sent, undoes."""

    def test_the_whole_flip(self, browser: Browser, desk: DeskServer, shots: Any) -> None:
        host = HostSite(desk.daemon).start()
        try:
            banner = browser.new_context().new_page()
            banner.goto(host.url("script.html"))
            page = _login(browser, desk, "main-desk")
            cookie = next(c for c in page.context.cookies() if c["name"] == "statusd_desk")
            assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
            card = page.locator("#site-main")
            card.get_by_label("Preset").select_option("power")  # desk.js fills the level and messages
            assert card.locator("#level-main-closed").is_checked()
            assert "Power cut" in card.get_by_label("Message (en)").input_value()
            card.get_by_role("button", name="Preview").click()
            preview = page.locator("#site-main .preview")
            preview.wait_for()
            assert "Coupure de courant" in preview.inner_text() and "characters" in preview.inner_text()
            shots(page, "preview")
            page.locator("#site-main").get_by_role("button", name="Send").click()
            page.wait_for_selector("#flash")
            assert "main: closed — written to" in page.locator("#flash").inner_text()
            page.wait_for_selector("#site-main .state-sent", timeout=15_000)
            assert "console" in page.locator("#site-main .deliveries").inner_text()
            assert "by Main desk (main-desk)" in page.locator("#site-main .last").inner_text()
            banner.wait_for_function(
                "() => document.querySelector('statusd-banner')?.shadowRoot?.textContent.includes('Coupure')",
                timeout=15_000)
            shots(page, "sent")
            page.locator("#site-main").get_by_role("button", name="Undo this update").click()
            page.wait_for_selector("#flash")
            assert "Took back main → closed" in page.locator("#flash").inner_text()
            assert "level: open" in (desk.root / "status.yaml").read_text().split("annexe")[0]
        finally:
            host.stop()


class TestOnlyOwnSites:
    """An annexe desk account does not see main, and the API refuses it main with a 403."""

    def test_annexe_desk(self, browser: Browser, desk: DeskServer) -> None:
        page = _login(browser, desk, "annexe-desk")
        assert page.locator("#site-annexe").count() == 1
        assert page.locator("#site-main").count() == 0
        status, answer = desk.call("PUT", "/api/v1/status/main", {"level": "closed", "messages": ["fr:x"]},
                                   token=desk.tokens["annexe-desk"])
        assert status == 403 and "not main" in answer["error"]

    def test_a_form_without_the_csrf_token_is_refused(self, browser: Browser, desk: DeskServer) -> None:
        page = _login(browser, desk, "annexe-desk")
        before = desk.state()
        answer = page.context.request.post(f"{desk.url}/desk/change", form={
            "target": "annexe", "level": "closed", "message_fr": "x", "action": "send", "csrf": "wrong"})
        assert answer.status == 403
        answer = page.context.request.post(f"{desk.url}/desk/change", form={
            "target": "annexe", "level": "closed", "message_fr": "x", "action": "send"})
        assert answer.status == 403
        assert desk.state() == before


class TestAccessibility:
    """axe-core finds no WCAG 2.1 AA violation on the desk pages, in each language."""

    @pytest.mark.parametrize("lang", ["fr", "en", "sv"])
    def test_login_and_desk(self, browser: Browser, desk: DeskServer, lang: str) -> None:
        page = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()  # axe comes in a script tag
        page.goto(f"{desk.url}/desk/?lang={lang}")
        assert axe_violations(page) == []
        page.locator("#account").fill("boss")
        page.locator("#password").fill(PASSWORD)
        page.locator("form.login button").click()
        page.wait_for_selector("#site-main")
        assert axe_violations(page) == []
        page.locator("#site-annexe button[value=preview]").click()
        page.wait_for_selector("#site-annexe .preview, #site-annexe .error")
        assert axe_violations(page) == []

    def test_enrol_page(self, browser: Browser, desk: DeskServer) -> None:
        page = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
        page.goto(f"{desk.url}/desk/enrol/not-a-code?lang=sv")
        assert axe_violations(page) == []


class TestWithoutJavaScript:
    """Plain forms do it all: the preset button fills the card, send, refresh shows the deliveries."""

    def test_flip_annexe_without_javascript(self, browser: Browser, desk: DeskServer) -> None:
        page = _login(browser, desk, "boss", java_script_enabled=False)
        card = page.locator("#site-annexe")
        card.get_by_label("Preset").select_option("closed-today")
        card.get_by_role("button", name="Use").click()
        card = page.locator("#site-annexe")
        assert card.locator("#level-annexe-closed").is_checked()
        assert "closed for the day" in card.get_by_label("Message (en)").input_value()
        card.get_by_role("button", name="Send").click()
        assert "annexe: closed — written to" in page.locator("#flash").inner_text()
        for _ in range(100):  # what a person does without JavaScript: refresh until it says sent
            page.locator("#site-annexe").get_by_role("link", name="Refresh").click() \
                if page.locator("#site-annexe .last").count() else page.goto(f"{desk.url}/desk/?lang=en")
            if page.locator("#site-annexe .state-sent").count():
                break
            page.wait_for_timeout(100)
        assert "by The boss (boss)" in page.locator("#site-annexe .last").inner_text()
        assert page.locator("#site-annexe .state-sent").count() >= 1
        # The Refresh link reloads: its address is new each time (a #fragment alone would only scroll).
        refresh = page.locator("#site-annexe").get_by_role("link", name="Refresh")
        before = refresh.get_attribute("href")
        page.wait_for_timeout(5)
        refresh.click()
        page.wait_for_load_state("load")
        assert page.locator("#site-annexe").get_by_role("link", name="Refresh").get_attribute("href") != before


class TestSameSite:
    """A form on another site posting to the desk carries no session cookie, so it changes nothing."""

    def test_cross_site_post_has_no_cookie(self, browser: Browser, desk: DeskServer) -> None:
        # *.localhost are loopback and secure contexts in Chromium, and each name is a site of its own.
        origin = f"http://desk.localhost:{desk.daemon.port}"
        context = browser.new_context(viewport=PHONE)
        sent: dict[str, str | None] = {}
        context.on("request", lambda r: sent.__setitem__(f"{r.method} {r.url}", r.all_headers().get("cookie"))
                   if r.url.startswith(origin) else None)
        page = context.new_page()
        page.goto(f"{origin}/desk/?lang=en")
        page.locator("#account").fill("boss")
        page.locator("#password").fill(PASSWORD)
        page.locator("form.login button").click()
        page.wait_for_selector("#site-main")
        assert "statusd_desk=" in (sent[f"GET {origin}/desk/?lang=en"] or "")  # same site: the cookie goes
        before = desk.state()
        evil = f"""<!doctype html><title>x</title><form id="f" method="post" action="{origin}/desk/change">
            <input name="target" value="main"><input name="level" value="closed">
            <input name="message_fr" value="Piraté"><input name="action" value="send"></form>
            <script>document.getElementById("f").submit()</script>"""
        page.route("http://evil.localhost/**", lambda route: route.fulfill(body=evil, content_type="text/html"))
        with page.expect_navigation(url=f"{origin}/desk/**"):
            page.goto("http://evil.localhost/")
        assert "statusd_desk=" not in (sent[f"POST {origin}/desk/change"] or "")
        page.wait_for_load_state()
        assert desk.state() == before
        context.close()
