"""The aiohttp server: /status.json and /healthz (the banner builds on this)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger()


class WebState:
    """The latest public snapshot, serialised once per change rather than per request."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.etag = '"0"'

    def publish(self, snapshot: dict[str, Any]) -> None:
        body = json.dumps(snapshot, ensure_ascii=False, sort_keys=True).encode()
        if body != self.body:
            self.body = body
            self.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


class WebServer:
    """Serves the public read-only endpoints on host:port."""

    def __init__(self, state: WebState, host: str, port: int) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/status.json", self._status)
        app.router.add_get("/healthz", self._health)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("web_started", url=f"http://{self.host}:{self.port}")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _status(self, request: web.Request) -> web.StreamResponse:
        headers = {
            "ETag": self.state.etag,
            "Cache-Control": "public, max-age=5",
            "Access-Control-Allow-Origin": "*",
        }
        if request.headers.get("If-None-Match") == self.state.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.state.body, content_type="application/json", headers=headers)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})
