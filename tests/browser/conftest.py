"""Playwright on Debian's Chromium, a library's web page on another origin, and axe-core.

The browser tests live in tests/test_browser_*.py and import these fixtures by name.
Nothing here downloads a browser: tests/browser/install.sh installs Debian's `chromium`
and axe-core from npm when they are missing, and the fixtures run it once if needed.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.conftest import WriteConfig
from tests.support.daemon import REPO, Daemon

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
CHROMIUM = Path("/usr/bin/chromium")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 320, "height": 640}
# 200 % zoom of a 1280 × 900 window: half as many CSS pixels, each drawn twice as large.
ZOOM_200: ViewportSize = {"width": 640, "height": 450}


def ensure_installed() -> None:
    """Run install.sh when Chromium or axe-core is missing (it installs only what is)."""
    if not CHROMIUM.exists() or not AXE.exists():
        subprocess.run(["bash", str(HERE / "install.sh")], check=True, timeout=900)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, one per test module."""
    ensure_installed()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def daemon(write_config: WriteConfig, tmp_path: Path) -> Iterator[Daemon]:
    """The real daemon on its own port, everything open at first."""
    running = Daemon(write_config(), tmp_path / "state").start()
    yield running
    running.kill()


class HostSite:
    """A library's own web site on another local origin, sending a strict CSP, embedding the banner.

    `connect` is the CSP connect-src it allows beside 'self' (the daemon's origin by default).
    """

    def __init__(self, daemon: Daemon) -> None:
        self.daemon_origin = daemon.url
        self.connect = daemon.url
        self.port = 0  # bound by _start, in the serving thread
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="host-site", daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, page: str) -> str:
        return f"{self.origin}/{page}"

    def csp(self) -> str:
        return (f"default-src 'self'; script-src 'self' {self.daemon_origin}; "
                f"connect-src 'self' {self.connect}; style-src 'self'; img-src 'self'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                "require-trusted-types-for 'script'")

    def start(self) -> HostSite:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = PAGES / name
        if not re.fullmatch(r"[a-z]+\.(html|css|js)", name) or not path.exists():
            raise web.HTTPNotFound()
        body = path.read_text(encoding="utf-8").replace("{daemon}", self.daemon_origin)
        kind = {"html": "text/html", "css": "text/css", "js": "text/javascript"}[path.suffix[1:]]
        headers = {"Content-Security-Policy": self.csp(), "Cache-Control": "no-store"}
        return web.Response(text=body, content_type=kind, charset="utf-8", headers=headers)


@pytest.fixture
def host(daemon: Daemon) -> Iterator[HostSite]:
    site = HostSite(daemon).start()
    yield site
    site.stop()


@dataclass
class Visit:
    """One browser context and page, with every request and console message it made."""

    context: BrowserContext
    page: Page
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def csp_errors(self) -> list[str]:
        """CSP violations, as the host page recorded them and as Chromium logged them."""
        recorded: list[str] = self.page.evaluate("window.statusdTestViolations || []")
        logged = [m for m in self.console if "Content Security Policy" in m or "Trusted Type" in m]
        return recorded + logged


@pytest.fixture
def visit(browser: Browser) -> Iterator[Any]:
    """Open pages in fresh contexts: `visit(url, viewport=..., **context_options)`."""
    contexts: list[BrowserContext] = []

    def open_page(url: str, viewport: ViewportSize | None = None, **options: Any) -> Visit:
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        contexts.append(context)
        page = context.new_page()
        seen = Visit(context, page)
        page.on("request", lambda request: seen.requests.append(request.url))
        page.on("console", lambda message: seen.console.append(_console(message)))
        page.goto(url)
        return seen

    yield open_page
    for context in contexts:
        context.close()


def _console(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Any:
    """`shots(page, "step")` saves test-artifacts/<test>-<step>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)

    def shoot(page: Page, step: str, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{prefix}-{step}.png"
        # Finite animations jump to their end: the picture shows the banner as it settles.
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return shoot


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A and AA violations on the page, one line per failing node."""
    page.add_script_tag(path=str(AXE))
    results: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                                    resultTypes: ["violations"]});
            return result.violations.map(v => ({id: v.id, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + " — " + n.failureSummary)}));
        }""",
        WCAG_AA,
    )
    return [f"{v['id']} ({v['help']}): {node}" for v in results for node in v["nodes"]]
