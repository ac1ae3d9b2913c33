"""Poll feed: fetch a JSON document every N seconds (a counter vendor's API) and decode it.

A failed fetch is logged and retried with a growing delay, up to five
minutes or the configured interval, whichever is longer.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import datetime

import aiohttp
import structlog

from statusd.config.feeds import PollFeedConfig
from statusd.config.load import Config
from statusd.sources.feeds.vendors import Receiver
from statusd.sources.readings import Reading

log = structlog.get_logger()

MAX_DOCUMENT = 1024 * 1024
MAX_DELAY = 300.0


class PollFeed:
    """One URL fetched on a schedule."""

    def __init__(self, feed: PollFeedConfig, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.feed = feed
        self.receiver = Receiver(feed.name, feed.decoding, feed.allow, config, clock)

    async def run(self, intake: Callable[[list[Reading]], None]) -> None:
        """Fetch until cancelled."""
        failures = 0
        async with self._session() as session:
            while True:
                failures = 0 if await self.poll(session, intake) else failures + 1
                delay = self.feed.every * 2 ** min(failures, 10)
                await asyncio.sleep(min(delay, max(self.feed.every, MAX_DELAY)))

    async def poll(self, session: aiohttp.ClientSession, intake: Callable[[list[Reading]], None]) -> bool:
        """One fetch; False when the document could not be had (a refused reading still counts as had)."""
        try:
            async with session.get(self.feed.url, headers=self._headers()) as response:
                if response.status != 200:
                    log.warning("poll_failed", feed=self.feed.name, status=response.status)
                    return False
                body = b""
                while len(body) <= MAX_DOCUMENT:  # one read() gives what has arrived, not the document
                    part = await response.content.read(MAX_DOCUMENT + 1 - len(body))
                    if not part:
                        break
                    body += part
        except (TimeoutError, aiohttp.ClientError) as err:
            log.warning("poll_failed", feed=self.feed.name, error=str(err) or type(err).__name__)
            return False
        if len(body) > MAX_DOCUMENT:
            log.warning("poll_failed", feed=self.feed.name, error="the document is over 1 MiB")
            return False
        self.receiver.receive(body, intake)
        return True

    def _session(self) -> aiohttp.ClientSession:
        middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        if self.feed.auth == "digest" and self.feed.username and self.feed.password:
            middlewares = (aiohttp.DigestAuthMiddleware(self.feed.username, self.feed.password.read() or ""),)
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.feed.timeout),
                                     middlewares=middlewares)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.feed.token.read() if self.feed.token else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.feed.auth == "basic" and self.feed.username and self.feed.password:
            pair = f"{self.feed.username}:{self.feed.password.read() or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers
