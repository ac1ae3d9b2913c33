"""The command tells the running daemon at once: "status.yaml was replaced whole; its text has this digest".

A Unix socket in the state directory (`status.sock`), as reachable as the
state directory itself. `statusd set` and `undo` connect after writing and
send one line, `whole <sha256 of the text>`; the daemon reads the file at once
and, when the text it reads has that digest, needs no wait to know it is
complete (a hand edit is still read twice, `SETTLE` apart). The line carries no
status: a nudge can only make the daemon read the file sooner. No daemon, or
an old one: the command says nothing and the file watch sees the change.

Before that, `statusd set` asks the daemon to make its change (`set {json}`, a line
of its own: commands/handoff.py), and writes what the daemon made itself.
"""

from __future__ import annotations

import _socket
import contextlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the daemon's side only: `statusd set` imports this module without asyncio
    import asyncio
    from collections.abc import Awaitable

    # The daemon's answer to a `set` request line on this connection (desk/handoff.py).
    Handoff = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

__all__ = ["HERE", "MAX_REQUEST", "NAME", "Causes", "Listener", "connect", "digest", "tell"]

NAME = "status.sock"
TIMEOUT = 0.5
_LINE = re.compile(rb"whole ([0-9a-f]{64})\n?")
# `statusd set` beside the daemon (commands/handoff.py, desk/handoff.py): its request's bound, and
# the daemon's answer when the command must make the change all by itself.
MAX_REQUEST = 256 * 1024
HERE = b"here\n"


def digest(text: str) -> str:
    """The digest both sides compare: SHA-256 of the UTF-8 text."""
    # CPython's own SHA-256, which hashlib falls back to: hashlib loads OpenSSL first, 3 ms of
    # `statusd set` (issue 15), for the same digest. _sha256 in 3.11, _sha2 from 3.12.
    try:
        from _sha256 import sha256  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment, unused-ignore]
    return str(sha256(text.encode("utf-8")).hexdigest())


class Causes:
    """Why the daemon's status watch was woken since it last read: nudges (their digests), or more.

    The file watch sees a writer's rename before its nudge comes, so the nudge usually lands while
    that very text is being read; reading it again would only slow the posts going out.
    """

    def __init__(self) -> None:
        self.digests: set[str] = set()
        self.other = False  # a change the file watch or the stat saw, a reload, a planned time

    def take(self) -> set[str] | None:
        """The nudged digests when nudges alone woke the watch (None if anything else did); cleared."""
        found = None if self.other or not self.digests else self.digests
        self.digests, self.other = set(), False
        return found


def tell(state_dir: Path, text_digest: str) -> bool:
    """Tell the daemon of `state_dir` (if one listens) that status.yaml now has `text_digest`; True if heard."""
    sock = connect(state_dir, TIMEOUT)
    if sock is None:
        return False  # no daemon, a stopped one, or a path too long for a socket: the watch sees it
    try:
        sock.sendall(b"whole %s\n" % text_digest.encode("ascii"))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def connect(state_dir: Path, timeout: float) -> _socket.socket | None:
    """A connection to the status socket of `state_dir`, its operations bounded by `timeout`; None if none."""
    # The socket module's own type, without the module: socket.py builds its enums at import
    # (3 ms of `statusd set`, issue 15) for constants a Unix stream socket does not need.
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    except OSError:
        return None
    try:
        sock.settimeout(timeout)
        sock.connect(os.fspath(state_dir / NAME))
    except OSError:
        sock.close()
        return None
    return sock


class Listener:
    """The daemon's side: calls `heard(digest)` for each nudge, and hands a `set` request to `handoff`."""

    def __init__(self, state_dir: Path, heard: Callable[[str], None], handoff: Handoff | None = None) -> None:
        self.path = state_dir / NAME
        self._heard = heard
        self._handoff = handoff
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> bool:
        """Listen; False (and the file watch alone) when the socket cannot be made."""
        import asyncio

        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)  # left by a daemon that was killed
        try:
            self._server = await asyncio.start_unix_server(self._client, path=os.fspath(self.path),
                                                           limit=MAX_REQUEST + 16)
            _like_directory(self.path)
        except OSError:
            await self.stop()
            return False
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import asyncio

        try:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), TIMEOUT)
            except asyncio.IncompleteReadError as err:
                line = err.partial  # a writer that closed without its newline
            except (TimeoutError, OSError, asyncio.LimitOverrunError):
                line = b""
            if line.startswith(b"set ") and self._handoff is not None:
                await self._handoff(line, reader, writer)
                await asyncio.wait_for(writer.drain(), TIMEOUT)
            found = _LINE.fullmatch(line)
            if found:
                self._heard(found.group(1).decode("ascii"))
        except (OSError, TimeoutError):  # the command went away before its answer: it makes the change itself
            pass
        finally:
            writer.close()


def _like_directory(path: Path) -> None:
    """Whoever may enter the state directory may connect (write) to the socket; its group too."""
    info = os.stat(path.parent)
    mode = info.st_mode & 0o777
    os.chmod(path, (mode & 0o666) | ((mode & 0o111) << 1))
    with contextlib.suppress(OSError):
        os.chown(path, -1, info.st_gid)
