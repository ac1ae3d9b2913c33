"""Server-sent events: format, resuming, heartbeats, slow clients and shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd.model import Target
from statusd.web.sse import PING, Hub, Subscriber, chunk
from tests.web.test_web_support import FLOOD, Served, Stream, entry, later
from tests.web.test_web_support import served as served_fixture

pytestmark = pytest.mark.e2e

served = served_fixture



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

    async def test_head_gets_the_headers_and_no_stream(self, served: Served) -> None:
        async with served.session.head(f"{served.url}/events") as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            assert await asyncio.wait_for(response.read(), 2) == b""
        assert not served.state.hub.subscribers

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

    def test_the_buffer_is_bounded_in_bytes_too(self) -> None:
        """Large snapshots: the replay buffer keeps at most its bytes, always the newest event."""
        hub = Hub(buffer=1000, buffer_bytes=64 * 1024)
        ids = [hub.publish(b'{"pad":"%s"}' % (b"x" * 4000)) for _ in range(5000)]
        count, size = hub.buffered
        assert size <= 64 * 1024 and 10 <= count <= 16
        assert len(hub.backlog(ids[-5])) == 4  # a recent id still replays what it missed
        big = Hub(buffer_bytes=10)
        big.publish(b"{}" * 100)
        assert big.buffered[0] == 1 and big.current is not None

    async def test_ids_keep_growing_across_restarts(self) -> None:
        old = Hub()
        last = [old.publish(b"{}") for _ in range(5)][-1]
        await asyncio.sleep(0.01)
        assert Hub().publish(b"{}") > last


class TestHeartbeat:
    """An idle stream gets a ping comment every heartbeat period."""

    async def test_ping(self, served: Served) -> None:
        served.state.hub.heartbeat = 0.05
        async with asyncio.TaskGroup() as group:
            beat = group.create_task(served.state.hub.beat(), name="test-beat")
            stream = await Stream.open(served)
            await stream.event()
            assert await stream.block(1.0) == b": ping\n\n"
            stream.close()
            beat.cancel()


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
        # The stuck client's request is being handled; nothing signals it but the set growing.
        while len(hub.subscribers) < 2:  # noqa: ASYNC110
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


class FakeTransport:
    """Enough of asyncio.Transport for a Subscriber: what was written, and a chosen unsent count."""

    def __init__(self, unsent: int = 0, closing: bool = False) -> None:
        self.data = bytearray()
        self.unsent = unsent
        self.closing = closing
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.data += data

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.aborted = self.closing = True


def subscribe(hub: Hub, transport: FakeTransport, live: bool = True, chunked: bool = True) -> Subscriber:
    subscriber = Subscriber(transport, chunked)  # type: ignore[arg-type]
    hub.subscribers.add(subscriber)
    if live:
        subscriber.go_live()
    return subscriber


def dechunk(wire: bytes) -> list[bytes]:
    """The chunks of an HTTP/1.1 chunked body, strictly: a framing error fails the test."""
    chunks = []
    while wire:
        size_line, sep, rest = wire.partition(b"\r\n")
        assert sep, f"no chunk size line in {wire[:40]!r}"
        size = int(size_line, 16)
        assert rest[size:size + 2] == b"\r\n", "a chunk must end with CRLF"
        chunks.append(rest[:size])
        wire = rest[size + 2:]
    return chunks


def ids(blocks: bytes) -> list[int]:
    return [int(line[4:]) for line in blocks.split(b"\n") if line.startswith(b"id: ")]


class TestChunk:
    """A frame written straight to the transport is one well-formed HTTP/1.1 chunk."""

    @given(st.binary(max_size=5000))
    def test_round_trip(self, data: bytes) -> None:
        wire = chunk(data)
        assert dechunk(wire) == ([data] if data else [b""])
        assert wire.startswith(b"%x\r\n" % len(data))


class TestDirectFanOut:
    """publish writes to every live transport at once, keeps order, and drops whoever lags."""

    async def test_events_before_the_headers_follow_them_in_order(self) -> None:
        hub = Hub(queue_size=8)
        transport = FakeTransport()
        subscriber = subscribe(hub, transport, live=False)
        early = [hub.publish(b'{"n":%d}' % n) for n in range(3)]
        assert transport.data == b"", "nothing may be written before the response's headers"
        subscriber.go_live()
        late = hub.publish(b'{"n":3}')
        assert ids(b"".join(dechunk(bytes(transport.data)))) == [*early, late]

    @pytest.mark.parametrize("chunked", [True, False])
    async def test_live_subscriber_gets_the_frame_during_publish(self, chunked: bool) -> None:
        hub = Hub()
        transports = [FakeTransport() for _ in range(50)]
        for transport in transports:
            subscribe(hub, transport, chunked=chunked)
        event_id = hub.publish(b'{"a":1}')
        raw = b'id: %d\nevent: status\ndata: {"a":1}\n\n' % event_id
        for transport in transports:  # no await since publish: written synchronously
            assert bytes(transport.data) == (chunk(raw) if chunked else raw)

    # (unsent bytes after the write, in events' worth, or None for a stream not yet live with
    #  `pending` earlier events; whether it is dropped)
    @pytest.mark.parametrize(("unsent_events", "pending", "dropped"), [
        (0, 0, False),
        (3.5, 0, False),
        (4, 0, False),
        (4.2, 0, True),
        (40, 0, True),
        (None, 3, False),
        (None, 4, True),
    ])
    async def test_who_is_too_far_behind(self, unsent_events: float | None, pending: int,
                                         dropped: bool) -> None:
        hub = Hub(queue_size=4)
        data = b'{"pad":"%s"}' % (b"x" * 1000)
        size = len(chunk(b"id: %d\nevent: status\ndata: %s\n\n" % (hub.last_id + 1, data)))
        transport = FakeTransport(round((unsent_events or 0) * size))
        subscriber = subscribe(hub, transport, live=unsent_events is not None)
        healthy = subscribe(hub, FakeTransport())
        for _ in range(pending):
            subscriber.pending.append(b"earlier")  # type: ignore[union-attr]
        with capture_logs() as logs:
            hub.publish(data)
        assert (subscriber not in hub.subscribers) is dropped
        assert transport.aborted is dropped and subscriber.done.done() is dropped
        assert healthy in hub.subscribers and not healthy.done.done()
        assert any(log["event"] == "sse_dropped_slow" for log in logs) is dropped

    async def test_a_closed_connection_is_forgotten_not_counted_slow(self) -> None:
        hub = Hub()
        gone = FakeTransport(closing=True)
        subscriber = subscribe(hub, gone)
        with capture_logs() as logs:
            hub.publish(b"{}")
        assert subscriber not in hub.subscribers and subscriber.done.done()
        assert gone.data == b"" and not gone.aborted
        assert logs == []

    async def test_ping_only_where_nothing_waits(self) -> None:
        hub = Hub()
        idle, busy = FakeTransport(), FakeTransport(unsent=10)
        subscribe(hub, idle)
        subscribe(hub, busy)
        subscribe(hub, connecting := FakeTransport(), live=False)
        hub.ping()
        assert bytes(idle.data) == chunk(PING)
        assert busy.data == b"" and connecting.data == b""

    async def test_close_finishes_healthy_and_drops_stuck(self) -> None:
        hub = Hub(queue_size=4)
        hub.publish(b"{}")
        healthy, stuck = FakeTransport(), FakeTransport(unsent=1 << 20)
        first, second = subscribe(hub, healthy), subscribe(hub, stuck)
        hub.close()
        assert first.done.done() and not healthy.aborted
        assert second.done.done() and stuck.aborted
        assert not hub.subscribers


class TestWire:
    """On the socket: valid chunked framing for HTTP/1.1, plain bytes for HTTP/1.0, many at once."""

    async def test_http11_stream_is_well_formed_chunks(self, served: Served) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.web.port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert b"transfer-encoding: chunked" in head.lower()
        first = await asyncio.wait_for(reader.readuntil(b"\n\n\r\n"), 2)
        current = served.state.hub.last_id
        published = [served.state.hub.publish(b'{"n":%d}' % n) for n in range(3)]
        wire = first
        while len(ids(b"".join(dechunk(wire)))) < 4:
            wire += await asyncio.wait_for(reader.read(65536), 2)
        body = b"".join(dechunk(wire))
        assert body.startswith(b"retry: 2000\n\n")
        assert ids(body) == [current, *published]
        writer.close()

    async def test_http10_stream_is_plain(self, served: Served) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.web.port)
        writer.write(b"GET /events HTTP/1.0\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert b"chunked" not in head.lower()
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 2) == b"retry: 2000\n\n"
        await asyncio.wait_for(reader.readuntil(b"\n\n"), 2)  # the current snapshot
        event_id = served.state.hub.publish(b'{"n":1}')
        got = await asyncio.wait_for(reader.readuntil(b"\n\n"), 2)
        assert got == b'id: %d\nevent: status\ndata: {"n":1}\n\n' % event_id
        writer.close()

    async def test_one_change_reaches_every_stream(self, served: Served) -> None:
        streams = [await Stream.open(served) for _ in range(100)]
        for stream in streams:
            await stream.event()
        served.state.update({Target("main"): entry("closed", FLOOD)}, {}, [], later(1))
        got = [await stream.event() for stream in streams]
        assert {e["id"] for e in got} == {str(served.state.hub.last_id)}
        assert all(json.loads(e["data"])["sites"]["main"]["level"] == "closed" for e in got)
        for stream in streams:
            stream.close()


class _Held:
    """A transport stand-in that never sends: every byte written stays in its buffer."""

    def __init__(self) -> None:
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


class TestBounds:
    """Readers that never read share one memory budget; past the cap a new reader gets 503."""

    async def test_the_slowest_are_dropped_first_to_fit_the_budget(self) -> None:
        # queue_size is high so that only the global budget can drop anyone here.
        hub = Hub(queue_size=10_000, budget=9_000)
        held = [_Held() for _ in range(5)]
        subscribers = [Subscriber(t, chunked=True) for t in held]  # type: ignore[arg-type]
        for subscriber in subscribers:
            subscriber.go_live()
            hub.subscribers.add(subscriber)
        held[0].buffered, held[1].buffered = 6_000, 3_000  # two readers already far behind
        with capture_logs() as logs:
            hub.publish(b"x" * 100)
        assert held[0].aborted and not any(t.aborted for t in held[1:])
        assert len(hub.subscribers) == 4
        assert any(entry["event"] == "sse_dropped_slow" for entry in logs)
        total = sum(s.unsent() for s in hub.subscribers)
        assert total <= hub.budget

    async def test_many_stalled_readers_stay_within_the_budget(self) -> None:
        hub = Hub(queue_size=10_000, budget=50_000)
        for _ in range(200):
            subscriber = Subscriber(_Held(), chunked=True)  # type: ignore[arg-type]
            subscriber.go_live()
            hub.subscribers.add(subscriber)
        for n in range(100):
            hub.publish(b'{"n":%d,"pad":"%s"}' % (n, b"p" * 200))
            assert sum(s.unsent() for s in hub.subscribers) <= hub.budget

    async def test_a_reader_past_the_cap_gets_503_and_retry_after(self, served: Served) -> None:
        served.state.hub.max_subscribers = 2
        streams = [await Stream.open(served) for _ in range(2)]
        for stream in streams:
            await stream.event()
        async with served.session.get(f"{served.url}/events") as refused:
            assert refused.status == 503
            assert int(refused.headers["Retry-After"]) > 0
        streams[0].close()
        for _ in range(100):
            if len(served.state.hub.subscribers) < 2:
                break
            await asyncio.sleep(0.01)
        third = await Stream.open(served)
        assert third.response.status == 200
        third.close()
        streams[1].close()
