"""Server-sent events: format, resuming, heartbeats, slow clients and shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from structlog.testing import capture_logs

from statusd.model import Target
from statusd.web.sse import Hub
from tests.test_web_support import FLOOD, Served, Stream, entry, later
from tests.test_web_support import served as served_fixture

served = served_fixture

pytestmark = pytest.mark.asyncio


class TestFormat:
    """A stream starts with retry and carries each snapshot as one `status` event."""

    async def test_headers_and_first_bytes(self, served: Served) -> None:
        stream = await Stream.open(served)
        assert stream.response.headers["Content-Type"] == "text/event-stream"
        assert stream.response.headers["Cache-Control"] == "no-cache"
        assert stream.response.headers["Access-Control-Allow-Origin"] == "*"
        assert await stream.block() == b"retry: 2000\n\n"
        stream.close()

    async def test_current_snapshot_then_each_change(self, served: Served) -> None:
        stream = await Stream.open(served)
        first = await stream.event()
        assert first["event"] == "status"
        assert json.loads(first["data"]) == json.loads(served.state.status.body)
        served.state.update({Target("main"): entry("closed", FLOOD)}, {}, [], later(1))
        second = await stream.event()
        assert int(second["id"]) > int(first["id"])
        assert json.loads(second["data"])["sites"]["main"]["level"] == "closed"
        stream.close()

    async def test_an_unchanged_picture_is_no_event(self, served: Served) -> None:
        before = served.state.hub.last_id
        assert served.state.update({}, {}, [], later(5)) is False
        assert served.state.hub.last_id == before


class TestResume:
    """Last-Event-ID replays exactly what was missed; an unknown id gets the snapshot."""

    async def test_replay_after_disconnect_loses_nothing(self, served: Served) -> None:
        hub = served.state.hub
        stream = await Stream.open(served)
        seen = await stream.event()
        stream.close()
        missed = [hub.publish(json.dumps({"n": n}).encode()) for n in range(5)]
        for header, query in ((({"Last-Event-ID": seen["id"]}), ""), ({}, f"?lastEventId={seen['id']}")):
            again = await Stream.open(served, header, query)
            got = [await again.event() for _ in missed]
            assert [int(e["id"]) for e in got] == missed
            assert [json.loads(e["data"])["n"] for e in got] == list(range(5))
            again.close()

    @pytest.mark.parametrize("last_id", ["12", "not-a-number", ""])
    async def test_unknown_id_gets_the_current_snapshot(self, served: Served, last_id: str) -> None:
        stream = await Stream.open(served, {"Last-Event-ID": last_id})
        got = await stream.event()
        assert int(got["id"]) == served.state.hub.last_id
        assert got["data"].encode() == served.state.status.body
        stream.close()

    async def test_too_old_id_gets_the_current_snapshot(self) -> None:
        hub = Hub(buffer=3)
        first = hub.publish(b"{}")
        for n in range(3):
            hub.publish(b'{"n":%d}' % n)
        assert hub.backlog(first) == [hub.current[1]]  # type: ignore[index]

    async def test_ids_keep_growing_across_restarts(self) -> None:
        old = Hub()
        last = [old.publish(b"{}") for _ in range(5)][-1]
        await asyncio.sleep(0.01)
        assert Hub().publish(b"{}") > last


class TestHeartbeat:
    """An idle stream gets a ping comment every heartbeat period."""

    async def test_ping(self, served: Served) -> None:
        served.state.hub.heartbeat = 0.05
        served.web._spawn(served.state.hub.beat(), "test-beat")
        stream = await Stream.open(served)
        await stream.event()
        assert await stream.block(1.0) == b": ping\n\n"
        stream.close()


class TestSlowClient:
    """A client that stops reading is dropped and never delays the others."""

    async def test_stuck_client_is_dropped_and_healthy_one_is_prompt(self, served: Served) -> None:
        hub = served.state.hub
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", served.web.port))
        stuck.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        healthy = await Stream.open(served)
        await healthy.event()
        while len(hub.subscribers) < 2:
            await asyncio.sleep(0.01)
        pad = "x" * 200_000
        delays = []
        with capture_logs() as logs:
            # Until the kernel's buffers for the stuck client are full and its queue overflows.
            for n in range(400):
                start = time.monotonic()
                event_id = hub.publish(json.dumps({"n": n, "pad": pad}).encode())
                got = await healthy.event()
                delays.append(time.monotonic() - start)
                assert int(got["id"]) == event_id
                if len(hub.subscribers) == 1:
                    break
        assert len(hub.subscribers) == 1, "the stuck client should have been dropped"
        assert any(log["event"] == "sse_dropped_slow" for log in logs)
        delays.sort()
        # Generous bounds: a loaded CI machine is slow, but never as slow as waiting on the stuck one.
        median, worst = delays[len(delays) // 2], delays[-1]
        assert median < 0.1 and worst < 1.0, f"median {median:.3f} s, max {worst:.3f} s"
        healthy.close()
        stuck.close()


class TestShutdown:
    """Stopping the server ends every stream at once."""

    async def test_stop_is_prompt(self, served: Served) -> None:
        streams = [await Stream.open(served) for _ in range(20)]
        for stream in streams:
            await stream.event()
        start = time.monotonic()
        await served.web.stop()
        assert time.monotonic() - start < 1.5
        for stream in streams:
            assert await asyncio.wait_for(stream.response.content.read(), 1.0) == b""
