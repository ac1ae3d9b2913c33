"""The relay to the nchan hub against a fake hub as harsh as a real one: stalls, HTML errors, forgetting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from statusd.web import hub as hub_module
from statusd.web.hub import Relay

pytestmark = pytest.mark.e2e


class FakeHub:
    """nchan's publisher location: POST stores a message, GET tells how many; `mode` misbehaves."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, str]] = []  # (channel, body, X-EventSource-Event)
        self.mode = "ok"  # ok | stall | html500 | forget
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/pub/{channel}", self.handle)
        # A stalled request is cut at once when the test ends.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/pub/{{channel}}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "stall":
            await asyncio.sleep(3600)
        if self.mode == "html500":
            return web.Response(status=500, text="<html><body>Internal Server Error</body></html>",
                                content_type="text/html")
        channel = request.match_info["channel"]
        held = [m for m in self.messages if m[0] == channel]
        if request.method == "GET":
            if not held or self.mode == "forget":
                return web.Response(status=404)
            return web.json_response({"messages": len(held), "subscribers": 0})
        body = await request.read()
        if self.mode == "forget":
            self.messages.clear()
            self.mode = "ok"
        self.messages.append((channel, body, request.headers.get("X-EventSource-Event", "")))
        return web.json_response({"messages": len(held) + 1}, status=202)


@pytest.fixture
async def fake_hub() -> AsyncIterator[FakeHub]:
    hub = FakeHub()
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short timeouts and backoff, so that an outage and its end fit in a test."""
    monkeypatch.setattr(hub_module, "TIMEOUT", 0.2)
    monkeypatch.setattr(hub_module, "BACKOFF", (0.05, 0.2))
    monkeypatch.setattr(hub_module, "PROBE", 0.2)


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.01)


class TestRelay:
    """Each event reaches the hub in order; an outage is said once and ends with the latest event."""

    async def test_in_order_as_status_events(self, fake_hub: FakeHub) -> None:
        relay = Relay(lambda: fake_hub.url)
        task = asyncio.ensure_future(relay.run())
        try:
            for i in range(5):
                relay.submit(1000 + i, b'{"n":%d}' % i)
            await until(lambda: len(fake_hub.messages) == 5)
        finally:
            task.cancel()
        assert fake_hub.messages == [("all", b'{"n":%d}' % i, "status") for i in range(5)]
        assert relay.trouble is None

    @pytest.mark.parametrize("mode", ["stall", "html500"])
    async def test_outage_logged_once_then_latest(self, fake_hub: FakeHub, mode: str) -> None:
        fake_hub.mode = mode
        relay = Relay(lambda: fake_hub.url)
        with capture_logs() as logs:
            task = asyncio.ensure_future(relay.run())
            try:
                for i in range(20):
                    started = time.monotonic()
                    relay.submit(i, b'{"n":%d}' % i)
                    assert time.monotonic() - started < 0.01  # submitting never waits for the hub
                    await asyncio.sleep(0.03)
                await until(lambda: relay.trouble is not None)
                await asyncio.sleep(0.5)  # several failed retries
                fake_hub.mode = "ok"
                await until(lambda: relay.trouble is None and fake_hub.messages)
                await asyncio.sleep(0.3)
            finally:
                task.cancel()
        events = [entry["event"] for entry in logs]
        assert events.count("hub_unreachable") == 1 and events.count("hub_restored") == 1
        # Only the latest snapshot matters after an outage: no replay of stale ones.
        assert fake_hub.messages[-1][1] == b'{"n":19}'
        assert len(fake_hub.messages) <= 2
        assert all("<html" not in str(entry) for entry in logs)

    async def test_hub_that_forgot_gets_the_latest_again(self, fake_hub: FakeHub) -> None:
        relay = Relay(lambda: fake_hub.url)
        task = asyncio.ensure_future(relay.run())
        try:
            relay.submit(1, b'{"n":1}')
            await until(lambda: len(fake_hub.messages) == 1)
            fake_hub.messages.clear()  # nginx restarted: nchan's memory is gone
            await until(lambda: len(fake_hub.messages) == 1)
        finally:
            task.cancel()
        assert fake_hub.messages == [("all", b'{"n":1}', "status")]

    async def test_no_hub_no_work(self) -> None:
        relay = Relay(lambda: None)
        task = asyncio.ensure_future(relay.run())
        try:
            relay.submit(1, b"{}")
            await asyncio.sleep(0.3)
        finally:
            task.cancel()
        assert relay.published == 0 and relay.trouble is None

    async def test_a_url_the_client_cannot_use_is_trouble_not_a_crash(self) -> None:
        relay = Relay(lambda: "http://127.0.0.1:99999/pub/{channel}")  # a port past 65535
        with capture_logs() as logs:
            task = asyncio.ensure_future(relay.run())
            try:
                relay.submit(1, b"{}")
                await until(lambda: relay.trouble is not None)
                await asyncio.sleep(0.3)
                assert not task.done()  # still trying, with backoff
            finally:
                task.cancel()
        assert [e["event"] for e in logs].count("hub_unreachable") == 1
