"""Helpers for the web tests: a served WebState on port 0, events, and an SSE reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from statusd.config.load import Config
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, StatusEntry, Target
from statusd.web.server import WebServer
from statusd.web.sse import Hub
from statusd.web.state import WebState

pytestmark = pytest.mark.e2e

NOW = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)  # a Wednesday
FLOOD = {"fr": "Dégât des eaux, fermé", "en": "Water damage, closed", "sv": "Vattenskada, stängt"}


def entry(level: str, message: Mapping[str, str] | None = None, **times: datetime) -> StatusEntry:
    return StatusEntry(Level(level), dict(message or {}), **times)  # type: ignore[arg-type]  # since/until


def event(target: str, level: str, previous: str, at: datetime, message: Mapping[str, str] | None = None,
          kind: EventKind = EventKind.STATUS_CHANGED) -> Event:
    return Event(kind, Target.parse(target), Level(level), Level(previous), dict(message or {}), at,
                 "desk", f"{target}|{level}|{at.isoformat()}")


def announced(target: str, level: str, at: datetime) -> dict[str, Announced]:
    return {target: Announced(level, f"fp-{level}", "", None, at.timestamp())}


@dataclass
class Served:
    """A running WebServer and its state."""

    web: WebServer
    state: WebState
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"


@pytest.fixture
async def served(config: Config) -> AsyncIterator[Served]:
    """The web server on a free port, showing every site open."""
    state = WebState(config, hub=Hub(heartbeat=3600, queue_size=4))
    state.update({}, {}, [], NOW)
    web = WebServer(state, "127.0.0.1", 0)
    await web.start()
    async with aiohttp.ClientSession() as session:
        yield Served(web, state, session)
    await web.stop()


class Stream:
    """An open /events response, read one SSE block at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    @classmethod
    async def open(cls, served: Served, headers: Mapping[str, str] | None = None, query: str = "") -> Stream:
        response = await served.session.get(f"{served.url}/events{query}", headers=dict(headers or {}))
        return cls(response)

    async def block(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.response.content.readuntil(b"\n\n"), timeout)

    async def event(self, timeout: float = 2.0) -> dict[str, Any]:
        """The next event, skipping retry and comment blocks."""
        while True:
            fields = parse(await self.block(timeout))
            if "data" in fields:
                return fields

    def close(self) -> None:
        self.response.close()


def parse(block: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for line in block.decode().split("\n"):
        if line and not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return fields


def later(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)
