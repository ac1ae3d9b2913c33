"""The "Notify me" API: browsers subscribe to a site's Web Push notifications, and stop.

    GET  /push/config.json   the VAPID public key, the sites and languages on offer
    POST /push/subscribe     {endpoint, keys: {p256dh, auth}, site, kinds, language}
    POST /push/unsubscribe   {endpoint, site?}   (DELETE /push/subscribe takes the same)
    GET  /sw.js              the service worker, at the page's own path so its scope is the page's

Public and unauthenticated, like the page: whoever holds a push subscription may
add or remove it. Every request is checked strictly before anything is stored;
a bad one gets 400 and one sentence. Only the subscription, its choices and
the day are kept: no cookie is set, and neither the address nor the browser's
name is read.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from statusd.channels import http
from statusd.channels.webpush_store import Subscriptions, store_file
from statusd.config.load import Config
from statusd.web.follow_checks import Invalid, parse_subscription, parse_unsubscription

log = structlog.get_logger()

MAX_BODY = 4096
MAX_SUBSCRIPTIONS = 1_000_000
# Subscriptions taken at most this many a second, in bursts of BURST: a patron is never
# refused in a crowd after a closure, a script cannot fill the list (or aim the fan-out
# at a host of its choosing) in an afternoon. Nobody's address is read, so it is one bucket.
RATE = 5.0
BURST = 300
STATIC = Path(__file__).parent / "static"
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class Follow:
    """The routes, over the config in force and the state directory's push.sqlite."""

    def __init__(self, config: Callable[[], Config], state_dir: Path) -> None:
        self._config = config
        self._path = store_file(state_dir)
        self._store: Subscriptions | None = None
        self._key: tuple[int, str | None] | None = None
        self._worker_js: bytes | None = None
        self._tokens, self._filled = float(BURST), time.monotonic()
        self._opening = asyncio.Lock()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/push/config.json", self._offer)
        app.router.add_post("/push/subscribe", self._subscribe)
        app.router.add_delete("/push/subscribe", self._unsubscribe)
        app.router.add_post("/push/unsubscribe", self._unsubscribe)
        app.router.add_get("/sw.js", self._worker)
        app.on_cleanup.append(self._close)

    def _channels(self) -> list[Any]:
        return [c for c in self._config().channels.values() if c.type == "webpush"]

    def languages(self) -> tuple[str, ...]:
        """The languages a patron may choose: those of the webpush channels, in the config's order."""
        mine = {c.language for c in self._channels()}
        return tuple(lang for lang in self._config().languages if lang in mine)

    def public_key(self) -> str | None:
        """The VAPID public key of the webpush channels (None when there is none, or its key is unreadable)."""
        channels = self._channels()
        if not channels:
            return None
        config = self._config()
        if self._key is None or self._key[0] != id(config):
            # pywebpush and py_vapid only with a webpush channel (~2 MB and 10 ms of start-up otherwise)
            from statusd.channels.webpush_keys import Signer, load

            try:
                key: str | None = Signer(load(channels[0].options.vapid_key.read() or ""), "").public_key
            except ValueError:
                key = None
            self._key = (id(config), key)
        return self._key[1]

    def _loopback(self) -> bool:
        return any(c.options.loopback_endpoints for c in self._channels())

    async def _subscriptions(self) -> Subscriptions:
        """push.sqlite, opened (made) in a thread at the first request: file work stays off the loop."""
        async with self._opening:
            if self._store is None:
                self._store = await asyncio.to_thread(Subscriptions, self._path)
        return self._store

    async def _offer(self, request: web.Request) -> web.StreamResponse:
        key = await asyncio.to_thread(self.public_key)  # reads the key once per config, off the loop
        if key is None:
            raise web.HTTPNotFound(text="this status page offers no push notifications\n")
        config = self._config()
        return web.json_response({"key": key, "languages": list(self.languages()), "sites": list(config.sites)},
                                 headers={"Cache-Control": "public, max-age=60"})

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        if await asyncio.to_thread(self.public_key) is None:
            return _refuse("this status page offers no push notifications", 404)
        try:
            data = await _body(request)
            config = self._config()
            sub = parse_subscription(data, config.sites, self.languages(), loopback=self._loopback())
        except Invalid as err:
            return _refuse(str(err))
        if not self._take():
            log.warning("push_subscribe_throttled", rate=RATE)
            return web.json_response({"error": "too many subscriptions at once; try again in a minute"},
                                     status=429, headers={**NO_STORE, "Retry-After": "60"})
        try:
            store = await self._subscriptions()
            if await asyncio.to_thread(store.count) >= MAX_SUBSCRIPTIONS:
                return _refuse("the list of subscriptions is full; try again later", 429)
            await asyncio.to_thread(store.subscribe, sub)
        except (sqlite3.Error, OSError) as err:  # disk full, locked, its directory unmade: nothing was kept
            log.error("push_store_unavailable", reason=str(err), store=str(self._path))
            return _refuse("subscriptions cannot be saved just now; try again in a minute", 503)
        return web.json_response({"subscribed": sub.site, "kinds": sub.kinds, "language": sub.language},
                                 status=201, headers=NO_STORE)

    def _take(self) -> bool:
        """One subscription from the bucket; False when it is empty."""
        now = time.monotonic()
        self._tokens = min(float(BURST), self._tokens + (now - self._filled) * RATE)
        self._filled = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _unsubscribe(self, request: web.Request) -> web.StreamResponse:
        try:
            endpoint, site = parse_unsubscription(await _body(request), self._config().sites)
        except Invalid as err:
            return _refuse(str(err))
        try:
            removed = await asyncio.to_thread((await self._subscriptions()).unsubscribe, endpoint, site)
        except (sqlite3.Error, OSError) as err:
            log.error("push_store_unavailable", reason=str(err), store=str(self._path))
            return _refuse("the subscription cannot be removed just now; try again in a minute", 503)
        return web.json_response({"removed": removed}, headers=NO_STORE)

    async def _worker(self, request: web.Request) -> web.StreamResponse:
        if self._worker_js is None:
            self._worker_js = await asyncio.to_thread((STATIC / "sw.js").read_bytes)
        body = self._worker_js
        # Served beside the page, so its default scope is the page's directory and no wider:
        # no Service-Worker-Allowed is needed.
        headers = {"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache",
                   "X-Content-Type-Options": "nosniff"}
        return web.Response(body=body, headers=headers)

    async def _close(self, app: web.Application) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


async def _body(request: web.Request) -> Any:
    """The request's JSON, at most MAX_BODY bytes; Invalid for anything else."""
    # Only JSON: a form or text/plain POST is what any other site can make its visitors send
    # without asking (no CORS preflight), emptying the shared bucket with strangers' browsers.
    if request.content_type != "application/json":
        raise Invalid("the request should be sent as Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Invalid(f"the request body is over {MAX_BODY} bytes")
    raw = await http.read_at_most(request.content, MAX_BODY)
    if len(raw) > MAX_BODY:
        raise Invalid(f"the request body is over {MAX_BODY} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise Invalid("the request body is not JSON in UTF-8, e.g. "
                      '{"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}, "site": "main"}') from err


def _refuse(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=NO_STORE)
