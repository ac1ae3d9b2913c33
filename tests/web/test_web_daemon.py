"""The web side of the real daemon: a `statusd set` reaches SSE at once, and streams survive restarts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.web.test_web_support import parse

pytestmark = pytest.mark.e2e


async def next_event(response: aiohttp.ClientResponse, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), deadline - time.monotonic())
        fields = parse(block)
        if "data" in fields:
            return fields


class TestDaemon:
    """Desk commands show on /events within a second; a restart resumes with growing ids."""

    async def test_set_restart_resume(self, write_config: WriteConfig, tmp_path: Path) -> None:
        daemon = Daemon(write_config(), tmp_path / "state").start()
        try:
            async with aiohttp.ClientSession() as session:
                response = await session.get(f"{daemon.url}/events")
                first = await next_event(response, 5)
                start = time.monotonic()
                await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "en:Flood.")
                changed = await next_event(response, 5)
                assert json.loads(changed["data"])["sites"]["main"]["level"] == "closed"
                assert time.monotonic() - start < 3.0  # includes starting the command's Python
                stopping = time.monotonic()
                assert await asyncio.to_thread(daemon.terminate) == 0
                assert time.monotonic() - stopping < 5.0
                assert await asyncio.wait_for(response.content.read(), 2) == b""
                daemon.start()
                again = await session.get(f"{daemon.url}/events", headers={"Last-Event-ID": changed["id"]})
                resumed = await next_event(again, 5)
                assert int(resumed["id"]) > int(changed["id"]) > int(first["id"])
                assert json.loads(resumed["data"])["sites"]["main"]["level"] == "closed"
                again.close()
        finally:
            daemon.kill()
