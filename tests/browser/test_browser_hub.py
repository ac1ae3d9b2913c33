"""The real banner.js in Chromium, loaded from nginx and live through nchan's /events, across an nginx restart."""
# ruff: noqa: F811  (the fixtures are imported by name, then taken as parameters)

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import HostSite, Visit, browser, visit  # noqa: F401  (fixtures, used by name)
from tests.browser.test_browser_banner import SHADOW, wait_text
from tests.web.test_web_hub import Stack, stack  # noqa: F401  (fixture, used by name)

pytestmark = pytest.mark.browser

CLOSED = "Fermeture exceptionnelle : panne de courant."
LIMITED = "Le 2e étage est fermé ; les autres étages sont ouverts."


@pytest.fixture
def nginx_host(stack: Stack) -> Iterator[HostSite]:
    """A library's page on another origin embedding banner.js from nginx, as the README tells."""
    site = HostSite(stack.daemon)
    site.daemon_origin = site.connect = stack.nginx.url
    site.start()
    yield site
    site.stop()


class TestBannerThroughNginx:
    """Only the URL changes: the banner reads nginx's /events, and catches up after nginx restarts."""

    def test_live_and_after_restart(self, stack: Stack, nginx_host: HostSite, visit: Any) -> None:
        seen: Visit = visit(nginx_host.url("script.html"))
        page = seen.page
        page.wait_for_function(f"() => !!({SHADOW})('main')?.querySelector('[role=status]')", arg=None)

        stack.set("main", "closed", "-m", f"fr:{CLOSED}")
        wait_text(page, CLOSED, timeout=3)

        stack.nginx.stop()
        stack.set("main", "limited", "-m", f"fr:{LIMITED}")  # while nginx is down
        stack.nginx.start()
        wait_text(page, LIMITED, timeout=20)
        wait_text(page, CLOSED, present=False)

        daemon = urlsplit(stack.daemon.url).netloc
        assert not [u for u in seen.requests if urlsplit(u).netloc == daemon], "all through nginx"
        assert any(u.startswith(f"{stack.nginx.url}/events") for u in seen.requests)
        assert not seen.csp_errors()
