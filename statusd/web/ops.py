"""The operator's listener: /readyz and /metrics, on their own address (default 127.0.0.1:9108).

They tell a stranger which channels exist, which are failing and why, and
how busy the daemon is: none of that belongs on the public port. The
listener binds to loopback unless the config says otherwise (`ops: {listen:
…}`), and /readyz names no file or variable: a missing secret is "off:
secret missing" (the daemon's log says which one, at start).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from statusd import metrics
from statusd.errors import redact
from statusd.outbox.facade import AsyncStore
from statusd.outbox.records import STORE_ERRORS
from statusd.web.state import WebState

__all__ = ["Ops", "OpsView"]

log = structlog.get_logger()

SHUTDOWN_TIMEOUT = 1.0
READY_STORE_WAIT = 2.0
_NOT_IN_TIME: tuple[type[Exception], ...] = (*STORE_ERRORS, TimeoutError)


@dataclass(frozen=True)
class OpsView:
    """What the operator endpoints read from the running daemon, each call fresh (reload changes it)."""

    store: AsyncStore
    web_state: WebState
    channels: Callable[[], Awaitable[dict[str, dict[str, Any]]]]  # each channel's health (outbox.health.report)
    inactive: Callable[[], Mapping[str, str]]
    ready: Callable[[], bool]
    on_metrics: Callable[[dict[str, dict[str, Any]]], None] = lambda health: None
    cluster: Callable[[], dict[str, Any] | None] = lambda: None  # this node's part, in a cluster


class Ops:
    """Serves /readyz, /metrics and /healthz on the operator's address."""

    def __init__(self, view: OpsView, host: str, port: int) -> None:
        self.view = view
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/readyz", self.ready)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.health)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        if self._runner.addresses:
            self.port = self._runner.addresses[0][1]
        log.info("ops_started", url=f"http://{self.host}:{self.port}")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def ready(self, request: web.Request) -> web.StreamResponse:
        """Ready when the status file has been read; with every channel's state for the operator."""
        unread: str | None = None
        try:
            # Bounded: a store that is stuck must not make /readyz hang; its trouble is told below.
            health = await asyncio.wait_for(self.view.channels(), READY_STORE_WAIT)
        except _NOT_IN_TIME as err:
            health = {}
            reason = str(err) or "no answer in time"
            log.warning("store_unavailable", reason=reason, store=self.view.store.label)
            # A store that cannot even be read (a PostgreSQL server down) has no write trouble yet.
            unread = f"the store {self.view.store.label} cannot be read: {reason}"
        channels: dict[str, Any] = {name: _redacted(state) for name, state in health.items()}
        channels.update({name: {"state": "off", "reason": "secret missing"} for name in self.view.inactive()})
        read = self.view.ready()
        # A store that cannot record (disk full, locked) announces nothing: not ready, and why.
        trouble = self.view.store.trouble or unread
        ready = read and trouble is None
        body = {"ready": ready, "status_file": "ok" if read else "not read yet",
                "store": redact(trouble) if trouble else "ok", "channels": channels}
        if self.view.web_state.config.web.hub is not None:
            # Shown, not counted against readiness: this node still serves its own /events.
            hub = self.view.web_state.relay.trouble
            body["hub"] = f"unreachable: {hub}" if hub else "ok"
        if (cluster := self.view.cluster()) is not None:
            body["cluster"] = cluster  # a follower is ready (it serves), and says it is not the sender
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        try:
            depth = await self.view.store.retry_depth()
            health = await self.view.channels()
        except STORE_ERRORS as err:  # not a 500 and a traceback: the scraper sees the store is out
            log.warning("store_unavailable", reason=str(err), store=self.view.store.label)
            return web.Response(status=503, text=f"the store {self.view.store.label} cannot be read\n")
        for name, count in depth.items():
            metrics.RETRY_QUEUE.labels(name).set(count)
        metrics.SSE_SUBSCRIBERS.set(len(self.view.web_state.hub.subscribers))
        self.view.on_metrics(health)
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})


def _redacted(state: dict[str, Any]) -> dict[str, Any]:
    # Redacted again: a reason stored by an older version may quote a platform's answer raw.
    return {key: redact(value) if key == "reason" and isinstance(value, str) else value
            for key, value in state.items()}
