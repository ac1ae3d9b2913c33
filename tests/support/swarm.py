"""Many SSE readers in one process of their own, each noting every event it got and when.

    python -m tests.support.swarm --url http://127.0.0.1:P/events --count N --frames F \
        --out FILE [--reconnect]

opens N streams (HTTP/1.0, so that neither nginx nor the daemon chunks them), writes
FILE.ready once every stream has its first event (the current status), and ends when
every stream holds F events, or at SIGTERM. With `--reconnect` a stream that is cut
comes back after a second with `Last-Event-ID`, as a browser's EventSource does.
FILE then holds, per stream, its events as [wall time read, kernel receive time, id,
generated_at, sha256 of data] and how often it reconnected. Parsing waits until the end: while events arrive,
a stream only keeps the bytes and the time, so the figures time the delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONNECTING_AT_ONCE = 256
CONNECT_TIMEOUT = 120.0
RUN_TIMEOUT = 300.0  # bounded: a swarm never outlives its test
RECONNECT_DELAY = 1.0
MARK = b"\ndata: "
RECV_SIZE = 1 << 18
# Linux's SO_TIMESTAMPNS (SCM_TIMESTAMPNS in the ancillary data); Python's socket module lacks it.
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35
ANCILLARY_SIZE = socket.CMSG_SPACE(16)
REPO = Path(__file__).resolve().parent.parent.parent


class Stream:
    """One /events stream on a bare non-blocking socket: its bytes with their times, counted cheaply.

    Lighter than an asyncio transport: the loop calls `readable`, which makes one `recvmsg`
    and keeps the bytes with the wall time and the kernel's receive time (SO_TIMESTAMPNS),
    so the figures can say when the event reached this machine, however busy the swarm was.
    """

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm
        self.chunks: list[tuple[float, float, bytes]] = []
        self.frames = 0
        self.tail = b""
        self.sock: socket.socket | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reconnects = 0

    def attach(self, sock: socket.socket) -> None:
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        now = time.time()  # first: what follows must not count as delivery delay
        assert self.sock is not None
        try:
            data, ancillary, _, _ = self.sock.recvmsg(RECV_SIZE, ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            if not self.closed.done():
                self.closed.set_result(None)
            return
        self.chunks.append((now, kernel_time(ancillary) or now, data))
        joined = self.tail + data
        before = self.frames
        self.frames += joined.count(MARK) - self.tail.count(MARK)
        self.tail = joined[-8:]
        if before < 1 <= self.frames:
            self.swarm.readied()
        if before < self.swarm.frames <= self.frames:
            self.swarm.finished()

    def close(self) -> None:
        if self.sock is not None and self.sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()

    def last_id(self) -> str | None:
        found = [event[2] for event in self.events() if event[2]]
        return found[-1] if found else None

    def events(self) -> list[tuple[float, float, str, str, str]]:
        """(time read, kernel time, id, generated_at, sha256 of data) of each complete event, in order."""
        out: list[tuple[float, float, str, str, str]] = []
        buffer = b""
        for when, kernel, data in self.chunks:
            if not data:
                buffer = b""  # a new connection: what was left of the old one is cut off
                continue
            buffer += data
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
                if b"data" in fields:
                    data_field = fields[b"data"]
                    key = b'"generated_at":"'
                    start = data_field.find(key) + len(key)
                    out.append((when, kernel, fields.get(b"id", b"").decode(),
                                data_field[start:data_field.find(b'"', start)].decode() if start >= len(key) else "",
                                hashlib.sha256(data_field).hexdigest()[:16]))
        return out


class Swarm:
    """N streams to one URL; `ready` and `done` when each has one, and `frames`, events."""

    def __init__(self, url: str, count: int, frames: int, reconnect: bool) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.count, self.frames, self.reconnect = count, frames, reconnect
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.streams: list[Stream] = []
        self._ready = self._done = 0

    def readied(self) -> None:
        self._ready += 1
        if self._ready >= self.count:
            self.ready.set()

    def finished(self) -> None:
        self._done += 1
        if self._done >= self.count:
            self.done.set()

    def request(self, last_id: str | None) -> bytes:
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
        return (f"GET {self.path} HTTP/1.0\r\nHost: {self.host}:{self.port}\r\n"
                f"Accept: text/event-stream\r\n{extra}\r\n").encode()

    async def connect(self, stream: Stream, last_id: str | None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (self.host, self.port)),
                                   CONNECT_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        sock.send(self.request(last_id))  # a few dozen bytes into an empty buffer: never partial
        stream.attach(sock)

    async def open(self, stream: Stream, gate: asyncio.Semaphore) -> None:
        async with gate:
            await self.connect(stream, None)

    async def keep(self, stream: Stream) -> None:
        """Reconnect `stream` whenever it is cut, with the id of the last event it read."""
        loop = asyncio.get_running_loop()
        while True:
            await stream.closed
            stream.closed = loop.create_future()
            while True:
                await asyncio.sleep(RECONNECT_DELAY)
                stream.reconnects += 1
                stream.tail = b""
                stream.chunks.append((time.time(), time.time(), b""))
                try:
                    await self.connect(stream, stream.last_id())
                except OSError:
                    continue
                break


async def run(url: str, count: int, frames: int, out: Path, reconnect: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    swarm = Swarm(url, count, frames, reconnect)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    swarm.streams = [Stream(swarm) for _ in range(count)]
    await asyncio.gather(*(swarm.open(s, gate) for s in swarm.streams))
    keepers = [asyncio.ensure_future(swarm.keep(s)) for s in swarm.streams] if reconnect else []
    await asyncio.wait_for(swarm.ready.wait(), CONNECT_TIMEOUT)
    await asyncio.to_thread(Path(f"{out}.ready").write_text, str(count), encoding="utf-8")
    waits = [asyncio.ensure_future(swarm.done.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waits, timeout=RUN_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    for task in (*waits, *keepers):
        task.cancel()
    for stream in swarm.streams:
        stream.close()
    result = [{"events": s.events(), "reconnects": s.reconnects} for s in swarm.streams]
    await asyncio.to_thread(_write, out, json.dumps(result))


def kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The wall time SO_TIMESTAMPNS gives in a `recvmsg`'s ancillary data, or None (also bench/'s)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", data)
            return float(seconds + nanoseconds / 1e9)
    return None


def _write(out: Path, text: str) -> None:
    partial = out.with_suffix(".part")
    partial.write_text(text, encoding="utf-8")
    partial.rename(out)  # the parent never reads half a file


class Readers:
    """`count` readers in `procs` swarm processes (parent side): start, wait ready, collect."""

    def __init__(self, url: str, count: int, frames: int, directory: Path, procs: int = 1,
                 reconnect: bool = False) -> None:
        self.directory = directory
        self.shares = [count // procs + (i < count % procs) for i in range(procs)]
        self.args = [(url, share, frames, directory / f"swarm-{i}.json", reconnect)
                     for i, share in enumerate(self.shares)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Readers:
        self.directory.mkdir(parents=True, exist_ok=True)
        for url, share, frames, out, reconnect in self.args:
            command = [sys.executable, "-m", "tests.support.swarm", "--url", url, "--count", str(share),
                       "--frames", str(frames), "--out", str(out), *(["--reconnect"] if reconnect else [])]
            with (self.directory / "swarm.err").open("ab") as err:
                self.procs.append(subprocess.Popen(command, cwd=REPO, stdout=err, stderr=err))
        try:
            self._wait(lambda out: Path(f"{out}.ready").exists(), CONNECT_TIMEOUT)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def collect(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every stream's events, once each process has them all (or is told to stop at `timeout`)."""
        try:
            self._wait(lambda out: out.exists(), timeout)
        except TimeoutError:
            for proc in self.procs:
                proc.send_signal(signal.SIGTERM)
            self._wait(lambda out: out.exists(), 30.0)
        streams: list[dict[str, Any]] = []
        for _, _, _, out, _ in self.args:
            streams.extend(json.loads(out.read_text(encoding="utf-8")))
        return streams

    def _wait(self, done: Callable[[Path], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(done(out) for _, _, _, out, _ in self.args):
            failed = [p for p in self.procs if p.poll() not in (None, 0)]
            if failed:
                err = (self.directory / "swarm.err").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"a swarm process exited with {failed[0].returncode}:\n{err}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the swarm did not finish within {timeout:g} s")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reconnect", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args.url, args.count, args.frames, args.out, args.reconnect))


if __name__ == "__main__":
    main()
