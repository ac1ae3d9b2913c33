"""status.json's fast path answers exactly what aiohttp alone would, byte for byte, for any bytes.

Every test sends the same bytes to two servers of one WebServer's state: the daemon's
listener (fast path first) and aiohttp alone serving the same application. The answers
must be the same but for the Date header's value.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd import loading
from statusd.config.load import Config
from statusd.web import fastpath
from statusd.web.fastpath import MAX_HEAD
from statusd.web.server import WebServer
from statusd.web.sse import Hub
from statusd.web.state import WebState
from tests.conftest import ALERTS, BASE, CONSOLE
from tests.web.test_web_support import NOW

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 5.0
IDLE = 1.0
LAST = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
POOL = ThreadPoolExecutor(2)
GET = b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass
class Twins:
    """The daemon's listener and aiohttp alone, on one state, in a loop of their own."""

    fast: int
    plain: int
    etag: str
    loop: asyncio.AbstractEventLoop
    web: WebServer


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    config = _config(tmp_path_factory.mktemp("fastpath"))
    loop = asyncio.new_event_loop()
    ready: Future[Twins] = Future()
    stop = asyncio.Event()

    async def main() -> None:
        state = WebState(config, hub=Hub(heartbeat=3600, queue_size=4))
        state.update({}, {}, [], NOW)
        server = WebServer(state, "127.0.0.1", 0)
        await server.start()
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ready.set_result(Twins(server.port, runner.addresses[0][1], state.status.etag, loop, server))
        await stop.wait()
        await runner.cleanup()
        await server.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    yield ready.result(timeout=10)
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def _config(where: Path) -> Config:
    path = where / "statusd.yaml"
    path.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h"), encoding="utf-8")
    (where / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
    return loading.load(path)


def exchange(port: int, data: bytes, last: bytes = b"") -> bytes:
    """Everything the server sends for `data`, then a last request that asks it to close.

    aiohttp drops what it has not answered when the client half-closes, so the end is
    asked for in HTTP; where `data` leaves a request unfinished, the read ends after
    IDLE without a byte.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=IDLE) as sock:
        sock.sendall(data + last)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except ConnectionResetError:
            got += b"<reset>"
        except TimeoutError:
            got += b"<idle>"
        return got


DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def same(twins: Twins, data: bytes) -> bytes:
    """The fast listener's answer to `data`, checked against aiohttp's own (Date aside).

    aiohttp parses what one read brought before answering any of it, so a bad request
    after good ones in one read gets a lone 400 where, read apart, the good ones are
    answered first. The fast path answers as they come: what it answers itself must be
    aiohttp's answer to each of those requests, and the rest aiohttp's answer to the rest.
    """
    wire = data + LAST
    ours, rest = served_by_fast_path(wire)
    fast, plain, last = POOL.map(exchange, (twins.fast, twins.plain, twins.plain), (wire, rest, b""), (b"", b"", LAST))
    expected = [undated(exchange(twins.plain, request, LAST)).removesuffix(undated(last)) for request in ours]
    assert undated(fast) == b"".join(expected) + undated(plain), data
    return fast


def served_by_fast_path(wire: bytes) -> tuple[list[bytes], bytes]:
    """The leading requests that the fast path, by its own reading, answers; and the rest."""
    ours: list[bytes] = []
    while (end := wire.find(b"\r\n\r\n", 0, MAX_HEAD + 4)) >= 0:
        line, _, head = wire[:end].partition(b"\r\n")
        if line != fastpath.REQUEST_LINE or fastpath.if_none_match(head) is False:
            break
        ours.append(wire[:end + 4])
        wire = wire[end + 4:]
    return ours, wire


def undated(answer: bytes) -> bytes:
    return DATE.sub(b"\r\nDate: -\r\n", answer)


class TestSameAnswers:
    def test_a_plain_get_is_served_and_equals_aiohttps(self, twins: Twins) -> None:
        answer = same(twins, GET)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert f"ETag: {twins.etag}".encode() in answer

    @pytest.mark.parametrize("tag", ["{etag}", "W/{etag}", '"other", {etag}', "*", '"other"', ""])
    def test_if_none_match(self, twins: Twins, tag: str) -> None:
        value = tag.format(etag=twins.etag).encode()
        answer = same(twins, b"GET /status.json HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + value + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 304" if twins.etag.encode() in value or value == b"*"
                                 else b"HTTP/1.1 200")

    def test_pipelined_requests_then_another_route_then_status_again(self, twins: Twins) -> None:
        answer = same(twins, GET * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
        assert answer.count(b"HTTP/1.1 200 OK") == 6
        assert b'{"status": "ok"}' in answer

    @pytest.mark.parametrize("extra", [
        b"Content-Length: 5\r\n\r\nhello",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"Connection: close\r\n\r\n",
        b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"Expect: 100-continue\r\n\r\n",
        b" folded\r\n\r\n",
        b"No-Colon\r\n\r\n",
        b"Space : before\r\n\r\n",
        b"X: bare\nlf\r\n\r\n",
        b"X: bare\rcr\r\n\r\n",
        b"X: nul\x00\r\n\r\n",
        b"X: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n",
    ])
    def test_what_the_fast_path_does_not_vouch_for_is_aiohttps(self, twins: Twins, extra: bytes) -> None:
        same(twins, b"GET /status.json HTTP/1.1\r\nHost: x\r\n" + extra)
        same(twins, GET + b"GET /status.json HTTP/1.1\r\nHost: y\r\n" + extra)

    @pytest.mark.parametrize("line", [b"HEAD /status.json HTTP/1.1", b"GET /status.json HTTP/1.0",
                                      b"GET /status.json?x=1 HTTP/1.1", b"GET //status.json HTTP/1.1",
                                      b"get /status.json HTTP/1.1", b"GET /status.json  HTTP/1.1"])
    def test_other_request_lines(self, twins: Twins, line: bytes) -> None:
        same(twins, line + b"\r\nHost: x\r\n\r\n")

    @pytest.mark.parametrize("hosts", [b"", b"Host: a\r\nHost: b\r\n", b"Host:\r\n", b"HOST: a\r\n"])
    def test_host(self, twins: Twins, hosts: bytes) -> None:
        same(twins, b"GET /status.json HTTP/1.1\r\n" + hosts + b"\r\n")

    def test_a_request_cut_short_by_the_end(self, twins: Twins) -> None:
        same(twins, GET + b"GET /status.json HTTP/1.1\r\nHost")

    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(parts=st.lists(st.one_of(
        st.just(GET),
        st.sampled_from([b"GET /status.json HTTP/1.1\r\n", b"\r\n", b"Host: x\r\n", b"If-None-Match: ", b"Connection: ",
                         b"keep-alive", b"Content-Length: 1", b":", b" ", b"\t", b"\r", b"\n", b"W/"]),
        st.binary(max_size=40),
        st.text(max_size=20).map(lambda text: text.encode("utf-8", "surrogatepass"))), max_size=12))
    def test_any_bytes(self, twins: Twins, parts: list[bytes]) -> None:
        same(twins, b"".join(parts))

    @settings(max_examples=400, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(fields=st.lists(st.tuples(
        st.sampled_from([b"Host", b"If-None-Match", b"Connection", b"X-Any", b"host", b"If-None-Match "])
        | st.binary(min_size=1, max_size=12),
        st.binary(max_size=30) | st.sampled_from([b" keep-alive", b"*", b' W/"x"', b"\xff\xfe", b" \t"])),
        max_size=6), twice=st.booleans())
    def test_any_header_fields(self, twins: Twins, fields: list[tuple[bytes, bytes]], twice: bool) -> None:
        head = b"".join(name + b":" + value + b"\r\n" for name, value in fields)
        request = fastpath.REQUEST_LINE + b"\r\nHost: x\r\n" + head + b"\r\n"
        same(twins, request * (2 if twice else 1))


class TestConnection:
    def test_a_client_that_does_not_read_is_paused_not_buffered(self, twins: Twins) -> None:
        # 200,000 pipelined requests would be some 200 MB of answers held for a client that
        # reads nothing: the server must stop reading instead, so our send blocks early.
        burst = GET * 200_000
        with socket.create_connection(("127.0.0.1", twins.fast), timeout=READ_TIMEOUT) as sock:
            sock.setblocking(False)
            sent = 0
            while sent < len(burst):
                try:
                    sent += sock.send(burst[sent:sent + 65536])
                except BlockingIOError:
                    break
            assert sent < len(burst)
            sock.setblocking(True)
            sock.settimeout(READ_TIMEOUT)
            got = b""
            while got.count(b"HTTP/1.1 200 OK") < 100:
                chunk = sock.recv(1 << 20)
                assert chunk
                got += chunk
        assert exchange(twins.fast, GET).startswith(b"HTTP/1.1 200 OK")  # and the server serves on

    async def test_an_idle_connection_is_closed(self, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(fastpath, "KEEPALIVE", 0.2)
        async with _server(config) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(GET)
            await _read_answer(reader)
            assert await asyncio.wait_for(reader.read(), READ_TIMEOUT) == b""  # closed by the server
            writer.close()

    async def test_stopping_closes_connections_between_requests(self, config: Config) -> None:
        async with _server(config) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(GET)
            await _read_answer(reader)
            await asyncio.wait_for(server.stop(), READ_TIMEOUT)
            assert await asyncio.wait_for(reader.read(), READ_TIMEOUT) == b""
            writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    length = re.search(rb"Content-Length: (\d+)", head)
    assert length is not None
    return head + await asyncio.wait_for(reader.readexactly(int(length[1])), READ_TIMEOUT)


@contextlib.asynccontextmanager
async def _server(config: Config) -> AsyncIterator[WebServer]:
    state = WebState(config, hub=Hub(heartbeat=3600, queue_size=4))
    state.update({}, {}, [], NOW)
    server = WebServer(state, "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()  # a second stop does nothing
