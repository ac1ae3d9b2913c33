"""What the fake platforms share; each platform's own behaviour stays in its module.

`Fake` is the plumbing: a `mode` switched at run time (with a `script` of one-off modes,
and requests held while the mode is "hang"), a `delay` before answering a POST that makes
a post, an optional log of the posts made, and start/stop of the aiohttp app on 127.0.0.1.
`options` and `serve` run one fake as its own process until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import select
import signal
import ssl
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["Fake", "drop", "options", "serve"]


class Fake:
    """An aiohttp app on `host`:`port` that answers as `mode` says.

    A subclass sets MODES and KIND (its name in errors), calls `_setup` from its
    constructor and builds its app in `_app`; TLS comes from `_ssl_context`.
    """

    MODES: ClassVar[tuple[str, ...]]
    KIND: ClassVar[str]
    host: str
    port: int
    delay: float  # seconds between making a post and answering the POST that made it

    def _setup(self, mode: str = "ok", delay: float = 0.0, log: Path | None = None) -> None:
        self.delay = delay
        self._mode = self._check_mode(mode)
        self._script: deque[str] = deque()
        self._version = 0  # bumped on every mode switch, so held requests notice one
        self._changed = asyncio.Event()
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._log_path = log
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError  # each fake's base URL differs (scheme, path)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode = self._check_mode(value)
        self._version += 1
        self._notify()

    def script(self, *modes: str) -> None:
        """Answer the next requests with these modes, one each, before `mode` applies again."""
        self._script.extend(self._check_mode(m) for m in modes)

    def stats(self) -> dict[str, Any]:
        """What the control endpoints answer; a fake adds its counts."""
        return {"mode": self._mode}

    async def start(self) -> None:
        self._stopping = False
        self._changed = asyncio.Event()
        # A short shutdown timeout: held requests are released on stop anyway.
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl_context())
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self._log_path is not None:
            self._log = self._log_path.open("a", encoding="utf-8", buffering=1)

    async def stop(self) -> None:
        self._stopping = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- for the subclass ----------------------------------------------------------------------

    def _app(self) -> web.Application:
        raise NotImplementedError

    def _ssl_context(self) -> ssl.SSLContext | None:
        return None

    def _apply_own(self, change: dict[str, Any]) -> None:
        """Apply the control keys only this fake knows (ValueError or TypeError if one is wrong)."""

    async def _fake_state(self, request: web.Request) -> web.Response:
        """GET on the control path: `stats()`."""
        return web.json_response(self.stats())

    async def _fake_control(self, request: web.Request) -> web.Response:
        """POST on the control path: the fake's own keys, then "delay", then "mode" (last: it
        releases held requests, which should see every other change). Answers `stats()`."""
        try:
            change = await request.json()
            self._apply_own(change)
            if "delay" in change:
                self.delay = float(change["delay"])
            if "mode" in change:
                self.mode = change["mode"]
        except (TypeError, ValueError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self.stats())

    def _check_mode(self, mode: str) -> str:
        if mode not in self.MODES:
            raise ValueError(f"unknown {self.KIND} mode {mode!r}; "
                             f"expected one of: {', '.join(self.MODES)}")
        return mode

    async def _next_mode(self) -> str | None:
        """This request's mode: the script's next, else `mode`, waited out while it is "hang".

        None when the fake stops while the request is held: the caller drops it.
        """
        mode = self._script.popleft() if self._script else self._mode
        while mode == "hang":
            if not await self._mode_switch():
                return None
            mode = self._mode
        return mode

    async def _mode_switch(self) -> bool:
        """Wait until the mode is switched; False if the fake is stopping instead."""
        version = self._version
        while self._version == version and not self._stopping:
            await self._changed.wait()
        return not self._stopping

    async def _vanish(self, request: web.Request) -> web.Response:
        """Hold a request whose post is made until the mode switches, then drop it unanswered."""
        await self._mode_switch()
        return drop(request)

    def _notify(self) -> None:
        # Wake everything waiting (held requests, _until), then arm a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, done: Callable[[], bool], within: float,
                     why: Callable[[], str]) -> None:
        """Return once `done()`, checked on every _notify; TimeoutError(why()) after `within` s."""
        deadline = time.monotonic() + within
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(why())
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass  # the loop checks once more, then raises with the count

    async def _pause(self) -> None:
        """The post exists; its answer comes `delay` seconds later, as from a slow platform."""
        await asyncio.sleep(self.delay)

    def _delayed(self, handler: Handler) -> Handler:
        """`handler` for the endpoint that makes a post: its answer waits `delay` seconds."""

        async def delayed(request: web.Request) -> web.StreamResponse:
            answer = await handler(request)
            await self._pause()
            return answer

        return delayed

    def _log_post(self, received_at: float, path: str, post_id: str, **more: Any) -> None:
        """Append the post just made to the log (one JSON line), if there is a log."""
        if self._log is not None:
            line = {"received_at": received_at, "path": path, "id": post_id, **more}
            self._log.write(json.dumps(line, ensure_ascii=False) + "\n")


def drop(request: web.Request) -> web.Response:
    """Close the connection without a word: the client sees it vanish, not an answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)  # never reaches the client


# -- standalone process ----------------------------------------------------------------------------

def options(name: str, description: str, modes: Sequence[str]) -> argparse.ArgumentParser:
    """The options every fake takes as `python -m tests.support.fakes.NAME`; the module adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m tests.support.fakes.{name}", description=description)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", default="ok", choices=modes)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds before answering a POST that makes a post")
    parser.add_argument("--log", type=Path, help="append each post made here as a JSON line")
    return parser


async def serve(fake: Fake, *lines: str) -> None:
    """Start `fake`, print its URL and then `lines`, and stop it on SIGTERM or SIGINT."""
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    for line in (fake.url, *lines):
        print(line, flush=True)  # the parent reads the first line to know it is listening
    await stop.wait()
    await fake.stop()


@contextlib.contextmanager
def standalone(module: str, *args: str, lines: int = 1, timeout: float = 15.0) -> Iterator[list[str]]:
    """Run `python -m tests.support.fakes.MODULE ARGS` as its own process; yield the first `lines` it prints.

    The first line is its base URL. On leaving, it is stopped with SIGTERM and
    must exit 0 (a fake that crashes on the way out is a failing test).
    """
    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen([sys.executable, "-m", f"tests.support.fakes.{module}", "--port", "0", *args],
                               cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        printed = [process.stdout.readline().strip() for _ in range(lines)] if ready else [""]
        assert printed[0].startswith(("http://127.0.0.1:", "https://127.0.0.1:")), \
            f"the fake {module} did not start: {printed!r}"
        yield printed
    finally:
        process.terminate()
        code = process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0, f"the fake {module} exited with {code}"
