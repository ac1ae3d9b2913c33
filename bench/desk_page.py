"""The desk page: from tapping "Send" in Chromium to the banner changing on a host page.

Both pages are open in Debian's Chromium (360 × 780 for the desk); the time is
taken in the browser's own clock (one browser, one clock), from the click to
the banner's shadow DOM holding the new message.

    python bench/desk_page.py --flips 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import Summary, machine
from fanout import format_rows
from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, HostSite
from tests.desk.server import PASSWORD, start

TARGET_MS = 500.0


def measure(flips: int) -> list[tuple[str, Summary, str]]:
    with tempfile.TemporaryDirectory(prefix="statusd-bench-") as tmp:
        desk = start(Path(tmp) / "desk")
        host = HostSite(desk.daemon).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
                banner = browser.new_page()
                banner.goto(host.url("script.html"))
                page = browser.new_page(viewport={"width": 360, "height": 780})
                page.goto(f"{desk.url}/desk/?lang=en")
                page.locator("#account").fill("boss")
                page.locator("#password").fill(PASSWORD)
                page.locator("form.login button").click()
                page.wait_for_selector("#site-main")
                times = [_flip(page, banner, n) for n in range(flips)]
                browser.close()
        finally:
            host.stop()
            desk.daemon.kill()
    return [("desk page send -> banner on a host page", Summary.of(times), f"< {TARGET_MS:g} ms")]


def _flip(page: object, banner: object, n: int) -> float:
    level = "closed" if n % 2 == 0 else "limited"
    text = f"Bench flip {n + 1}"
    card = page.locator("#site-main")  # type: ignore[attr-defined]
    card.locator(f"label[for=level-main-{level}]").click()
    card.locator("#message-main-fr").fill(text)
    clicked = banner.evaluate("() => performance.timeOrigin + performance.now()")  # type: ignore[attr-defined]
    card.locator("button[value=send]").click(no_wait_after=True)
    banner.wait_for_function(  # type: ignore[attr-defined]
        "(t) => document.querySelector('statusd-banner')?.shadowRoot?.textContent.includes(t)", arg=text,
        polling="raf", timeout=15_000)
    seen = banner.evaluate("() => performance.timeOrigin + performance.now()")  # type: ignore[attr-defined]
    page.wait_for_selector("#flash")  # type: ignore[attr-defined]
    return float(seen - clicked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/desk_page.py", description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"desk page, {args.flips} flips; {machine()}")
    print(format_rows(measure(args.flips)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
