"""Live readers through nginx + nchan (deploy/nginx/statusd.conf) fed by the real daemon's `web.hub`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.nginx import Nginx, unused_port
from tests.support.swarm import Readers
from tests.web.test_web_support import parse

pytestmark = pytest.mark.e2e

READERS = 2000
# nchan answers 403 to a GET that does not ask for an event stream; EventSource always does.
SSE = {"Accept": "text/event-stream"}
LEVELS = ("closed", "limited", "open")


@dataclass
class Stack:
    """One daemon publishing to one nginx, which serves its export directory and proxies to it."""

    daemon: Daemon
    nginx: Nginx

    def set(self, site: str, lvl: str, *args: str) -> None:
        """`statusd set`; a level other than open gets the message it needs."""
        message = () if lvl == "open" or "-m" in args else ("-m", f"en:{lvl} for the test.")
        self.daemon.cli("set", site, lvl, *message, *args)

    def changes(self, *each: tuple[str, ...]) -> None:
        for args in each:
            self.set(*args)


def hub_config(write_config: WriteConfig, export: Path, hub: str) -> Path:
    path = write_config()
    with path.open("a", encoding="utf-8") as out:
        out.write(f"web:\n  export_dir: {export}\n  hub: {hub}\n")
    return path


@pytest.fixture
def stack(write_config: WriteConfig, tmp_path: Path) -> Iterator[Stack]:
    export = tmp_path / "export"
    export.mkdir()
    (tmp_path / "nginx").mkdir()
    # nginx first, so that the daemon's first publish finds its hub; the daemon's port is chosen
    # ahead for nginx's upstream (a reload later would do, but nchan 1.3.6's workers can crash on
    # a reload while readers are connected: tests/support/nginx.py says more).
    nginx = Nginx(tmp_path / "nginx", export, workers=2, connections=4096)
    daemon = Daemon(hub_config(write_config, export, nginx.hub_url), tmp_path / "state")
    daemon.port = unused_port()
    nginx.nodes = [f"127.0.0.1:{daemon.port}"]
    try:
        nginx.start()
        daemon.start()
        deadline = time.monotonic() + 10
        while not (export / "static" / "banner.js").exists():  # the first export, written off the loop
            assert time.monotonic() < deadline, "the daemon did not export its documents"
            time.sleep(0.05)
        yield Stack(daemon, nginx)
    finally:
        nginx.stop()
        daemon.kill()


async def read_event(response: aiohttp.ClientResponse, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), deadline - time.monotonic())
        fields = parse(block)
        if "data" in fields:
            return fields


async def own_events(daemon: Daemon, count: int, changes: Any) -> list[dict[str, str]]:
    """The daemon's own /events while `changes` runs in a thread: its first `count` new events."""
    async with aiohttp.ClientSession(headers=SSE) as session, session.get(f"{daemon.url}/events") as response:
        await read_event(response, 5)
        running = asyncio.ensure_future(asyncio.to_thread(changes))
        seen = [await read_event(response, 15) for _ in range(count)]
        await running
        return seen


def level(data: str, site: str = "main") -> str:
    found: str = json.loads(data)["sites"][site]["level"]
    return found


class TestFanOut:
    """2,000 readers on nginx's /events get every change the daemon published, byte for byte."""

    async def test_each_change_reaches_every_reader(self, stack: Stack, tmp_path: Path) -> None:
        def changes() -> None:
            for lvl in LEVELS:
                stack.set("main", lvl)
                time.sleep(0.3)

        with Readers(stack.nginx.events_url(), READERS, 1 + len(LEVELS), tmp_path / "swarm", procs=2) as readers:
            published = await own_events(stack.daemon, len(LEVELS), changes)
            streams = await asyncio.to_thread(readers.collect, 60)
        assert [level(e["data"]) for e in published] == list(LEVELS)
        wanted = [_digest(e["data"]) for e in published]
        assert len(streams) == READERS
        got = [[event[4] for event in s["events"][1:]] for s in streams]
        assert all(g == wanted for g in got), f"{sum(g != wanted for g in got)} readers missed or mixed changes"
        # One id per change, the same for every reader (nchan numbers them).
        ids = {tuple(event[2] for event in s["events"][1:]) for s in streams}
        assert len(ids) == 1


class TestResume:
    """A reader that reconnects with Last-Event-ID gets exactly the events it missed, then waits."""

    async def test_resume_gets_the_missed_events_only(self, stack: Stack) -> None:
        async with aiohttp.ClientSession(headers=SSE) as session:
            async with session.get(stack.nginx.events_url()) as first:
                seen = await read_event(first, 5)
            published = await own_events(stack.daemon, 2, lambda: stack.changes(
                ("main", "closed", "-m", "en:Flood."), ("annexe", "limited")))
            await _hub_holds(stack, lambda info: info["messages"] >= 3)
            headers = {"Last-Event-ID": seen["id"]}
            async with session.get(stack.nginx.events_url(), headers=headers) as again:
                missed = [await read_event(again, 5) for _ in range(2)]
                with pytest.raises(TimeoutError):
                    await read_event(again, 1.0)  # nothing more: no repeat, no gap filler
        assert [m["data"] for m in missed] == [p["data"] for p in published]
        assert level(missed[0]["data"]) == "closed" and level(missed[1]["data"], "annexe") == "limited"


class TestRestart:
    """nginx restarted: readers come back, catch up on the change made meanwhile, and new ones see it."""

    async def test_readers_reconnect_and_catch_up(self, stack: Stack, tmp_path: Path) -> None:
        count = 200
        with Readers(stack.nginx.events_url(), count, 2, tmp_path / "swarm", reconnect=True) as readers:
            await asyncio.to_thread(stack.nginx.stop)
            await asyncio.to_thread(stack.set, "main", "closed", "-m", "en:Power cut.")  # while it is down
            await asyncio.to_thread(stack.nginx.start)
            streams = await asyncio.to_thread(readers.collect, 30)
        current = (await _get(f"{stack.daemon.url}/status.json")).decode()
        assert level(current) == "closed"
        assert all(s["reconnects"] >= 1 for s in streams)
        last = [s["events"][-1][4] if s["events"] else None for s in streams]
        assert last == [_digest(current)] * count, "every reader catches up on the change made while nginx was down"

    async def test_hub_restarted_between_changes_gets_the_latest_again(self, stack: Stack) -> None:
        stack.set("main", "limited")
        await _hub_holds(stack, lambda info: info["messages"] >= 2)
        await asyncio.to_thread(stack.nginx.restart)  # nchan forgets every message
        async with aiohttp.ClientSession(headers=SSE) as session, session.get(stack.nginx.events_url()) as response:
            current = await read_event(response, 15)  # the relay's probe publishes it again
        assert level(current["data"]) == "limited"


class TestHubDown:
    """Without its hub the daemon serves its own /events and channels as before, and says so once."""

    async def test_down_hub_changes_nothing_else_then_recovers(self, stack: Stack) -> None:
        await asyncio.to_thread(stack.nginx.stop)
        started = time.monotonic()
        published = await own_events(stack.daemon, 3, lambda: stack.changes(*(("main", lvl) for lvl in LEVELS)))
        assert time.monotonic() - started < 15
        assert [level(e["data"]) for e in published] == list(LEVELS)
        ready = json.loads(await _get(f"{stack.daemon.ops_url}/readyz"))
        assert ready["ready"] is True and ready["hub"].startswith("unreachable")
        await asyncio.sleep(0.5)
        logs = [json.loads(line) for line in stack.daemon.logs().splitlines() if line.startswith("{")]
        assert [e["event"] for e in logs].count("hub_unreachable") == 1
        posts = ["closed for the test", "limited for the test", "de nouveau ouvert"]
        await _until(lambda: all(p in stack.daemon.out.read_text(encoding="utf-8") for p in posts))

        await asyncio.to_thread(stack.nginx.start)
        async with aiohttp.ClientSession(headers=SSE) as session, session.get(stack.nginx.events_url()) as response:
            current = await read_event(response, 40)  # after the relay's backoff
        assert current["data"] == published[-1]["data"]
        # nchan hands the event to its readers before it answers the daemon, which then logs.
        await _until(lambda: '"event": "hub_restored"' in stack.daemon.logs())
        ready = json.loads(await _get(f"{stack.daemon.ops_url}/readyz"))
        assert ready["hub"] == "ok"


class TestConfig:
    """The shipped nginx config: the export cached for a CDN, the hub closed, the desk proxied."""

    async def test_locations(self, stack: Stack) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{stack.nginx.url}/status.json") as response:
                etag = response.headers["ETag"]
                assert "stale-while-revalidate" in response.headers["Cache-Control"]
                assert json.loads(await response.read())["sites"]["main"]["level"] == "open"
            async with session.get(f"{stack.nginx.url}/status.json", headers={"If-None-Match": etag}) as response:
                assert response.status == 304
            async with session.get(f"{stack.nginx.url}/banner.js") as response:
                assert response.status == 200 and "max-age=86400" in response.headers["Cache-Control"]
            async with session.get(f"{stack.nginx.url}/desk/") as response:
                assert response.status in (200, 302, 303, 401) and "no-store" in response.headers["Cache-Control"]
            async with session.post(f"{stack.nginx.url}/api/v1/readings", json={}) as response:
                assert response.status == 401  # the daemon's answer: no token
            async with session.get(stack.nginx.events_url(), headers=SSE) as response:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                assert "no-store" in response.headers["Cache-Control"]
            # The publisher is not on the public side.
            async with session.post(f"{stack.nginx.url}/pub/all", data=b"{}") as response:
                assert response.status == 404


async def _hub_holds(stack: Stack, check: Any, timeout: float = 10.0) -> None:
    url = stack.nginx.hub_url.format(channel="all")
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as session:
        while time.monotonic() < deadline:
            async with session.get(url) as response:
                if response.status == 200 and check(json.loads(await response.read())):
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"the hub did not get the daemon's events in time: {stack.daemon.logs()[-2000:]}")


async def _get(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.read()


async def _until(check: Any, timeout: float = 10.0) -> None:
    """Wait until `check()` holds (a post printed, a line logged), bounded."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {check}"
        await asyncio.sleep(0.05)


def _digest(data: str) -> str:
    import hashlib

    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]
