"""The aiohttp server of the public, read-only endpoints: status.json, SSE, page, feeds, banner."""

from __future__ import annotations

import resource
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web
from multidict import CIMultiDict

from statusd.web.doc import Doc, matches
from statusd.web.fastpath import Answers, FastSite
from statusd.web.state import WebState
from statusd.web.words import pick

__all__ = ["WebServer", "WebState"]

log = structlog.get_logger()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Language",
}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match, Last-Event-ID, Cache-Control",
    "Access-Control-Max-Age": "86400",
}
# The page loads nothing from elsewhere and runs no inline script; JSON-LD is data, not script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept-Language",
}
SHORT = "public, max-age=5"
STATIC_CACHE = "public, max-age=86400"
# The banner is embedded from any origin, including pages with COEP.
EMBEDDABLE = {**CORS, "Cross-Origin-Resource-Policy": "cross-origin"}
SHUTDOWN_TIMEOUT = 2.0
# Each SSE subscriber holds a socket: thousands of them need more than the usual 1024.
OPEN_FILES = 16384


def raise_open_files(wanted: int = OPEN_FILES) -> int:
    """Raise the soft limit of open files towards `wanted` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def respond(request: web.Request, doc: Doc, cache: str, headers: dict[str, str] | None = None) -> web.Response:
    """`doc` with its ETag, or 304 when the client already has it."""
    return Prepared(doc, cache, headers).respond(request)


class Prepared:
    """A document's 200 and 304 headers, made once per change and copied (in C) for each request."""

    __slots__ = ("doc", "full", "not_modified")

    def __init__(self, doc: Doc, cache: str, headers: dict[str, str] | None = None) -> None:
        self.doc = doc
        self.not_modified = CIMultiDict({"ETag": doc.etag, "Cache-Control": cache, **(headers or {})})
        self.full = CIMultiDict({**self.not_modified, "Content-Type": doc.content_type})

    def respond(self, request: web.Request) -> web.Response:
        if matches(request.headers.get("If-None-Match"), self.doc.etag):
            return web.Response(status=304, headers=self.not_modified.copy())
        return web.Response(body=self.doc.body, headers=self.full.copy())


class WebServer:
    """Serves the public endpoints on host:port; runs the SSE heartbeat and the exporter."""

    def __init__(self, state: WebState, host: str, port: int,
                 extra: Callable[[web.Application], None] | None = None) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._extra = extra  # the ingest API, which is not a public page
        self._runner: web.AppRunner | None = None
        self._prepared_status: Prepared | None = None

    def app(self) -> web.Application:
        app = web.Application()
        routes: list[tuple[str, Handler]] = [
            ("/", self._page), ("/status.json", self._status), ("/events", self.state.hub.stream),
            ("/feed.atom", self._feed), ("/closures.ics", self._calendar), ("/cap.xml", self._cap),
            ("/cap/{identifier}.xml", self._alert), ("/banner.js", self._banner),
            ("/static/{name}", self._static), ("/healthz", self._health),
        ]
        for path, handler in routes:
            app.router.add_get(path, handler)
            app.router.add_route("OPTIONS", path, self._preflight)
        app.on_shutdown.append(self._on_shutdown)
        if self._extra is not None:
            self._extra(app)
        return app

    async def start(self) -> None:
        raise_open_files()
        # handler_cancellation: a stream whose client left ends at once, not at its next write.
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        # status.json, the route every banner polls, is answered below aiohttp (web/fastpath.py).
        answers = Answers(lambda: self.state.status, SHORT, CORS)
        await FastSite(self._runner, self.host, self.port, answers).start()
        if self._runner.addresses:
            self.port = self._runner.addresses[0][1]
        log.info("web_started", url=f"http://{self.host}:{self.port}")

    def loops(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """The long-lived loops of the web side (SSE heartbeat, export), for the App's TaskGroup."""
        found: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("sse-heartbeat", self.state.hub.beat()), ("hub-relay", self.state.relay.run())]
        if self.state.exporter is not None:
            found.append(("export", self.state.exporter.run()))
        return found

    async def stop(self) -> None:
        """Close the streams first so that the server's own shutdown does not wait on them."""
        self.state.hub.close()
        if self.state.exporter is not None:
            await self.state.exporter.flush()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _on_shutdown(self, app: web.Application) -> None:
        self.state.hub.close()

    def _lang(self, request: web.Request) -> str:
        return pick(request.query.get("lang"), request.headers.get("Accept-Language"),
                    self.state.config.languages)

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204, headers=PREFLIGHT)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        doc = self.state.status
        if self._prepared_status is None or self._prepared_status.doc is not doc:
            self._prepared_status = Prepared(doc, SHORT, CORS)  # once per change, not per request
        return self._prepared_status.respond(request)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        return respond(request, self.state.docs[f"page.{lang}"], SHORT,
                       {**PAGE_HEADERS, "Content-Language": lang})

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        return respond(request, self.state.docs[f"feed.{lang}"], "public, max-age=60",
                       {**CORS, "Content-Language": lang, "Vary": "Accept-Language"})

    async def _calendar(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        return respond(request, self.state.docs[f"closures.{lang}"], "public, max-age=300",
                       {**CORS, "Content-Language": lang, "Vary": "Accept-Language"})

    async def _cap(self, request: web.Request) -> web.StreamResponse:
        return respond(request, self.state.docs["cap.xml"], "public, max-age=30", CORS)

    async def _alert(self, request: web.Request) -> web.StreamResponse:
        doc = self.state.alerts.get(request.match_info["identifier"])
        if doc is None:
            raise web.HTTPNotFound(text="no such current alert\n")
        return respond(request, doc, "public, max-age=30", CORS)

    async def _banner(self, request: web.Request) -> web.StreamResponse:
        doc = self.state.static.get("banner.js")
        if doc is None:
            raise web.HTTPNotFound(text="banner.js is missing from statusd/web/static\n")
        return respond(request, doc, STATIC_CACHE, EMBEDDABLE)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        doc = self.state.static.get(request.match_info["name"])
        if doc is None:
            raise web.HTTPNotFound()
        return respond(request, doc, STATIC_CACHE, EMBEDDABLE)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})
