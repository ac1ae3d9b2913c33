"""The public status page in Chromium: complete without JavaScript, live with it (static/page.js)."""
# ruff: noqa: F811  (the browser fixtures are imported by name, then taken as parameters)

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from statusd.config import wording
from tests.browser.conftest import browser, daemon, shots, visit  # noqa: F401  (fixtures, used by name)
from tests.support.daemon import Daemon

pytestmark = pytest.mark.browser

LEVEL = "#site-main > .status [data-field=level]"
MESSAGE = "#site-main > [data-field=message]"
ALERTS = Path(__file__).resolve().parent.parent.parent / "alerts"
# The page's words as alerts/labels.yaml has them (the daemon under test reads the same file).
WORDS = {lang: wording.load(ALERTS).group("page", lang, "en") for lang in ("fr", "en", "sv")}


def _published(daemon: Daemon, level: str, within: float = 5.0) -> None:
    """Wait until the daemon's status.json says `level` for main (bounded)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{daemon.url}/status.json", timeout=5) as answer:
            if json.load(answer)["sites"]["main"]["level"] == level:
                return
        time.sleep(0.05)
    raise AssertionError(f"status.json did not say {level} within {within:g} s")


class TestLivePage:
    """A change reaches an open status page without a reload, in the page's language."""

    @pytest.mark.parametrize("lang", ["fr", "en", "sv"])
    def test_level_message_and_updates_follow(self, lang: str, daemon: Daemon, visit: Any, shots: Any) -> None:
        seen = visit(f"{daemon.url}/?lang={lang}")
        page = seen.page
        page.wait_for_function("() => !!document.querySelector('body > p[role=status]')")
        assert page.locator(LEVEL).text_content() == WORDS[lang]["open"]
        page.evaluate("() => { window.statusdStillHere = true; }")  # gone if the page reloads

        daemon.cli("set", "main", "closed", "-m", f"{lang}:Message {lang} : dégât des eaux.")
        returned = time.monotonic()
        page.locator(LEVEL).filter(has_text=WORDS[lang]["closed"]).wait_for(timeout=5000)
        took = time.monotonic() - returned
        assert took < 2.0, f"the page took {took:.3f} s"
        assert page.locator(MESSAGE).text_content() == f"Message {lang} : dégât des eaux."
        assert page.locator("#site-main").get_attribute("data-level") == "closed"
        assert page.evaluate("window.statusdStillHere === true"), "the page reloaded"
        region = page.locator("body > p[role=status]").text_content() or ""
        assert WORDS[lang]["closed"] in region
        page.locator("#recent-updates [data-section=updates] li").first.wait_for()
        assert seen.csp_errors() == []
        shots(page, f"live-{lang}")

    def test_heartbeats_and_other_changes_announce_nothing_new(self, daemon: Daemon, visit: Any) -> None:
        page = visit(f"{daemon.url}/?lang=en").page
        page.wait_for_function("() => !!document.querySelector('body > p[role=status]')")
        daemon.cli("set", "main", "closed", "-m", "en:Closed today.")
        page.locator(LEVEL).filter(has_text="Closed").wait_for(timeout=5000)
        said = page.locator("body > p[role=status]").text_content()
        assert said == "Central Library — Closed"
        daemon.cli("set", "main", "closed", "-m", "en:Closed today.")  # the same facts again
        page.wait_for_timeout(800)
        assert page.locator("body > p[role=status]").text_content() == said


class TestWithoutJavaScript:
    """With JavaScript off the page still says everything."""

    def test_everything_is_in_the_html(self, daemon: Daemon, visit: Any) -> None:
        daemon.cli("set", "main", "closed", "-m", "fr:Fermeture exceptionnelle.")
        _published(daemon, "closed")  # `set` returns once written; the daemon publishes a moment later
        page = visit(f"{daemon.url}/?lang=fr", java_script_enabled=False).page
        assert page.locator(LEVEL).text_content() == WORDS["fr"]["closed"]
        assert page.locator(MESSAGE).text_content() == "Fermeture exceptionnelle."
        assert page.locator("body > p[role=status]").count() == 0
