"""axe-core's WCAG 2.1 A/AA rules in Chromium: the status page and a host page with the banner."""
# ruff: noqa: F811  (the browser fixtures are imported by name, then taken as parameters)

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (  # noqa: F401  (fixtures, used by name)
    PHONE,
    HostSite,
    axe_violations,
    browser,
    daemon,
    host,
    shots,
    visit,
)
from tests.support.daemon import Daemon

pytestmark = pytest.mark.browser

# axe is injected as a script tag, which the pages' strict CSP would refuse: these contexts
# bypass CSP. The banner's styles under a CSP are checked in test_browser_banner.py.
AXE_CONTEXT = {"bypass_csp": True}

STATES = [
    ("closed", ("main", "closed", "-m", "fr:Fermeture exceptionnelle : dégât des eaux.",
                "--until", "2031-11-26 10:00")),
    ("limited", ("main", "limited", "-m", "fr:Le 2e étage est fermé pour travaux.")),
    ("emergency", ("main", "emergency", "-m", "fr:Évacuation en cours : suivez les consignes.")),
]


class TestBannerAccessibility:
    """A host page with the banner passes axe in every state the banner shows."""

    @pytest.mark.parametrize(("name", "change"), STATES, ids=[name for name, _ in STATES])
    def test_no_violations(self, name: str, change: tuple[str, ...], daemon: Daemon, host: HostSite,
                           visit: Any, shots: Any) -> None:
        daemon.cli("set", *change)
        daemon.cli("set", "main/printing", "limited", "-m", "fr:Une imprimante sur deux est en panne.")
        for viewport, tag in ((None, "desktop"), (PHONE, "phone")):
            page = visit(host.url("script.html"), viewport=viewport, **AXE_CONTEXT).page
            page.wait_for_function(
                "() => document.querySelector('statusd-banner')?.shadowRoot?.textContent.includes('imprimante')")
            page.wait_for_timeout(400)  # the fade-in: contrast is measured on the settled colours
            assert axe_violations(page) == []
            shots(page, f"{name}-{tag}", full_page=False)


class TestStatusPageAccessibility:
    """The public status page passes axe, with a closure, a notice and everything open."""

    @pytest.mark.parametrize("lang", ["fr", "en", "sv"])
    def test_no_violations(self, lang: str, daemon: Daemon, visit: Any, shots: Any) -> None:
        daemon.cli("set", "main", "closed", "-m", "fr:Fermeture exceptionnelle.", "-m", "en:Closed today.",
                   "--until", "2031-11-26 10:00")
        daemon.cli("set", "main/wifi", "limited", "-m", "en:Slow on the 3rd floor.")
        page = visit(f"{daemon.url}/?lang={lang}", **AXE_CONTEXT).page
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.lang") == lang
        assert axe_violations(page) == []
        shots(page, f"status-page-{lang}")
