"""The hub relay against a hub that goes away and comes back, as a restarted nginx+nchan does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from statusd.web import hub as hub_module
from statusd.web.hub import Relay

pytestmark = pytest.mark.unit


class Hub:
    """A publisher endpoint that answers 503 to the posts numbered in `refuse`, 201 to the others.

    It numbers what it takes as nchan does, "seconds:n" with n counted within the second, and
    `restart()` forgets every message at once, as a restarted nginx does, without refusing a post.
    """

    def __init__(self, refuse: set[int]) -> None:
        self.refuse = refuse
        self.posts: list[tuple[float, bytes, int]] = []  # (wall-clock time, body, status)
        self.ids: list[str] = []  # the id given each message taken
        self.url = ""
        self._held: list[int] = []  # the seconds of the messages held since the last restart

    def restart(self) -> None:
        self._held = []

    async def post(self, request: web.Request) -> web.Response:
        status = 503 if len(self.posts) in self.refuse else 201
        now = time.time()
        self.posts.append((now, await request.read(), status))
        if status != 201:
            return web.json_response({}, status=status)
        self._held.append(int(now))
        self.ids.append(f"{int(now)}:{self._held.count(int(now)) - 1}")
        return web.json_response({"messages": len(self._held), "last_message_id": self.ids[-1]}, status=status)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": 1})  # it holds a message: no republishing by the probe


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    found = Hub({1})
    app = web.Application()
    app.router.add_post("/pub/{channel}", found.post)
    app.router.add_get("/pub/{channel}", found.get)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}/pub/{{channel}}"
    yield found
    await runner.cleanup()


@contextlib.asynccontextmanager
async def _running(relay: Relay) -> AsyncIterator[None]:
    """The relay's loop for the length of the block, cancelled after."""
    running = asyncio.ensure_future(relay.run())
    try:
        yield
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _accepted(hub: Hub, count: int) -> list[tuple[float, bytes, int]]:
    for _ in range(200):  # bounded: 10 s
        accepted = [p for p in hub.posts if p[2] == 201]
        if len(accepted) >= count:
            return accepted
        await asyncio.sleep(0.05)
    raise AssertionError(f"the hub accepted {len(hub.posts)} posts, not {count}")


class TestRestartedHub:
    async def test_after_a_failure_the_next_message_is_taken_in_a_new_second(self, hub: Hub) -> None:
        # nchan's ids are "seconds:n" with n from 0 after a restart: a message taken in the same
        # second as the one before the restart would repeat its id, and resuming readers skip it.
        # Start early in a second, so that a quick retry would stay in it.
        await asyncio.sleep((1.05 - time.time() % 1) % 1)
        relay = Relay(lambda: hub.url)
        async with _running(relay):
            relay.submit(1, b'{"n": 1}')
            await _accepted(hub, 1)
            relay.submit(2, b'{"n": 2}')  # refused (the hub is restarting), then retried
            first, second = await _accepted(hub, 2)
        assert [p[2] for p in hub.posts] == [201, 503, 201]
        assert second[1] == b'{"n": 2}'
        assert int(second[0]) > int(first[0]), "the retry after a failure waited for the next second"

    async def test_a_restart_no_post_saw_is_told_by_the_id_and_the_latest_published_again(
            self, hub: Hub) -> None:
        # Stopped and started between two changes within one second, the hub refuses nothing but
        # gives the second change the id of the first: readers resuming from it would wait forever.
        hub.refuse = set()
        await asyncio.sleep((1.05 - time.time() % 1) % 1)
        relay = Relay(lambda: hub.url)
        async with _running(relay):
            relay.submit(1, b'{"n": 1}')
            await _accepted(hub, 1)
            hub.restart()
            relay.submit(2, b'{"n": 2}')
            await _accepted(hub, 3)
            await asyncio.sleep(0.3)  # nothing more is published: the third id is new
        first, reused, again = hub.ids
        assert reused == first, "the fake hub numbered as a restarted nchan does"
        assert len(hub.posts) == 3 and hub.posts[-1][1] == b'{"n": 2}'
        assert again.split(":")[0] > first.split(":")[0], "published again in a later second"

    async def test_no_wait_while_the_hub_keeps_answering(self, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
        waits: list[float] = []

        async def wait(accepted_at: float) -> None:
            waits.append(accepted_at)

        monkeypatch.setattr(hub_module, "_next_second_after", wait)
        hub.refuse = set()
        relay = Relay(lambda: hub.url)
        async with _running(relay):
            for n in range(3):
                relay.submit(n, b"{}")
                await _accepted(hub, n + 1)
        assert len(hub.posts) == 3 and waits == []  # a hub that answers is never made to wait
