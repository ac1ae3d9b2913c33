""""Notify me" in Chromium: the button and choices per site, the permission request, and the clear
message a browser without a push service (an offline test machine) shows; CSP clean."""
# ruff: noqa: F811  (the browser fixtures are imported by name, then taken as parameters)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statusd.channels.webpush_keys import generate
from statusd.channels.webpush_store import store_file
from statusd.config import wording
from tests.browser.conftest import axe_violations, browser, shots, visit  # noqa: F401  (fixtures, used by name)
from tests.conftest import WriteConfig
from tests.push.conftest import push_channels
from tests.support.daemon import Daemon

pytestmark = pytest.mark.browser

ALERTS = Path(__file__).resolve().parent.parent.parent / "alerts"
WORDS = {lang: wording.load(ALERTS).group("follow", lang, "en") for lang in ("fr", "en")}
BOX = "#follow-main"
SAID = f"{BOX} [data-follow-message]"


@pytest.fixture
def push_daemon(write_config: WriteConfig, tmp_path: Path) -> Iterator[Daemon]:
    key = tmp_path / "vapid.pem"
    key.write_text(generate()[0], encoding="ascii")
    running = Daemon(write_config(channels=push_channels(key)), tmp_path / "state").start()
    yield running
    running.kill()


def opened(visit: Any, url: str, **options: Any) -> Any:
    seen = visit(url, **options)
    seen.page.locator(BOX).wait_for(state="visible")
    seen.page.locator(f"{BOX} summary").click()
    return seen


class TestTheForm:
    """Each site has a visible "Notify me" with the two kinds, the push languages and the privacy note."""

    def test_button_choices_and_note(self, push_daemon: Daemon, visit: Any, shots: Any) -> None:
        seen = opened(visit, f"{push_daemon.url}/?lang=en")
        page = seen.page
        assert page.locator("details[data-follow-site]").count() == 2
        assert page.locator(f"{BOX} summary").inner_text().startswith(WORDS["en"]["button"])
        assert page.locator(f"{BOX} input[name=kinds]:checked").get_attribute("value") == "status"
        page.locator(BOX).get_by_label(WORDS["en"]["all"]).check()
        assert page.locator(f"{BOX} input[name=kinds]:checked").get_attribute("value") == "all"
        options = page.locator(f"{BOX} select[name=language] option")
        assert [options.nth(i).get_attribute("value") for i in range(options.count())] == ["fr", "en"]
        assert page.locator(f"{BOX} select[name=language]").input_value() == "en"
        assert page.locator(f"{BOX} .privacy").inner_text() == WORDS["en"]["privacy"]
        assert seen.csp_errors() == []
        shots(page, "follow-form")

    def test_accessible(self, push_daemon: Daemon, visit: Any) -> None:
        page = opened(visit, f"{push_daemon.url}/?lang=fr", bypass_csp=True).page  # axe comes in a script tag
        assert axe_violations(page) == []

    def test_no_script_no_button(self, push_daemon: Daemon, visit: Any) -> None:
        page = visit(f"{push_daemon.url}/?lang=en", java_script_enabled=False).page
        assert not page.locator(BOX).is_visible(), "a button that cannot work is not shown"


class TestPermission:
    """The browser is asked; a refusal and a missing push service each get their own clear sentence."""

    def test_granted_but_no_push_service(self, push_daemon: Daemon, visit: Any, shots: Any) -> None:
        seen = opened(visit, f"{push_daemon.url}/?lang=fr", permissions=["notifications"])
        page = seen.page
        page.locator(f"{BOX} [data-follow-start]").click()
        page.locator(SAID).filter(has_text=WORDS["fr"]["unsupported"]).wait_for(timeout=20000)
        assert page.evaluate("Notification.permission") == "granted"
        registered = page.evaluate("navigator.serviceWorker.getRegistration('./').then(r => r && r.scope)")
        assert registered == f"{push_daemon.url}/"
        assert not store_file(push_daemon.state_dir).exists() or _count(push_daemon) == 0
        assert seen.csp_errors() == []
        shots(page, "no-push-service")

    def test_not_granted(self, push_daemon: Daemon, visit: Any) -> None:
        page = opened(visit, f"{push_daemon.url}/?lang=en").page
        page.locator(f"{BOX} [data-follow-start]").click()
        page.locator(SAID).filter(has_text=WORDS["en"]["denied"]).wait_for(timeout=10000)

    def test_no_push_manager_at_all(self, push_daemon: Daemon, visit: Any) -> None:
        seen = visit("about:blank")
        seen.page.add_init_script("delete window.PushManager;")
        seen.page.goto(f"{push_daemon.url}/?lang=en")
        seen.page.locator(f"{BOX} summary").click()
        seen.page.locator(f"{BOX} [data-follow-start]").click()
        seen.page.locator(SAID).filter(has_text=WORDS["en"]["unsupported"]).wait_for(timeout=5000)



class TestLink:
    """A link to the page's #follow-SITE (from a library's own page, beside its banner) opens that form."""

    def test_link_opens_the_form(self, push_daemon: Daemon, visit: Any) -> None:
        page = visit(f"{push_daemon.url}/?lang=en#follow-main").page
        page.locator(f"{BOX} [data-follow-start]").wait_for(state="visible")
        assert not page.locator("#follow-annexe [data-follow-start]").is_visible()


def _count(daemon: Daemon) -> int:
    import sqlite3

    db = sqlite3.connect(store_file(daemon.state_dir))
    try:
        return int(db.execute("SELECT count(*) FROM subscriptions").fetchone()[0])
    finally:
        db.close()
