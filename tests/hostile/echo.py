"""A hostile platform: Graph-like answers that echo the request's token, and a webhook that redirects forever."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer


class Echoing:
    """Answers every Graph call with a 400 quoting the bearer token; /hook/... redirects to itself."""

    def __init__(self) -> None:
        self.calls = 0
        self.server = TestServer(self._app(), host="127.0.0.1", port=0)

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/hook/{rest:.*}", self._loop)
        app.router.add_route("*", "/graph/{rest:.*}", self._echo)
        return app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def _loop(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        raise web.HTTPFound(str(request.rel_url))

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        form = await request.post() if request.method == "POST" else {}
        message = (f"Invalid OAuth access token {token} for request "
                   f"{request.method} {request.path_qs} with message {form.get('message', '')!s:.40}")
        error = {"message": message, "type": "OAuthException", "code": 100, "error_subcode": 33,
                 "fbtrace_id": "A1b2C3"}
        return web.json_response({"error": error}, status=400)

    async def __aenter__(self) -> Echoing:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()
