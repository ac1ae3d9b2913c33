"""An HTTP reverse proxy in front of one fake platform: it delays answers at random and
injects faults (5xx, 429, timeouts, connection resets, slow bodies, and "late": the platform
takes the request at once and its answer comes after the channel gave up), one decision
per request.

The proxy sits where the network would be, so statusd and the fakes stay exactly as they
are: the channel is pointed at the proxy, the proxy at the fake. With TLS (the X fake)
it answers with the fake's own certificate and forwards over TLS, Host header unchanged,
so OAuth signatures still check.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType

import aiohttp
from aiohttp import web

__all__ = ["FAULTS", "FaultProxy", "retry_headers"]

FAULTS = ("5xx", "429", "timeout", "reset", "slow", "late")
# Headers that belong to one hop, never forwarded.
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te",
        "trailer", "proxy-authenticate", "proxy-authorization"}
_HTML_5XX = "<html><head><title>{code}</title></head><body><h1>{code}</h1><hr>nginx</body></html>"

RetryHeaders = Callable[[float], dict[str, str]]


def retry_headers(style: str) -> RetryHeaders:
    """A 429's headers as each platform sends them, for a pause of `seconds`."""

    def make(seconds: float) -> dict[str, str]:
        reset = time.time() + seconds
        if style == "mastodon":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(reset))
            return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": stamp}
        if style == "x":
            return {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(int(reset) + 1)}
        if style == "bluesky":
            return {"RateLimit-Limit": "3000", "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(int(reset) + 1), "Retry-After": str(round(seconds))}
        return {"Retry-After": str(round(seconds))}

    return make


class FaultProxy:
    """Forwards every request to `upstream`; `faults` maps a fault kind to its probability."""

    def __init__(self, upstream: str, rng: random.Random, *, delay: tuple[float, float] = (0.0, 0.0),
                 faults: Mapping[str, float] | None = None, timeout: float = 1.0,
                 retry: RetryHeaders | None = None, retry_after: float = 1.0,
                 tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.rng = rng
        self.delay = delay
        self.faults: dict[str, float] = dict(faults or {})
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected some of {FAULTS}")
        self.timeout = timeout  # the channel's timeout: a "timeout" fault outlasts it
        self.retry = retry or retry_headers("webhook")
        self.retry_after = retry_after
        self._server_tls: ssl.SSLContext | None = tls[0] if tls else None
        self._client_tls: ssl.SSLContext | None = tls[1] if tls else None
        self.port = 0
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.holding = 0  # POSTs the platform has taken whose answer is still held here
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._server_tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def connect_to(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False,
                                              timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._server_tls).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- one request ---------------------------------------------------------------------------

    def _choose(self) -> str | None:
        roll = self.rng.random()
        for kind, chance in self.faults.items():
            if roll < chance:
                return kind
            roll -= chance
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        fault = self._choose()
        if fault is not None:
            self.injected[fault] += 1
        if fault == "5xx":
            code = self.rng.choice((500, 502, 503, 504))
            return web.Response(status=code, text=_HTML_5XX.format(code=code), content_type="text/html")
        if fault == "429":
            return web.json_response({"error": "Too many requests"}, status=429,
                                     headers=self.retry(self.retry_after))
        # A timeout or a reset may come before or after the platform took the request.
        reached = fault not in ("timeout", "reset") or self.rng.random() < 0.5
        answer = await self._forward(request, body) if reached else None
        if fault == "reset":
            return _reset(request)
        if fault == "timeout":
            await asyncio.sleep(self.timeout + 0.5)
            return _reset(request)
        assert answer is not None
        status, headers, data = answer
        if fault == "slow":
            return await self._trickle(request, status, headers, data)
        if fault == "late":  # a platform that stalls, then answers: the post exists meanwhile
            await self._hold(request, self.timeout + self.rng.uniform(0.3, 1.2))
        await self._hold(request, self.rng.uniform(*self.delay))
        return web.Response(status=status, headers=headers, body=data)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            async with self._session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers,
                allow_redirects=False, ssl=self._client_tls if self._client_tls else True,
            ) as answer:
                data = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
                return answer.status, kept, data
        except (aiohttp.ClientError, TimeoutError) as err:
            text = _HTML_5XX.format(code=f"502 upstream: {type(err).__name__}")
            return 502, {"Content-Type": "text/html"}, text.encode()

    async def _hold(self, request: web.Request, seconds: float) -> None:
        """Keep an answer back, counting held POSTs: a kill now lands mid-send."""
        posting = request.method == "POST"
        self.holding += posting
        try:
            await asyncio.sleep(seconds)
        finally:
            self.holding -= posting

    async def _trickle(self, request: web.Request, status: int, headers: dict[str, str],
                       data: bytes) -> web.StreamResponse:
        """The answer in four pieces over 0.3–1.6 times the channel's timeout."""
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data)
        pause = self.rng.uniform(0.3, 1.6) * self.timeout / 4
        step = max(1, -(-len(data) // 4))
        try:
            await response.prepare(request)
            for start in range(0, len(data), step):
                await asyncio.sleep(pause)
                await response.write(data[start:start + step])
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client gave up: that is the point of a slow body
        return response


def _reset(request: web.Request) -> web.Response:
    """Close with a TCP RST (linger 0): the client sees 'connection reset by peer'."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    return web.Response(status=204)  # never reaches the client
