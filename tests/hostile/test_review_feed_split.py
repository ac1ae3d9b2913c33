"""Hostile review of the poll feed: a counter that sends its document in two TCP segments (a slow
embedded web server does) was read as its first piece only, and refused as not JSON."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from statusd.config.load import Config
from statusd.sources.feeds.poll import PollFeed
from tests.sources.test_feeds_vendors import NOW, collect, poll_feed, sample

pytestmark = pytest.mark.e2e


async def test_document_in_two_segments(config: Config) -> None:
    document = json.dumps(sample("axis-live-sum.json")).encode()

    async def live_sum(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(document)
        await response.prepare(request)
        await response.write(document[:20])
        await asyncio.sleep(0.1)
        await response.write(document[20:])
        return response

    app = web.Application()
    app.router.add_get("/local/tvpc/.api", live_sum)
    async with TestServer(app, host="127.0.0.1") as server:
        feed = PollFeed(poll_feed(str(server.make_url("/local/tvpc/.api?live-sum.json"))), config, clock=lambda: NOW)
        got = await collect(feed, 1, seconds=3.0)
    assert got and got[0].total_in == 412  # type: ignore[union-attr]
