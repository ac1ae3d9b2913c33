"""The embeddable banner in a real Chromium, on a host page of another origin, against the real daemon."""
# ruff: noqa: F811  (the browser fixtures are imported by name, then taken as parameters)

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import (  # noqa: F401  (fixtures, used by name)
    PHONE,
    ZOOM_200,
    HostSite,
    Visit,
    browser,
    daemon,
    host,
    shots,
    visit,
)
from tests.support.daemon import REPO, Daemon

pytestmark = pytest.mark.browser

BANNER_JS = REPO / "statusd" / "web" / "static" / "banner.js"
CLOSED_FR = "Fermeture exceptionnelle : dégât des eaux au rez-de-chaussée."
LIMITED_FR = "Le 2e étage est fermé pour travaux ; les autres étages sont ouverts."
WATCH = 1.0  # the promise: on the page within a second of `statusd set`

SHADOW = "(site) => document.querySelector(`statusd-banner[site=${site}]`)?.shadowRoot"


def shadow_text(page: Page, site: str = "main") -> str:
    text: str = page.evaluate(f"(site) => ({SHADOW})(site)?.textContent ?? ''", site)
    return text


def wait_text(page: Page, needle: str, present: bool = True, timeout: float = 5.0, site: str = "main") -> None:
    """Wait, checking on every frame, until the banner's text has (or has lost) `needle`."""
    page.wait_for_function(
        f"([site, needle, present]) => ((({SHADOW})(site)?.textContent ?? '').includes(needle)) === present",
        arg=[site, needle, present], polling="raf", timeout=timeout * 1000,
    )


def roles(page: Page, site: str = "main") -> dict[str, list[str]]:
    """The text of each live region in the banner, by role."""
    found: dict[str, list[str]] = page.evaluate(
        f"""(site) => {{
            const root = ({SHADOW})(site), out = {{status: [], alert: []}};
            for (const n of root.querySelectorAll('[role=status],[role=alert]'))
                out[n.getAttribute('role')].push(n.textContent);
            return out;
        }}""", site)
    return found


def box(page: Page, site: str = "main") -> dict[str, Any]:
    """The banner box's size and colours, as drawn."""
    found: dict[str, Any] = page.evaluate(
        f"""(site) => {{
            const b = ({SHADOW})(site).querySelector('.b'), s = getComputedStyle(b);
            const r = b.getBoundingClientRect();
            return {{height: r.height, width: r.width, right: r.right, bg: s.backgroundColor,
                    color: s.color, font: s.fontFamily, animation: s.animationName}};
        }}""", site)
    return found


def set_and_time(daemon: Daemon, page: Page, needle: str, *args: str, present: bool = True) -> float:
    """Run `statusd set`; seconds from its return until the banner shows (or drops) `needle`."""
    daemon.cli("set", *args)
    returned = time.monotonic()
    wait_text(page, needle, present)
    return time.monotonic() - returned


def origins(urls: list[str]) -> set[str]:
    return {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in urls if u.startswith("http")}


class TestLive:
    """A change made with `statusd set` reaches a banner on another origin within a second."""

    def test_closed_appears_open_goes_away_and_restart_catches_up(
        self, daemon: Daemon, host: HostSite, visit: Any, shots: Any
    ) -> None:
        seen: Visit = visit(host.url("script.html"))
        page = seen.page
        page.wait_for_function(f"() => !!({SHADOW})('main')?.querySelector('[role=status]')", arg=None)
        assert roles(page) == {"status": [""], "alert": []}
        assert box(page)["height"] == 0
        shots(page, "1-open")

        took = set_and_time(daemon, page, CLOSED_FR, "main", "closed", "-m", f"fr:{CLOSED_FR}",
                            "--until", "2031-11-26 10:00")
        assert took < WATCH, f"the closure took {took:.3f} s to show"
        found = roles(page)
        assert found["status"] == [""] and len(found["alert"]) == 1
        assert "Bibliothèque centrale — Fermé" in found["alert"][0]
        assert "Jusqu’à mercredi 26 novembre 2031" in found["alert"][0]
        shots(page, "2-closed", full_page=False)

        took = set_and_time(daemon, page, CLOSED_FR, "main", "open", present=False)
        assert took < WATCH, f"the reopening took {took:.3f} s to show"
        assert roles(page) == {"status": [""], "alert": []}
        assert box(page)["height"] == 0
        shots(page, "3-reopened")

        daemon.kill()
        daemon.cli("set", "main", "limited", "-m", f"fr:{LIMITED_FR}")  # while it is down
        daemon.start()
        wait_text(page, LIMITED_FR, timeout=10)
        found = roles(page)
        assert found["alert"] == [] and LIMITED_FR in found["status"][0]
        shots(page, "4-after-restart")

        assert origins(seen.requests) <= {host.origin, daemon.url}
        assert seen.context.cookies() == []
        assert seen.csp_errors() == []

    def test_a_change_elsewhere_leaves_the_banner_untouched(
        self, daemon: Daemon, host: HostSite, visit: Any
    ) -> None:
        page = visit(host.url("element.html")).page
        page.wait_for_function(f"() => !!({SHADOW})('annexe')?.querySelector('[role=status]')", arg=None)
        page.evaluate(f"""() => {{
            window.statusdMutations = 0;
            new MutationObserver(r => {{ window.statusdMutations += r.length; }})
                .observe(({SHADOW})('main'), {{subtree: true, childList: true, characterData: true,
                                                attributes: true}});
        }}""")
        # The annexe closes: an event reaches the page, but nothing about `main` changed.
        daemon.cli("set", "annexe", "closed", "-m", "sv:Stängt idag.")
        wait_text(page, "Stängt idag.", site="annexe")
        page.wait_for_timeout(300)
        assert page.evaluate("window.statusdMutations") == 0
        # Now it does change: the notice says so, in the element's language (English).
        daemon.cli("set", "main/wifi", "limited", "-m", "en:Wi-Fi is slow on the 3rd floor.")
        wait_text(page, "Wi-Fi is slow on the 3rd floor.")
        assert page.evaluate("window.statusdMutations") > 0
        assert "Central Library — Open" in roles(page)["status"][0]
        assert "Wi-Fi — Limited service" in roles(page)["status"][0]


class TestRegions:
    """Notices speak politely in a region that was there first; only closures and emergencies alert."""

    def test_the_status_region_is_there_before_its_text(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        page = visit(host.url("script.html")).page
        page.wait_for_function(f"() => !!({SHADOW})('main')?.querySelector('[role=status]')", arg=None)
        page.evaluate(f"() => {{ window.statusdRegion = ({SHADOW})('main').querySelector('[role=status]'); }}")
        daemon.cli("set", "main", "limited", "-m", f"fr:{LIMITED_FR}")
        wait_text(page, LIMITED_FR)
        same = page.evaluate(f"() => window.statusdRegion === ({SHADOW})('main').querySelector('[role=status]')")
        assert same, "the notice went into a new region, which screen readers may not announce"
        assert page.evaluate("window.statusdRegion.isConnected && window.statusdRegion.textContent.length > 0")

    def test_each_level_uses_its_role(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        page = visit(host.url("script.html")).page
        for level, role in (("limited", "status"), ("emergency", "alert"), ("closed", "alert"),
                            ("limited", "status")):
            message = f"Message pour {level} ({role})."
            daemon.cli("set", "main", level, "-m", f"fr:{message}")
            wait_text(page, message)
            found = roles(page)
            other = "alert" if role == "status" else "status"
            assert any(message in text for text in found[role]), (level, found)
            assert all(message not in text for text in found[other]), (level, found)
            assert found["alert"] == [] if role == "status" else len(found["alert"]) == 1


class TestHide:
    """The banner can be hidden (SC 2.2.2), from the keyboard, until its facts change."""

    def test_hide_lasts_until_the_facts_change(self, daemon: Daemon, host: HostSite, visit: Any, shots: Any) -> None:
        daemon.cli("set", "main", "closed", "-m", f"fr:{CLOSED_FR}")
        page = visit(host.url("script.html")).page
        wait_text(page, CLOSED_FR)
        # Keyboard: the link to the status page and the button are reached with Tab.
        reached: list[str] = []
        while "BUTTON:Masquer" not in reached and len(reached) < 6:
            page.keyboard.press("Tab")
            reached.append(page.evaluate(
                "() => { const a = document.activeElement; const s = a.shadowRoot?.activeElement;"
                " return s ? s.tagName + ':' + s.textContent : a.tagName; }"))
        assert reached == ["A:Page d’état", "BUTTON:Masquer"], reached
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => ({SHADOW})('main').querySelector('button').textContent === 'Afficher : Fermé'")
        assert not page.locator("statusd-banner [role=alert]").is_visible()
        shots(page, "hidden", full_page=False)

        page.reload()
        page.wait_for_function(f"() => ({SHADOW})('main')?.querySelector('button')?.textContent === 'Afficher : Fermé'")
        assert not page.locator("statusd-banner [role=alert]").is_visible()

        daemon.cli("set", "main", "emergency", "-m", "fr:Évacuation en cours.")
        wait_text(page, "Évacuation en cours.")
        page.locator("statusd-banner [role=alert]").wait_for(state="visible")
        assert page.locator("statusd-banner button").text_content() == "Masquer"
        assert page.context.cookies() == []


class TestLayout:
    """Readable on a 320 px phone and at 200 % zoom, motion only when welcome, colours the host's."""

    def _check_fits(self, page: Page) -> None:
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the page scrolls sideways"
        drawn = box(page)
        assert drawn["right"] <= page.viewport_size["width"] + 0.5  # type: ignore[index]

    def test_phone_and_zoom(self, daemon: Daemon, host: HostSite, visit: Any, shots: Any) -> None:
        daemon.cli("set", "main", "closed", "-m", f"fr:{CLOSED_FR}", "--until", "2031-11-26 10:00")
        daemon.cli("set", "main/printing", "limited", "-m", "fr:Une imprimante sur deux est en panne.")
        for name, viewport, scale in (("phone-320", PHONE, 1), ("zoom-200", ZOOM_200, 2)):
            page = visit(host.url("script.html"), viewport=viewport, device_scale_factor=scale).page
            wait_text(page, CLOSED_FR)
            page.wait_for_timeout(400)  # the fade-in
            self._check_fits(page)
            shots(page, name)

    def test_reduced_motion_is_respected(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        daemon.cli("set", "main", "limited", "-m", f"fr:{LIMITED_FR}")
        moving = visit(host.url("script.html")).page
        still = visit(host.url("script.html"), reduced_motion="reduce").page
        for page in (moving, still):
            wait_text(page, LIMITED_FR)
        assert box(moving)["animation"] != "none"
        assert box(still)["animation"] == "none"

    def test_colours_come_from_custom_properties_under_a_strict_csp(
        self, daemon: Daemon, host: HostSite, visit: Any, shots: Any
    ) -> None:
        daemon.cli("set", "main", "closed", "-m", f"fr:{CLOSED_FR}")
        plain = visit(host.url("script.html"))
        themed = visit(host.url("themed.html"))
        for seen in (plain, themed):
            wait_text(seen.page, CLOSED_FR)
        # The constructed stylesheet applies under style-src 'self': the default red, then the host's blue.
        assert box(plain.page)["bg"] == "rgb(164, 22, 26)"
        assert box(themed.page)["bg"] == "rgb(0, 43, 92)"
        assert "Verdana" in box(themed.page)["font"]
        assert plain.csp_errors() == [] and themed.csp_errors() == []
        shots(themed.page, "themed", full_page=False)


class TestEmbedding:
    """One line in the head or the body, or the custom element, with no trace left on the host."""

    def test_script_in_head_puts_the_banner_first_in_body(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        page = visit(host.url("head.html")).page
        # data-show-open: even an open library is said to be open.
        wait_text(page, "Central Library — Open")
        first = page.evaluate("document.body.firstElementChild.tagName")
        assert first == "STATUSD-BANNER"
        assert roles(page)["alert"] == []

    def test_no_globals_no_cookies_no_other_origins(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        daemon.cli("set", "main", "closed", "-m", f"fr:{CLOSED_FR}")
        seen = visit(host.url("script.html"))
        wait_text(seen.page, CLOSED_FR)
        added = seen.page.evaluate(
            """() => { const f = document.createElement('iframe'); document.body.append(f);
                       const base = new Set(Object.getOwnPropertyNames(f.contentWindow)); f.remove();
                       return Object.getOwnPropertyNames(window).filter(k => !base.has(k)); }""")
        assert sorted(added) == ["statusdTestViolations"]  # the host page's own test spy only
        assert seen.page.evaluate("!!customElements.get('statusd-banner')")
        assert seen.context.cookies() == []
        assert origins(seen.requests) <= {host.origin, daemon.url}

    def test_polls_status_json_when_the_stream_is_refused(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        host.connect = f"{daemon.url}/status.json"  # this host's CSP lets only status.json through
        seen = visit(host.url("script.html"))
        statuses: list[tuple[str, int, str | None]] = []
        seen.page.on("response", lambda r: statuses.append(
            (r.url, r.status, r.request.all_headers().get("if-none-match"))) if "status.json" in r.url else None)
        daemon.cli("set", "main", "closed", "-m", f"fr:{CLOSED_FR}")
        wait_text(seen.page, CLOSED_FR, timeout=25)
        assert any("connect-src" in error for error in seen.csp_errors())  # /events was refused
        # The polls revalidate what the browser holds (its HTTP cache adds the header). The
        # listener may be attached after the first fetch, so which poll is first is not asserted.
        assert any(etag for _, _, etag in statuses), statuses


class TestSize:
    """banner.js stays small and self-contained."""

    def test_under_ten_kilobytes_and_no_eval(self) -> None:
        source = BANNER_JS.read_text(encoding="utf-8")
        assert len(source.encode("utf-8")) < 10_240  # 10 KiB
        # The SVG namespace is a name, not an address: no request ever goes there.
        code = source.replace('"http://www.w3.org/2000/svg"', "")
        for forbidden in ("eval(", "new Function", "innerHTML", "document.cookie", "localStorage",
                          ".style.", "import(", "http://", "https://", "XMLHttpRequest"):
            assert forbidden not in code, forbidden


class TestFollow:
    """data-follow adds a link to the status page's Notify me form for the banner's site."""

    LINKS = f"() => [...({SHADOW})('main').querySelectorAll('a')].map(a => [a.textContent, a.href])"

    def test_the_link_opens_the_site_form_only_when_asked(self, daemon: Daemon, host: HostSite, visit: Any) -> None:
        daemon.cli("set", "main", "closed", "-m", f"fr:{CLOSED_FR}")
        following = visit(host.url("follow.html")).page
        plain = visit(host.url("script.html")).page
        for page in (following, plain):
            wait_text(page, CLOSED_FR)
        links = following.evaluate(self.LINKS)
        assert ["M’avertir", f"{daemon.url}/?lang=fr#follow-main"] in links, links
        assert all(text != "M’avertir" for text, _ in plain.evaluate(self.LINKS))
